// Rate limits end to end: the local server over real HTTP from two loopback source addresses, on a real Store (pg or
// PGlite); with DATABASE_URL also two `npm start` processes on one Postgres. New builds per client per hour (only
// builds a request queued count), reads per client per minute, the X-RateLimit-* headers, 429 with Retry-After.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '#adapters/blob/fs-blob-store.js';
import { InMemoryMetrics } from '#adapters/metrics/memory-metrics.js';
import { webhookSecretFor } from '#adapters/secrets/webhook-secret.js';
import type { BuildQueue, Store } from '#core/ports.js';
import { loadConfig } from '#functions/config.js';
import { startLocalServer, type LocalServer } from '#functions/local/server.js';
import type { Deps } from '#functions/wiring.js';
import { createTestDatabase, openTestStore, TEST_DATABASE_URL, type TestDatabase } from '#support/databases.js';
import { signalService, startService, type RunningService } from '#support/local-service.js';

const BUILDS_PER_HOUR = 10;
const READS_PER_MINUTE = 5;
const RETRY = /^Rate limit exceeded: at most 10 new builds per hour from one client; retry after (\d+) s$/;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request from the loopback address `from` (the server takes the socket's address as the client); a string body is sent as is. */
function send(base: string, from: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const url = new URL(path, base);
  const payload = body === undefined || typeof body === 'string' ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method, localAddress: from, agent: false,
      headers: { ...headers, ...(payload ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) } : {}) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** A /buildAsync of one new version of a package of its own (so each counts one new build). */
function buildOne(base: string, from: string, name: string, ref = '1.0.0'): Promise<Answer> {
  return send(base, from, 'POST', '/buildAsync', {
    full_name: `acme/${name}`, clone_url: `https://github.com/acme/${name}`, versions: [{ ref }],
  });
}

function limitHeaders(a: Answer) {
  return {
    limit: Number(a.headers['x-ratelimit-limit']),
    remaining: Number(a.headers['x-ratelimit-remaining']),
    reset: Number(a.headers['x-ratelimit-reset']),
  };
}

/** The end of the current fixed window of `windowS` seconds, in unix seconds, as the headers say it. */
function windowEnd(windowS: number, at = Date.now()): number {
  return (Math.floor(at / 1000 / windowS) + 1) * windowS;
}

class RecordingQueue implements BuildQueue {
  readonly ids: string[] = [];
  async enqueue(buildIds: readonly string[]): Promise<void> {
    this.ids.push(...buildIds);
  }
}

describe('rate limits of one local server', () => {
  let dataDir: string;
  let store: Store;
  let closeStore: () => Promise<void>;
  let queue: RecordingQueue;
  let server: LocalServer;
  let base: string;
  let exemptCalls = 0;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'enot-rate-limits-'));
    ({ store, close: closeStore } = await openTestStore());
    const config = loadConfig({
      ENOT_DATA_DIR: dataDir, ENOT_LOG_LEVEL: 'silent', PORT: '0', ENOT_DEFAULT_ERL_VERSION: '26',
      ENOT_READ_REQUESTS_PER_MINUTE: String(READS_PER_MINUTE),
      // 127.0.0.9 stands for a proxy of this deployment: only its X-Forwarded-For is believed.
      ENOT_TRUSTED_PROXIES: '127.0.0.9',
      GIT_SECRET: 'rate-limit-secret',
    });
    queue = new RecordingQueue();
    const deps: Deps = {
      config, store, blobs: new FsBlobStore(join(dataDir, 'blobs')), metrics: new InMemoryMetrics(), queue,
      mailer: { send: () => Promise.reject(new Error('this suite sends no mail')) },
      webhookSecret: webhookSecretFor(config),
      // What the token check will be: a request with this token is not limited.
      rateLimitExempt: async (event) => {
        exemptCalls += 1;
        return event.headers.authorization === 'Bearer test-admin-token';
      },
    };
    server = await startLocalServer({ deps, port: 0 });
    base = server.url;
  });

  afterAll(async () => {
    await server?.close();
    await closeStore?.();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('allows 10 new builds an hour from one client: the 11th is a 429 with the headers, and writes nothing', async () => {
    const answers: Answer[] = [];
    for (let i = 1; i <= BUILDS_PER_HOUR; i++) answers.push(await buildOne(base, '127.0.0.1', `p${i}`));
    const end = windowEnd(3600);
    answers.forEach((a, i) => {
      expect(a.status, a.body).toBe(200);
      expect(limitHeaders(a)).toEqual({ limit: 10, remaining: BUILDS_PER_HOUR - 1 - i, reset: end });
    });
    expect(queue.ids).toHaveLength(BUILDS_PER_HOUR);

    const refused = await buildOne(base, '127.0.0.1', 'p11');
    expect(refused.status).toBe(429);
    expect(refused.headers['content-type']).toBe('application/json; charset=utf-8');
    const body = JSON.parse(refused.body) as { result: boolean; response: string };
    expect(body.result).toBe(false);
    const retryAfter = Number(RETRY.exec(body.response)?.[1]);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(3600);
    expect(refused.headers['retry-after']).toBe(String(retryAfter));
    expect(limitHeaders(refused)).toEqual({ limit: 10, remaining: 0, reset: end });
    // Nothing half-written: no repository, no build, nothing handed to the queue.
    expect(await store.getRepository({ namespace: 'acme', name: 'p11' })).toBeNull();
    expect(queue.ids).toHaveLength(BUILDS_PER_HOUR);
  });

  it('does not count a request answered from build-once, even with no budget left', async () => {
    // p1's build succeeded: asking for it again queues nothing, so it is answered although 127.0.0.1 has spent all.
    const again = await buildOne(base, '127.0.0.1', 'p1');
    expect(again.status, again.body).toBe(200);
    const buildId = (JSON.parse(again.body) as { response: { versions: { builds: { build_id: string }[] }[] } })
      .response.versions[0].builds[0].build_id;
    await store.transitionBuild(buildId, ['queued'], 'succeeded', { artifactKey: `artifacts/${buildId}.ep`, artifactSize: 1 });
    const built = await buildOne(base, '127.0.0.1', 'p1');
    expect(built.status, built.body).toBe(200);
    expect(built.body).toContain(buildId);
    expect(limitHeaders(built).remaining).toBe(0);
    expect(queue.ids).toHaveLength(BUILDS_PER_HOUR);
    // A rebuild queues a new build: refused, since nothing is left.
    const rebuild = await send(base, '127.0.0.1', 'POST', '/rebuild', { build_id: buildId });
    expect(rebuild.status).toBe(429);
    expect(JSON.parse(rebuild.body).response).toMatch(RETRY);
  });

  it('gives another client its own bucket', async () => {
    const other = await buildOne(base, '127.0.0.2', 'q1');
    expect(other.status, other.body).toBe(200);
    expect(limitHeaders(other)).toMatchObject({ limit: 10, remaining: 9 });
  });

  it('does not believe X-Forwarded-For from a client, only from a trusted proxy', async () => {
    const spoofed = await send(base, '127.0.0.1', 'POST', '/buildAsync', {
      full_name: 'acme/s1', clone_url: 'https://github.com/acme/s1', versions: [{ ref: '1.0.0' }],
    }, { 'X-Forwarded-For': '10.1.2.3' });
    expect(spoofed.status).toBe(429);
    const proxied = await send(base, '127.0.0.9', 'POST', '/buildAsync', {
      full_name: 'acme/s2', clone_url: 'https://github.com/acme/s2', versions: [{ ref: '1.0.0' }],
    }, { 'X-Forwarded-For': '127.0.0.1, 10.1.2.3' });
    expect(proxied.status, proxied.body).toBe(200);
    expect(limitHeaders(proxied).remaining).toBe(9);
  });

  it('does not limit an exempt request (a Bearer token), and asks the predicate', async () => {
    const before = exemptCalls;
    const exempt = await send(base, '127.0.0.1', 'POST', '/buildAsync', {
      full_name: 'acme/admin1', clone_url: 'https://github.com/acme/admin1', versions: [{ ref: '1.0.0' }],
    }, { Authorization: 'Bearer test-admin-token' });
    expect(exempt.status, exempt.body).toBe(200);
    expect(exempt.headers['x-ratelimit-limit']).toBeUndefined();
    expect(exemptCalls).toBeGreaterThan(before);
  });

  it('limits reads per minute per client, with the headers on every answer and a 429 past the limit', async () => {
    // A window ending between two of these requests would start the count again: then the whole run is repeated.
    for (let attempt = 0; attempt < 2; attempt++) {
      const from = attempt === 0 ? '127.0.0.3' : '127.0.0.4';
      const answers: Answer[] = [];
      for (let i = 0; i <= READS_PER_MINUTE; i++) answers.push(await send(base, from, 'GET', '/search?name=acme'));
      const resets = new Set(answers.map((a) => limitHeaders(a).reset));
      if (resets.size > 1) continue;
      answers.slice(0, READS_PER_MINUTE).forEach((a, i) => {
        expect(a.status, a.body).toBe(200);
        expect(limitHeaders(a)).toMatchObject({ limit: READS_PER_MINUTE, remaining: READS_PER_MINUTE - 1 - i });
      });
      const refused = answers[READS_PER_MINUTE];
      expect(refused.status).toBe(429);
      expect(JSON.parse(refused.body)).toEqual({
        result: false,
        response: `Rate limit exceeded: at most ${READS_PER_MINUTE} requests per minute from one client; retry after ${refused.headers['retry-after']} s`,
      });
      expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(60);
      expect(limitHeaders(refused)).toMatchObject({ limit: READS_PER_MINUTE, remaining: 0 });
      expect(limitHeaders(refused).reset).toBe(windowEnd(60, (limitHeaders(refused).reset - 1) * 1000));
      // /v2 answers the same refusal as problem details.
      const v2 = await send(base, from, 'GET', '/v2/keys');
      expect(v2.status).toBe(429);
      expect(v2.headers['content-type']).toBe('application/problem+json');
      expect(JSON.parse(v2.body)).toMatchObject({ status: 429, title: 'Too Many Requests' });
      expect(v2.headers['retry-after']).toBeDefined();
      // Reads do not spend the build budget, and another client still reads.
      expect((await send(base, '127.0.0.5', 'GET', '/search?name=acme')).status).toBe(200);
      return;
    }
    throw new Error('two windows ended during the reads');
  });

  it('limits a signed webhook per repository, not per address (GitHub delivers every hook from the same few)', async () => {
    const { sign } = await import('@octokit/webhooks-methods');
    const answers: Answer[] = [];
    for (let i = 1; i <= BUILDS_PER_HOUR + 1; i++) {
      const payload = JSON.stringify({
        ref: `v${i}.0.0`, ref_type: 'tag',
        repository: { full_name: 'hooked/repo', clone_url: 'https://github.com/hooked/repo.git' },
      });
      answers.push(await send(base, '127.0.0.6', 'POST', '/callback', payload, {
        'X-GitHub-Event': 'create', 'X-GitHub-Delivery': randomUUID(),
        'X-Hub-Signature-256': await sign('rate-limit-secret', payload),
      }));
    }
    answers.slice(0, BUILDS_PER_HOUR).forEach((a) => expect(a.status, a.body).toBe(200));
    const refused = answers[BUILDS_PER_HOUR];
    expect(refused.status).toBe(429);
    expect(JSON.parse(refused.body).response).toMatch(/^Rate limit exceeded: at most 10 new builds per hour for one repository; retry after \d+ s$/);
    // Another repository's hook from the same address is not held back.
    const payload = JSON.stringify({
      ref: 'v1.0.0', ref_type: 'tag', repository: { full_name: 'hooked/other', clone_url: 'https://github.com/hooked/other' },
    });
    const other = await send(base, '127.0.0.6', 'POST', '/callback', payload, {
      'X-GitHub-Event': 'create', 'X-GitHub-Delivery': randomUUID(),
      'X-Hub-Signature-256': await sign('rate-limit-secret', payload),
    });
    expect(other.status, other.body).toBe(200);
  });
});

