// Every download is checked against its recorded sha256: over HTTP against the local server (PGlite, files), a package
// or ERTS whose bytes on disk were truncated, flipped, swapped for another build's, or whose record was changed, is
// answered 503 and never served; the good ones are served, hashed once; the metric and /health show the refusals.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, rename, rm, truncate, utimes, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FsBlobStore } from '#adapters/blob/fs-blob-store.js';
import { InMemoryMetrics } from '#adapters/metrics/memory-metrics.js';
import { openPgliteStore } from '#adapters/postgres/open-store.js';
import type { SqlStore } from '#adapters/postgres/sql-store.js';
import { downloadBuildArtifact } from '#core/read-artifacts.js';
import type { Log } from '#core/ports.js';
import { loadConfig } from '#functions/config.js';
import { startLocalServer, type LocalServer } from '#functions/local/server.js';
import { idlePipeline } from '#support/pipeline-deps.js';

const quiet: Log = { info() {}, warn() {}, error() {} };

let dataDir: string;
let blobDir: string;
let store: SqlStore;
let blobs: FsBlobStore;
let metrics: InMemoryMetrics;
let server: LocalServer;
let digestCalls: string[];

interface Seeded { id: string; key: string; path: string; bytes: Buffer; fullName: string }

let n = 0;
/** A succeeded build of its own package, its artifact stored and its sha256 recorded. */
async function seed(bytes = randomBytes(4000 + n * 7)): Promise<Seeded> {
  const name = `pkg${++n}`;
  const repo = await store.upsertRepository({ namespace: 'verified', name, cloneUrl: `https://github.com/verified/${name}` });
  const version = await store.upsertVersion({ repositoryId: repo.id, ref: '1.0.0', erlVersion: '26' });
  const build = await store.createBuild({ versionId: version.id });
  await store.transitionBuild(build.id, ['queued'], 'running');
  const key = `artifacts/${build.id}.ep`;
  const { sha256 } = await blobs.put(key, bytes, 'application/x-tar');
  await store.transitionBuild(build.id, ['running'], 'succeeded', { artifactKey: key, artifactSize: bytes.length, artifactSha256: sha256 });
  return { id: build.id, key, path: join(blobDir, key), bytes, fullName: `verified/${name}` };
}

const download = (s: Seeded) => fetch(`${server.url}/download/${s.id}`);
const get = (s: Seeded) => fetch(`${server.url}/get`, {
  method: 'POST', body: JSON.stringify({ full_name: s.fullName, versions: { ref: '1.0.0' } }),
});

async function expectServed(answer: Response, bytes: Buffer): Promise<void> {
  expect(answer.status).toBe(200);
  expect(answer.headers.get('content-type')).toBe('application/x-tar');
  expect(Buffer.from(await answer.arrayBuffer())).toEqual(bytes);
}

async function expectRefused(answer: Response, message: string): Promise<void> {
  expect(answer.status).toBe(503);
  expect(answer.headers.get('content-type')).toBe('application/json; charset=utf-8');
  expect(await answer.json()).toEqual({ result: false, response: message });
}

const refusal = (s: Seeded) => `the stored package of build ${s.id} does not match its checksum; it is not served`;

/** Writes `byte` at `offset` in place, keeping the size and setting the mtime back (only ctime shows it). */
async function flipInPlace(path: string, offset: number): Promise<void> {
  const before = await stat(path);
  const handle = await open(path, 'r+');
  try {
    const one = Buffer.alloc(1);
    await handle.read(one, 0, 1, offset);
    one[0] ^= 0xff;
    await handle.write(one, 0, 1, offset);
  } finally {
    await handle.close();
  }
  await utimes(path, before.atime, before.mtime);
}

async function metricValue(name: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return Number(line?.split(' ')[1]);
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'enot-verified-'));
  blobDir = join(dataDir, 'blobs');
  store = await openPgliteStore();
  blobs = new FsBlobStore(blobDir);
  digestCalls = [];
  const digest = blobs.digest.bind(blobs);
  vi.spyOn(blobs, 'digest').mockImplementation((key) => {
    digestCalls.push(key);
    return digest(key);
  });
  metrics = new InMemoryMetrics();
  server = await startLocalServer({
    deps: {
      config: loadConfig({ ENOT_DATA_DIR: dataDir, ENOT_LOG_LEVEL: 'silent', PORT: '0' }),
      store, blobs, metrics, ...idlePipeline(),
    },
    port: 0,
  });
});

