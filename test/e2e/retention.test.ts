// Retention end to end: the sweep over a real Store and files, then what the local server answers over HTTP for
// expired logs and removed superseded artifacts; ERTS and current artifacts kept; the rows stay; the local timer.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FsBlobStore } from '#adapters/blob/fs-blob-store.js';
import { InMemoryMetrics } from '#adapters/metrics/memory-metrics.js';
import { buildBlobKeys } from '#core/build-contract.js';
import type { Log, Store } from '#core/ports.js';
import { sweepRetention } from '#core/retention.js';
import { loadConfig } from '#functions/config.js';
import { startRetentionTimer } from '#functions/local/retention-timer.js';
import { startLocalServer, type LocalServer } from '#functions/local/server.js';
import type { Deps } from '#functions/wiring.js';
import { openTestStore } from '#support/databases.js';
import { idlePipeline } from '#support/pipeline-deps.js';

const DAY_MS = 86_400_000;
const quiet: Log = { info() {}, warn() {}, error() {} };
const hex = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

let dataDir: string;
let closeStore: (() => Promise<void>) | undefined;
let store: Store;
let blobs: FsBlobStore;
let deps: Deps;
let server: LocalServer;
let versionSeq = 0;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'enot-retention-'));
  ({ store, close: closeStore } = await openTestStore());
  blobs = new FsBlobStore(join(dataDir, 'blobs'));
  const config = loadConfig({ ENOT_DATA_DIR: dataDir, ENOT_LOG_LEVEL: 'silent', PORT: '0' });
  expect(config.logRetentionDays).toBe(180);
  expect(config.supersededRetentionDays).toBe(30);
  deps = { config, store, blobs, metrics: new InMemoryMetrics(), ...idlePipeline() };
  server = await startLocalServer({ deps, port: 0 });
});

