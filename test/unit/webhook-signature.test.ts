// GitHub webhook signatures: real example payloads signed as GitHub signs them (sha256 with @octokit/webhooks-methods,
// the legacy sha1 with node:crypto), forged, missing, under the wrong secret; and the webhook secret readers.
import { headerValue } from '#core/headers.js';
import { sign } from '@octokit/webhooks-methods';
import type { WebhookDefinition } from '@octokit/webhooks-examples';
import { createHmac } from 'node:crypto';
import { createRequire } from 'node:module';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { UnauthorizedError } from '#core/errors.js';
import {
  authenticateWebhook, signWebhookBody, verifyWebhookSignature,
} from '#core/webhook-signature.js';
import { secretsManagerReader, webhookSecretFor } from '#adapters/secrets/webhook-secret.js';
import { loadConfig } from '#functions/config.js';

const requireCommonJs = createRequire(import.meta.url);
// The adapter requires the CommonJS build; the test must mock the very same classes.
const secretsSdk = requireCommonJs('@aws-sdk/client-secrets-manager') as typeof import('@aws-sdk/client-secrets-manager');
// A JSON package: required, so its default export needs no interop.
const webhookExamples = requireCommonJs('@octokit/webhooks-examples') as WebhookDefinition[];

const SECRET = 'It\'s a Secret to Everybody';

function example(name: string): string {
  const definition = webhookExamples.find((d) => d.name === name);
  if (!definition) throw new Error(`no ${name} example`);
  // GitHub sends compact JSON; the exact bytes are what is signed.
  return JSON.stringify(definition.examples[0]);
}

const CREATE = example('create');
const body = (s: string) => Buffer.from(s, 'utf8');
const sha1 = (secret: string, payload: string) => `sha1=${createHmac('sha1', secret).update(payload).digest('hex')}`;

describe('verifyWebhookSignature', () => {
  it('accepts the sha256 signature GitHub (and octokit) computes over the exact body', async () => {
    const signature = await sign(SECRET, CREATE);
    expect(signWebhookBody(SECRET, body(CREATE))).toBe(signature);
    expect(verifyWebhookSignature(SECRET, body(CREATE), { 'X-Hub-Signature-256': signature }))
      .toEqual({ ok: true, algorithm: 'sha256' });
  });

  it('accepts the legacy sha1 signature when no sha256 one is sent', () => {
    expect(verifyWebhookSignature(SECRET, body(CREATE), { 'X-Hub-Signature': sha1(SECRET, CREATE) }))
      .toEqual({ ok: true, algorithm: 'sha1' });
    expect(signWebhookBody(SECRET, CREATE, 'sha1')).toBe(sha1(SECRET, CREATE));
  });

  it('reads the headers whatever the case of their names, and hex in either case', async () => {
    const signature = await sign(SECRET, CREATE);
    for (const name of ['x-hub-signature-256', 'X-HUB-SIGNATURE-256', 'X-Hub-Signature-256']) {
      expect(verifyWebhookSignature(SECRET, body(CREATE), { [name]: signature }).ok, name).toBe(true);
    }
    expect(verifyWebhookSignature(SECRET, body(CREATE), { 'x-hub-signature': sha1(SECRET, CREATE).toUpperCase().replace('SHA1=', 'sha1=') }).ok)
      .toBe(true);
  });

  it('refuses a forged signature, one under another secret, and a body changed by one byte', async () => {
    const signature = await sign(SECRET, CREATE);
    const lastDigit = signature.at(-1) === '0' ? '1' : '0';
    const forged = signature.slice(0, -1) + lastDigit;
    const check = (headers: Record<string, string>, payload = CREATE) => verifyWebhookSignature(SECRET, body(payload), headers);
    expect(check({ 'X-Hub-Signature-256': forged })).toEqual({ ok: false, reason: 'X-Hub-Signature-256 does not match the body' });
    expect(check({ 'X-Hub-Signature-256': await sign('another secret', CREATE) }).ok).toBe(false);
    expect(check({ 'X-Hub-Signature': sha1('another secret', CREATE) })).toEqual({ ok: false, reason: 'X-Hub-Signature does not match the body' });
    // Pretty-printed JSON carries the same data in other bytes: not what was signed.
    expect(check({ 'X-Hub-Signature-256': signature }, JSON.stringify(JSON.parse(CREATE), null, 2)).ok).toBe(false);
    expect(check({ 'X-Hub-Signature-256': signature }, `${CREATE} `).ok).toBe(false);
  });

  it('refuses malformed signatures without comparing them', async () => {
    const signature = await sign(SECRET, CREATE);
    const hex = signature.slice('sha256='.length);
    for (const value of [hex, `sha1=${hex}`, `sha256=${hex.slice(2)}`, `sha256=${hex}00`, `sha256=${'z'.repeat(64)}`, 'sha256=', '']) {
      expect(verifyWebhookSignature(SECRET, body(CREATE), { 'X-Hub-Signature-256': value }), value).toEqual({
        ok: false, reason: 'X-Hub-Signature-256 is not of the form sha256=<64 hex digits>',
      });
    }
  });

  it('never lets a sha1 signature stand in for a wrong sha256 one', async () => {
    const wrong256 = await sign('another secret', CREATE);
    expect(verifyWebhookSignature(SECRET, body(CREATE), {
      'X-Hub-Signature-256': wrong256, 'X-Hub-Signature': sha1(SECRET, CREATE),
    }).ok).toBe(false);
  });

  it('refuses a delivery without a signature', () => {
    expect(verifyWebhookSignature(SECRET, body(CREATE), {})).toEqual({
      ok: false, reason: 'no X-Hub-Signature-256 (or X-Hub-Signature) header',
    });
    expect(verifyWebhookSignature(SECRET, body(CREATE), null).ok).toBe(false);
  });

  it('signs the ping and push examples too', async () => {
    for (const name of ['ping', 'push']) {
      const payload = example(name);
      expect(verifyWebhookSignature(SECRET, body(payload), { 'x-hub-signature-256': await sign(SECRET, payload) }).ok).toBe(true);
      expect(verifyWebhookSignature(SECRET, body(payload), { 'x-hub-signature': sha1(SECRET, payload) }).ok).toBe(true);
    }
  });
});

