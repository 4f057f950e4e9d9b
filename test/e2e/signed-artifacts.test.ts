// Signed artifacts and checksum indexes over HTTP: builds completed by the real completion path (real store, files,
// the local key signer) and the real local ERTS, downloaded from the local server, verified with node's crypto and
// with `openssl dgst -sha256 -verify` alone; a tampered byte fails. The index of a release lists exactly the latest
// success of each of its versions after successes, failures and rebuilds.
import { execFile } from 'node:child_process';
import { createHash, verify } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '#adapters/blob/fs-blob-store.js';
import { InMemoryMetrics } from '#adapters/metrics/memory-metrics.js';
import { LocalKeySigner } from '#adapters/signing/local-key-signer.js';
import { buildBlobKeys, type BuildResult } from '#core/build-contract.js';
import { completeBuild } from '#core/complete-build.js';
import type { Store } from '#core/ports.js';
import { loadConfig } from '#functions/config.js';
import { detectLocalOtp, registerLocalErts } from '#functions/local/local-erlang.js';
import { startLocalServer, type LocalServer } from '#functions/local/server.js';
import type { Deps } from '#functions/wiring.js';
import { openTestStore } from '#support/databases.js';
import { idlePipeline } from '#support/pipeline-deps.js';

const run = promisify(execFile);
const quiet = { info() {}, warn() {}, error() {} };

let root: string;
let store: Store;
let closeStore: (() => Promise<void>) | undefined;
let blobs: FsBlobStore;
let deps: Deps;
let server: LocalServer;
let otpRelease: string | undefined;
let refs = 0;
/** Which build is the latest success of each version, as the index must list it. */
const ids: Record<string, string> = {};

/** A build of `namespace/name ref` for `erl` that ends as `outcome`, through completeBuild; returns its id. */
async function finish(namespace: string, name: string, ref: string, erl: string, outcome: 'succeeded' | 'failed'): Promise<string> {
  const repo = await store.upsertRepository({ namespace, name, cloneUrl: `https://github.com/${namespace}/${name}` });
  const version = await store.upsertVersion({ repositoryId: repo.id, ref, erlVersion: erl });
  const build = await store.createBuild({ versionId: version.id });
  await store.transitionBuild(build.id, ['queued'], 'running', { builderId: 'local' });
  const keys = buildBlobKeys(build.id);
  const artifact = Buffer.from(`package ${namespace}/${name} ${ref} ${erl} #${refs++}`);
  const result: BuildResult = outcome === 'succeeded'
    ? {
      buildId: build.id, status: 'succeeded', message: 'compiled with erlc', commitSha: createHash('sha1').update(artifact).digest('hex'),
      otpRelease: `${erl}.1.2`, artifactSize: artifact.length, artifactSha256: createHash('sha256').update(artifact).digest('hex'),
    }
    : { buildId: build.id, status: 'failed', message: 'compile failed' };
  await blobs.put(keys.result, JSON.stringify(result), 'application/json');
  if (outcome === 'succeeded') await blobs.put(keys.artifact, artifact, 'application/x-tar');
  await blobs.put(keys.log, 'log\n', 'text/plain; charset=utf-8');
  const finished = await completeBuild({ ...deps, log: quiet, signer: deps.signer }, { buildId: build.id, state: outcome === 'succeeded' ? 'SUCCEEDED' : 'FAILED' });
  expect(finished?.status).toBe(outcome);
  return build.id;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'enot-signed-'));
  ({ store, close: closeStore } = await openTestStore());
  blobs = new FsBlobStore(join(root, 'blobs'));
  const config = loadConfig({ ENOT_DATA_DIR: root, ENOT_LOG_LEVEL: 'silent', PORT: '0', ENOT_BUILDER_ARCH: 'amd64' });
  const signer = await LocalKeySigner.open(join(root, 'signing'));
  deps = { config, store, blobs, metrics: new InMemoryMetrics(), ...idlePipeline(), signer };
  server = await startLocalServer({ deps, port: 0 });

  // A release of its own per run, so a shared database's other suites never add lines to it.
  const rel = `9${Math.floor(Math.random() * 900 + 100)}`;
  const other = `${rel}.1`;
  const ns = `signed${Date.now().toString(36)}`;
  ids.rel = rel;
  ids.other = other;
  ids.ns = ns;
  ids.one = await finish(ns, 'one', '1.0.0', rel, 'succeeded');
  await finish(ns, 'two', '1.0.0', rel, 'succeeded');
  ids.two = await finish(ns, 'two', '1.0.0', rel, 'succeeded'); // a rebuild replaces the line
  await finish(ns, 'three', '1.0.0', rel, 'failed'); // never succeeded: no line
  ids.oneNext = await finish(ns, 'one', '1.1.0', rel, 'succeeded');
  await finish(ns, 'one', '1.1.0', rel, 'failed'); // a failed rebuild leaves the success listed
  // Two completions at once: the advisory lock keeps both lines.
  [ids.four, ids.five] = await Promise.all([
    finish(ns, 'four', '2.0.0', rel, 'succeeded'), finish(ns, 'five', '2.0.0', rel, 'succeeded'),
  ]);
  ids.otherRelease = await finish(ns, 'one', '1.0.0', other, 'succeeded');

  const otp = await detectLocalOtp();
  if (otp) {
    otpRelease = otp.release;
    await registerLocalErts({ store, blobs, otp, scratchDir: join(root, 'tmp'), signer, arch: 'amd64' });
  }
}, 180_000);