afterAll(async () => {
  await server?.close();
  await closeStore?.();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

const daysAgo = (days: number) => new Date(Date.now() - days * DAY_MS);

async function newVersion(): Promise<number> {
  const repo = await store.upsertRepository({ namespace: 'keep', name: `pkg${++versionSeq}`, cloneUrl: `github.com/keep/pkg${versionSeq}` });
  return (await store.upsertVersion({ repositoryId: repo.id, ref: '1.0.0', erlVersion: '25' })).id;
}

/** A build of `versionId` that finished `ageDays` ago, with its log (and its package, when it succeeded) stored. */
async function finished(versionId: number, status: 'succeeded' | 'failed', ageDays: number): Promise<string> {
  const at = daysAgo(ageDays);
  const build = await store.createBuild({ versionId, createdAt: new Date(at.getTime() - 60_000) });
  const keys = buildBlobKeys(build.id);
  await store.transitionBuild(build.id, ['queued'], 'starting', { at: new Date(at.getTime() - 30_000) });
  await blobs.put(keys.log, `log of ${build.id}\n`, 'text/plain; charset=utf-8');
  await blobs.put(keys.result, '{}', 'application/json');
  const update = { at, logKey: keys.log, message: status };
  if (status === 'failed') {
    await store.transitionBuild(build.id, ['starting'], 'failed', update);
  } else {
    const artifact = randomBytes(64);
    await blobs.put(keys.artifact, artifact, 'application/x-tar');
    await store.transitionBuild(build.id, ['starting'], 'succeeded', {
      ...update, artifactKey: keys.artifact, artifactSize: artifact.length, artifactSha256: hex(artifact),
    });
  }
  return build.id;
}

async function answer(path: string): Promise<{ status: number; type: string | null; text: string }> {
  const response = await fetch(server.url + path, { redirect: 'manual' });
  return { status: response.status, type: response.headers.get('content-type'), text: await response.text() };
}

describe('the retention sweep', () => {
  const ids: Record<string, string> = {};
  let ertsKey: string;
  let versionOfRebuilt: number;

  beforeAll(async () => {
    // A version rebuilt twice: its first success superseded 40 days ago (past 30), its second 5 days ago (kept).
    versionOfRebuilt = await newVersion();
    ids.first = await finished(versionOfRebuilt, 'succeeded', 200);
    ids.second = await finished(versionOfRebuilt, 'succeeded', 40);
    ids.current = await finished(versionOfRebuilt, 'succeeded', 5);
    // An old failure and an old success of versions never rebuilt: logs past 180 days, the package kept.
    ids.oldFailure = await finished(await newVersion(), 'failed', 181);
    ids.oldOnly = await finished(await newVersion(), 'succeeded', 400);
    ids.fresh = await finished(await newVersion(), 'failed', 1);
    // An ERTS registered a year ago.
    ertsKey = 'erts/25/erts-13.1.tar';
    const tar = randomBytes(128);
    await blobs.put(ertsKey, tar, 'application/x-tar');
    await store.putErts({ release: '25', ertsVersion: '13.1', key: ertsKey, size: tar.length, sha256: hex(tar), createdAt: daysAgo(365) });
  });

  it('marks the older successes of a version superseded when a newer one succeeds', async () => {
    expect((await store.getBuild(ids.first))?.supersededAt).toEqual((await store.getBuild(ids.second))?.finishedAt);
    expect((await store.getBuild(ids.second))?.supersededAt).toEqual((await store.getBuild(ids.current))?.finishedAt);
    expect((await store.getBuild(ids.current))?.supersededAt).toBeUndefined();
  });

  it('works in bounded batches, then removes exactly what is due, and a second run removes nothing', async () => {
    const bounded = await sweepRetention({ ...deps, log: quiet }, { batch: 1, maxBatches: 1 });
    expect(bounded.logsExpired).toHaveLength(1);
    expect(bounded.artifactsRemoved).toHaveLength(1);
    expect(bounded.more).toBe(true);

    const rest = await sweepRetention({ ...deps, log: quiet }, { batch: 1 });
    expect(rest.more).toBe(false);
    // Logs of builds that finished more than 180 days ago; the artifact superseded 40 days ago.
    expect([...bounded.logsExpired, ...rest.logsExpired].sort()).toEqual([ids.first, ids.oldFailure, ids.oldOnly].sort());
    expect([...bounded.artifactsRemoved, ...rest.artifactsRemoved]).toEqual([ids.first]);

    expect(await sweepRetention({ ...deps, log: quiet })).toEqual({ logsExpired: [], artifactsRemoved: [], more: false });
  });

  it('removed the blobs, kept the others, and kept and marked the rows', async () => {
    const gone = (key: string) => blobs.stat(key).then((s) => s === null);
    expect(await gone(buildBlobKeys(ids.first).artifact)).toBe(true);
    expect(await gone(buildBlobKeys(ids.first).log)).toBe(true);
    expect(await gone(buildBlobKeys(ids.first).result)).toBe(true);
    expect(await gone(buildBlobKeys(ids.oldFailure).log)).toBe(true);
    // Superseded only 5 days ago past its own 30: kept; the current and the never-rebuilt packages kept forever.
    for (const id of [ids.second, ids.current, ids.oldOnly]) expect(await gone(buildBlobKeys(id).artifact)).toBe(false);
    for (const id of [ids.second, ids.current, ids.fresh]) expect(await gone(buildBlobKeys(id).log)).toBe(false);
    expect(await gone(ertsKey)).toBe(false);

    const first = await store.getBuild(ids.first);
    expect(first).toMatchObject({ status: 'succeeded', artifactKey: buildBlobKeys(ids.first).artifact });
    expect(first?.artifactRemovedAt).toBeInstanceOf(Date);
    expect(first?.logExpiredAt).toBeInstanceOf(Date);
    expect((await store.getBuild(ids.oldOnly))?.artifactRemovedAt).toBeUndefined();
  });

  it('/build_log says an expired log expired (410), serves a fresh one, and an unknown build is a 404', async () => {
    for (const id of [ids.first, ids.oldFailure]) {
      const expired = await answer(`/build_log?build_id=${id}`);
      expect(expired.status).toBe(410);
      expect(JSON.parse(expired.text)).toEqual({ result: false, response: 'Log expired: build logs are kept 180 days' });
    }
    const fresh = await answer(`/build_log?build_id=${ids.fresh}`);
    expect(fresh).toMatchObject({ status: 200, text: `log of ${ids.fresh}\n` });
    const unknown = await answer('/build_log?build_id=00000000-0000-4000-8000-000000000000');
    expect(unknown.status).toBe(404);
  });

  it('/build_log says expired for a log gone past the retention before the sweep marked it (S3 lifecycle)', async () => {
    const id = await finished(await newVersion(), 'failed', 190);
    await blobs.delete(buildBlobKeys(id).log);
    const expired = await answer(`/build_log?build_id=${id}`);
    expect(expired.status).toBe(410);
    // Within the retention, a missing log is "no log yet", as before.
    const young = await finished(await newVersion(), 'failed', 2);
    await blobs.delete(buildBlobKeys(young).log);
    expect(JSON.parse((await answer(`/build_log?build_id=${young}`)).text).response).toBe(`No log for build ${young} yet`);
  });

  it('/download of a removed superseded build is No such build (404); the kept ones and the ERTS download', async () => {
    expect(await answer(`/download/${ids.first}`)).toMatchObject({ status: 404, text: 'No such build' });
    for (const id of [ids.second, ids.current, ids.oldOnly]) {
      expect(await answer(`/download/${id}`)).toMatchObject({ status: 200, type: 'application/x-tar' });
    }
    expect(await answer('/download_erts/25')).toMatchObject({ status: 200, type: 'application/x-tar' });
    // POST /builds lists what can be downloaded: not the removed one.
    const response = await fetch(`${server.url}/builds`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ full_name: 'keep/pkg1' }),
    });
    const listed = ((await response.json()) as { response: { build_id: string }[] }).response.map((b) => b.build_id);
    expect(listed.sort()).toEqual([ids.second, ids.current].sort());
  });

  it('never removes the last downloadable build of a version, even when the one superseding it is gone', async () => {
    const version = await newVersion();
    const older = await finished(version, 'succeeded', 100);
    const newer = await finished(version, 'succeeded', 90);
    // The newer package was removed by other means (an operator, a deleted build): the older stays.
    await store.markArtifactsRemoved([newer]);
    await sweepRetention({ ...deps, log: quiet });
    expect(await blobs.stat(buildBlobKeys(older).artifact)).not.toBeNull();
    expect((await store.getBuild(older))?.artifactRemovedAt).toBeUndefined();
  });

  it('the local timer sweeps without being asked', async () => {
    const id = await finished(await newVersion(), 'failed', 365);
    const timer = startRetentionTimer(deps, quiet, { firstAfterMs: 0 });
    try {
      await vi.waitFor(async () => expect((await store.getBuild(id))?.logExpiredAt).toBeInstanceOf(Date), { timeout: 10_000 });
      expect(await blobs.stat(buildBlobKeys(id).log)).toBeNull();
    } finally {
      await timer.stop();
    }
  });
});