afterAll(async () => {
  await server?.close();
  await store?.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('downloads checked against the recorded sha256', () => {
  it('serves a good package by /download and /get, hashing it once however often it is asked for', async () => {
    const good = await seed();
    for (let i = 0; i < 3; i++) {
      await expectServed(await download(good), good.bytes);
      await expectServed(await get(good), good.bytes);
    }
    expect(digestCalls.filter((k) => k === good.key)).toHaveLength(1);
  });

  it('refuses a truncated package with 503 on /download and /get', async () => {
    const victim = await seed();
    await truncate(victim.path, 1000);
    await expectRefused(await download(victim), refusal(victim));
    await expectRefused(await get(victim), refusal(victim));
  });

  it('refuses a package with one byte flipped in place, its size and mtime kept', async () => {
    const victim = await seed();
    await flipInPlace(victim.path, 17);
    await expectRefused(await download(victim), refusal(victim));
  });

  it('refuses a package replaced by another build\'s bytes', async () => {
    const other = await seed();
    const victim = await seed();
    const copy = join(blobDir, 'artifacts', 'swap-in');
    await (await open(copy, 'w')).close();
    const { writeFile } = await import('node:fs/promises');
    await writeFile(copy, other.bytes);
    await rename(copy, victim.path);
    await expectRefused(await get(victim), refusal(victim));
    // The other build's own download is not affected.
    await expectServed(await download(other), other.bytes);
  });

  it('refuses a verified package once its recorded sha256 is changed, without hashing it again', async () => {
    const victim = await seed();
    await expectServed(await download(victim), victim.bytes);
    const hashed = digestCalls.filter((k) => k === victim.key).length;
    await store.client.query('UPDATE builds SET artifact_sha256 = $1 WHERE id = $2::uuid', ['0f'.repeat(32), victim.id]);
    await expectRefused(await download(victim), refusal(victim));
    // And with no recorded sha256 at all (a hijack that clears it): refused too.
    await store.client.query('UPDATE builds SET artifact_sha256 = NULL WHERE id = $1::uuid', [victim.id]);
    await expectRefused(await download(victim), `the stored package of build ${victim.id} has no recorded checksum; it is not served`);
    // A known mismatch is looked at again each time (so a repair shows at once); a match never is.
    expect(digestCalls.filter((k) => k === victim.key).length).toBeGreaterThan(hashed);
  });

  it('refuses an ERTS tarball whose bytes changed, and serves it again once repaired', async () => {
    const bytes = randomBytes(2 * 1024 * 1024 + 5); // above the in-memory limit: streamed from its file
    const key = 'erts/26/erts-14.0.tar';
    const { sha256 } = await blobs.put(key, bytes, 'application/x-tar');
    await store.putErts({ release: '26', ertsVersion: '14.0', key, size: bytes.length, sha256: sha256! });
    await expectServed(await fetch(`${server.url}/download_erts/26`), bytes);
    await flipInPlace(join(blobDir, key), bytes.length - 1);
    await expectRefused(
      await fetch(`${server.url}/download_erts/26`),
      'the stored ERTS of OTP 26 does not match its checksum; it is not served',
    );
    // ERTS keys are written once: the store refuses other bytes over them, so a repair removes the damaged copy first.
    await blobs.delete(key);
    await blobs.put(key, bytes, 'application/x-tar');
    await expectServed(await fetch(`${server.url}/download_erts/26`), bytes);
  });

  it('counts every refusal in /metrics and fails /health while one is not repaired', async () => {
    const refusedBefore = await metricValue('enot_artifact_checksum_mismatch_total');
    expect(refusedBefore).toBeGreaterThanOrEqual(5);
    const victim = await seed();
    await truncate(victim.path, 10);
    await expectRefused(await download(victim), refusal(victim));
    expect(await metricValue('enot_artifact_checksum_mismatch_total')).toBe(refusedBefore + 1);

    const health = await fetch(`${server.url}/health`);
    expect(health.status).toBe(503);
    const body = await health.json() as { result: boolean; response: string };
    expect(body.result).toBe(false);
    expect(body.response).toContain('artifacts: failed (ChecksumMismatch)');
  });
});

describe('the check and the in-memory copies of small packages', () => {
  it('serves the verified copy it holds while the file changes, and refuses the file once it reads it again', async () => {
    const cached = new FsBlobStore(join(dataDir, 'blobs'));
    const uncached = new FsBlobStore(join(dataDir, 'blobs'), { downloadCacheBytes: 0 });
    const victim = await seed();
    const deps = (b: FsBlobStore) => ({ store, blobs: b, metrics: new InMemoryMetrics(), log: quiet });
    const body = async (b: FsBlobStore) => {
      const answer = await downloadBuildArtifact(deps(b), victim.id);
      if (answer?.kind !== 'stream') throw new Error('expected a stream');
      return Buffer.concat(await answer.body.toArray());
    };
    expect(await body(cached)).toEqual(victim.bytes);
    expect(await body(uncached)).toEqual(victim.bytes);
    await flipInPlace(victim.path, 0);
    // The held copy is the verified bytes: serving it serves no corrupted byte.
    expect(await body(cached)).toEqual(victim.bytes);
    // Read again from the file: its ctime moved, so it is hashed again and refused.
    await expect(downloadBuildArtifact(deps(uncached), victim.id)).rejects.toThrow(refusal(victim));
  });

  it('keeps a large download\'s descriptor closed when it refuses it', async () => {
    const bytes = randomBytes(1024 * 1024 + 1);
    const victim = await seed(bytes);
    await store.client.query('UPDATE builds SET artifact_sha256 = $1 WHERE id = $2::uuid', [
      createHash('sha256').update('something else').digest('hex'), victim.id,
    ]);
    const fresh = new FsBlobStore(join(dataDir, 'blobs'));
    await expect(downloadBuildArtifact({ store, blobs: fresh, metrics: new InMemoryMetrics(), log: quiet }, victim.id))
      .rejects.toThrow(refusal(victim));
    const { readdir, readlink } = await import('node:fs/promises');
    const open = await Promise.all((await readdir('/proc/self/fd')).map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')));
    await vi.waitFor(() => expect(open.filter((target) => target === victim.path)).toEqual([]));
  });
});