describe.skipIf(!TEST_DATABASE_URL)('rate limits across two npm start processes on one Postgres', () => {
  let db: TestDatabase;
  const services: RunningService[] = [];
  const dirs: string[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    for (let i = 0; i < 2; i++) {
      const dataDir = await mkdtemp(join(tmpdir(), 'enot-rate-limits-npm-'));
      dirs.push(dataDir);
      // The builds these requests queue clone from an empty local directory instead of GitHub, and fail there: only
      // their creation is counted, and nothing leaves this machine.
      const mirror = pathToFileURL(join(dataDir, 'no-repositories')).href;
      services.push(await startService({
        ENOT_DATA_DIR: dataDir, DATABASE_URL: db.url, ENOT_DEFAULT_ERL_VERSION: '26', ENOT_BUILD_CONCURRENCY: '1',
        ENOT_ALLOWED_CLONE_URLS: `https://github.com/,${mirror}/`, ENOT_CLONE_REWRITE: `https://github.com/=${mirror}/`,
      }));
    }
  }, 180_000);

  afterAll(async () => {
    for (const s of services) await signalService(s, 'SIGTERM');
    await db?.drop();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('counts one client\'s new builds in one bucket whichever process answers', async () => {
    const [a, b] = services.map((s) => s.url);
    for (let i = 1; i <= BUILDS_PER_HOUR; i++) {
      const answer = await buildOne(i % 2 === 0 ? a : b, '127.0.0.1', `two${i}`);
      expect(answer.status, answer.body).toBe(200);
      expect(limitHeaders(answer).remaining).toBe(BUILDS_PER_HOUR - i);
    }
    for (const url of [a, b]) {
      const refused = await buildOne(url, '127.0.0.1', 'two11');
      expect(refused.status).toBe(429);
      expect(JSON.parse(refused.body).response).toMatch(RETRY);
    }
    expect((await buildOne(b, '127.0.0.2', 'two12')).status).toBe(200);
  }, 60_000);
});