afterAll(async () => {
  await server?.close();
  await closeStore?.();
  if (root) await rm(root, { recursive: true, force: true });
});

interface ListedKey { key_id: string; pem: string; jwk: Record<string, string>; not_before: string; not_after: string | null }

async function keys(): Promise<ListedKey[]> {
  const res = await fetch(`${server.url}/v2/keys`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('application/json');
  return ((await res.json()) as { keys: ListedKey[] }).keys;
}

/** The download's statement, checked against its signature, the key it names and the body's sha256. */
async function verifiedStatement(res: Response): Promise<Record<string, unknown>> {
  expect(res.status).toBe(200);
  const body = Buffer.from(await res.arrayBuffer());
  const sha256 = res.headers.get('x-enot-sha256')!;
  const signature = Buffer.from(res.headers.get('x-enot-signature')!, 'base64');
  const statementBytes = Buffer.from(res.headers.get('x-enot-statement')!, 'base64');
  const statement = JSON.parse(statementBytes.toString('utf8')) as Record<string, unknown>;
  const key = (await keys()).find((k) => k.key_id === statement.key_id);
  expect(key, 'the statement names a listed key').toBeDefined();
  expect(verify('sha256', statementBytes, key!.pem, signature)).toBe(true);
  // Verified with the JWK too: the two forms are one key.
  expect(verify('sha256', statementBytes, { key: key!.jwk, format: 'jwk' }, signature)).toBe(true);
  expect(createHash('sha256').update(body).digest('hex')).toBe(sha256);
  expect(statement.sha256).toBe(sha256);
  expect(statement.size).toBe(body.length);
  // One tampered byte anywhere in the statement, and it no longer verifies.
  for (const at of [0, Math.floor(statementBytes.length / 2), statementBytes.length - 1]) {
    const tampered = Buffer.from(statementBytes);
    tampered[at] ^= 0x01;
    expect(verify('sha256', tampered, key!.pem, signature)).toBe(false);
  }
  return statement;
}

describe('signed downloads', () => {
  it('GET /download/{id} carries the sha256, signature and statement of the build', async () => {
    const statement = await verifiedStatement(await fetch(`${server.url}/download/${ids.two}`));
    const build = (await store.getBuild(ids.two))!;
    expect(statement).toEqual({
      namespace: ids.ns, name: 'two', ref: '1.0.0', commit: build.commitSha, erl_version: ids.rel,
      otp_version: `${ids.rel}.1.2`, arch: 'amd64', sha256: build.artifactSha256, size: build.artifactSize,
      built_at: build.finishedAt!.toISOString(), key_id: statement.key_id,
    });
    // Canonical: sorted keys, no spaces.
    expect(Buffer.from((await fetch(`${server.url}/download/${ids.two}`)).headers.get('x-enot-statement')!, 'base64').toString())
      .toMatch(/^\{"arch":"amd64","built_at":"[^"]+","commit":"[0-9a-f]{40}","erl_version":/);
  });

  it('POST /get answers the same headers for the newest match', async () => {
    const res = await fetch(`${server.url}/get`, {
      method: 'POST', body: JSON.stringify({ full_name: `${ids.ns}/one`, versions: { ref: '1.1.0', erl_version: ids.rel } }),
    });
    expect(res.headers.get('content-type')).toBe('application/x-tar');
    const statement = await verifiedStatement(res);
    expect(statement).toMatchObject({ name: 'one', ref: '1.1.0' });
  });

  it('a miss on /get stays the bare `No such build`, with no signing headers', async () => {
    const res = await fetch(`${server.url}/get`, { method: 'POST', body: JSON.stringify({ full_name: `${ids.ns}/three` }) });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('No such build');
    expect(res.headers.get('x-enot-signature')).toBeNull();
  });

  it('GET /download_erts/{release} carries the signed statement of the ERTS tarball', async (ctx) => {
    // Only on a machine without Erlang/OTP (no ERTS to sign); CI installs it, so this never skips there.
    if (!otpRelease) ctx.skip();
    const statement = await verifiedStatement(await fetch(`${server.url}/download_erts/${otpRelease}`));
    expect(statement).toMatchObject({ namespace: 'erlang', name: 'erts', commit: null, erl_version: otpRelease, arch: 'amd64' });
  });

  it('openssl alone verifies a downloaded package: key.pem, the .sig and the statement; a tampered byte fails', async () => {
    const res = await fetch(`${server.url}/download/${ids.one}`);
    const body = Buffer.from(await res.arrayBuffer());
    const statementBytes = Buffer.from(res.headers.get('x-enot-statement')!, 'base64');
    const statement = JSON.parse(statementBytes.toString()) as { key_id: string; sha256: string };
    const key = (await keys()).find((k) => k.key_id === statement.key_id)!;
    const dir = await mkdtemp(join(root, 'openssl-'));
    await writeFile(join(dir, 'key.pem'), key.pem);
    await writeFile(join(dir, 'statement.json'), statementBytes);
    await writeFile(join(dir, 'statement.json.sig'), Buffer.from(res.headers.get('x-enot-signature')!, 'base64'));
    await writeFile(join(dir, 'one.ep'), body);
    const ok = await run('openssl', ['dgst', '-sha256', '-verify', 'key.pem', '-signature', 'statement.json.sig', 'statement.json'], { cwd: dir });
    expect(ok.stdout.trim()).toBe('Verified OK');
    const digest = await run('openssl', ['dgst', '-sha256', '-r', 'one.ep'], { cwd: dir });
    expect(digest.stdout.split(' ')[0]).toBe(statement.sha256);
    const tampered = Buffer.from(statementBytes);
    tampered[10] ^= 0x01;
    await writeFile(join(dir, 'statement.json'), tampered);
    await expect(run('openssl', ['dgst', '-sha256', '-verify', 'key.pem', '-signature', 'statement.json.sig', 'statement.json'], { cwd: dir }))
      .rejects.toMatchObject({ stdout: expect.stringContaining('Verification failure') });
  });
});

describe('GET /v2/keys', () => {
  it('lists the signing key with its id, PEM, JWK and validity', async () => {
    const listed = await keys();
    const current = listed.filter((k) => k.not_after === null);
    expect(current.length).toBeGreaterThanOrEqual(1);
    expect(current.map((k) => k.key_id)).toContain(await deps.signer!.keyId());
    const key = listed.find((k) => k.key_id === current.at(-1)!.key_id)!;
    expect(key.pem).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    expect(key.jwk).toMatchObject({ kty: 'EC', crv: 'P-256', kid: key.key_id, alg: 'ES256' });
    expect(Number.isNaN(Date.parse(key.not_before))).toBe(false);
  });
});

describe('checksum indexes', () => {
  async function indexOf(name: string): Promise<{ text: string; signature: Buffer }> {
    const res = await fetch(`${server.url}/v2/index/${name}.txt`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    const text = await res.text();
    const sig = await fetch(`${server.url}/v2/index/${name}.txt.sig`);
    expect(sig.status).toBe(200);
    return { text, signature: Buffer.from(await sig.arrayBuffer()) };
  }

  async function lineOf(id: string): Promise<string> {
    const b = (await store.getBuild(id))!;
    return `${b.namespace}/${b.name} ${b.ref} ${b.commitSha} ${b.finishedAt!.toISOString()} ${b.artifactSha256} ${b.artifactSize}`;
  }

  it('lists exactly the latest success of each version of the release, sorted, and its signature verifies', async () => {
    const { text, signature } = await indexOf(ids.rel);
    const expected = (await Promise.all([ids.one, ids.oneNext, ids.two, ids.four, ids.five].map(lineOf))).sort();
    expect(text).toBe(expected.map((l) => `${l}\n`).join(''));
    const current = (await keys()).filter((k) => k.not_after === null);
    expect(current.some((k) => verify('sha256', Buffer.from(text), k.pem, signature))).toBe(true);
    const tampered = Buffer.from(text);
    tampered[5] ^= 0x01;
    expect(current.some((k) => verify('sha256', tampered, k.pem, signature))).toBe(false);
  });

  it('keeps each release apart, and openssl verifies the .sig as served', async () => {
    const { text, signature } = await indexOf(ids.other);
    expect(text).toBe(`${await lineOf(ids.otherRelease)}\n`);
    const dir = await mkdtemp(join(root, 'index-'));
    const key = (await keys()).find((k) => k.not_after === null)!;
    await writeFile(join(dir, 'key.pem'), key.pem);
    await writeFile(join(dir, 'index.txt'), text);
    await writeFile(join(dir, 'index.txt.sig'), signature);
    const ok = await run('openssl', ['dgst', '-sha256', '-verify', 'key.pem', '-signature', 'index.txt.sig', 'index.txt'], { cwd: dir });
    expect(ok.stdout.trim()).toBe('Verified OK');
  });

  it('lists the registered ERTS in erts.txt', async (ctx) => {
    // Only on a machine without Erlang/OTP (no ERTS to sign); CI installs it, so this never skips there.
    if (!otpRelease) ctx.skip();
    const { text } = await indexOf('erts');
    const erts = (await store.getErts(otpRelease!))!;
    expect(text.split('\n')).toContain(`${erts.release} ${erts.ertsVersion} ${erts.createdAt.toISOString()} ${erts.sha256} ${erts.size}`);
  });

  it('answers a name that is no index, and an index not written, with a 404 problem', async () => {
    for (const file of ['nope.txt', '25.json', '..%2Fkeys.txt', '1.2.3.4.5.txt', `${ids.rel}0.txt`]) {
      const res = await fetch(`${server.url}/v2/index/${file}`);
      expect(res.status, file).toBe(404);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(await res.json()).toMatchObject({ type: 'about:blank', title: 'Not Found', status: 404, detail: expect.any(String) });
    }
  });
});