describe('authenticateWebhook', () => {
  it('refuses a delivery without a signature before reading the secret', async () => {
    const secret = vi.fn(async () => SECRET);
    const attempt = authenticateWebhook(secret, body(CREATE), {});
    await expect(attempt).rejects.toBeInstanceOf(UnauthorizedError);
    await expect(attempt).rejects.toThrow('Webhook refused: no X-Hub-Signature-256 (or X-Hub-Signature) header');
    expect(secret).not.toHaveBeenCalled();
  });

  it('refuses every delivery when no secret is configured', async () => {
    const signature = await sign(SECRET, CREATE);
    await expect(authenticateWebhook(async () => undefined, body(CREATE), { 'x-hub-signature-256': signature }))
      .rejects.toThrow('Webhook refused: no webhook secret is configured on this service');
    await expect(authenticateWebhook(async () => '', body(CREATE), { 'x-hub-signature-256': signature }))
      .rejects.toBeInstanceOf(UnauthorizedError);
  });

  it('refuses a wrong signature and accepts a right one, saying which algorithm', async () => {
    await expect(authenticateWebhook(async () => 'wrong', body(CREATE), { 'x-hub-signature-256': await sign(SECRET, CREATE) }))
      .rejects.toThrow('Webhook refused: X-Hub-Signature-256 does not match the body');
    expect(await authenticateWebhook(async () => SECRET, body(CREATE), { 'x-hub-signature-256': await sign(SECRET, CREATE) }))
      .toBe('sha256');
    expect(await authenticateWebhook(async () => SECRET, body(CREATE), { 'x-hub-signature': sha1(SECRET, CREATE) })).toBe('sha1');
  });
});

describe('headerValue', () => {
  it('finds a header by any case of its name', () => {
    expect(headerValue({ 'X-GitHub-Event': 'ping' }, 'x-github-event')).toBe('ping');
    expect(headerValue({ 'x-github-event': 'ping' }, 'X-GitHub-Event')).toBe('ping');
    expect(headerValue({}, 'X-GitHub-Event')).toBeUndefined();
    expect(headerValue(null, 'X-GitHub-Event')).toBeUndefined();
  });
});

describe('webhook secret readers', () => {
  const sm = mockClient(secretsSdk.SecretsManagerClient);
  afterEach(() => sm.reset());
  const ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:webhook-AbCdEf';

  it('(mock) reads the secret from Secrets Manager once, then from its cache until it expires', async () => {
    sm.on(secretsSdk.GetSecretValueCommand, { SecretId: ARN }).resolves({ SecretString: 'from-secrets-manager' });
    let now = 1_000;
    const read = secretsManagerReader({
      secretId: ARN, client: new secretsSdk.SecretsManagerClient({ region: 'eu-west-1' }), cacheMs: 60_000, now: () => now,
    });
    expect(await Promise.all([read(), read()])).toEqual(['from-secrets-manager', 'from-secrets-manager']);
    expect(await read()).toBe('from-secrets-manager');
    expect(sm.commandCalls(secretsSdk.GetSecretValueCommand)).toHaveLength(1);
    now += 60_000;
    sm.on(secretsSdk.GetSecretValueCommand).resolves({ SecretString: 'rotated' });
    expect(await read()).toBe('rotated');
    expect(sm.commandCalls(secretsSdk.GetSecretValueCommand)).toHaveLength(2);
  });

  it('(mock) does not cache a failed read', async () => {
    sm.on(secretsSdk.GetSecretValueCommand).rejectsOnce(new Error('throttled')).resolves({ SecretString: 's' });
    const read = secretsManagerReader({ secretId: ARN, client: new secretsSdk.SecretsManagerClient({ region: 'eu-west-1' }) });
    await expect(read()).rejects.toThrow('throttled');
    expect(await read()).toBe('s');
  });

  it('(mock) takes GIT_SECRET first, else the ARN in the aws runtime, else nothing', async () => {
    expect(await webhookSecretFor(loadConfig({ GIT_SECRET: 'local-secret' }))()).toBe('local-secret');
    expect(await webhookSecretFor(loadConfig({}))()).toBeUndefined();
    // Locally an ARN alone is not read: the local runtime never calls AWS.
    expect(await webhookSecretFor(loadConfig({ ENOT_GIT_SECRET_ARN: ARN }))()).toBeUndefined();
    sm.on(secretsSdk.GetSecretValueCommand, { SecretId: ARN }).resolves({ SecretString: 'aws-secret' });
    const config = loadConfig({ ENOT_RUNTIME: 'aws', ENOT_GIT_SECRET_ARN: ARN, AWS_REGION: 'eu-west-1' });
    expect(webhookSecretFor(config)).toBe(webhookSecretFor(config));
    expect(await webhookSecretFor(config)()).toBe('aws-secret');
  });
});
