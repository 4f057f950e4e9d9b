// GET /metrics and GET /health end to end, and X-Correlation-Id on every answer: the local server over real
// HTTP, a real Store (Postgres when DATABASE_URL is set, else PGlite) and files for blobs.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '#adapters/blob/fs-blob-store.js';
import { InMemoryMetrics } from '#adapters/metrics/memory-metrics.js';
import { BUILD_STATUSES, type Build, type BuildStatus } from '#core/model.js';
import type { Store } from '#core/ports.js';
import { loadConfig } from '#functions/config.js';
import { startLocalServer, type LocalServer } from '#functions/local/server.js';
import type { Deps } from '#functions/wiring.js';
import { openTestStore } from '#support/databases.js';
import { failingStore } from '#support/failing-store.js';
import { idlePipeline } from '#support/pipeline-deps.js';
import { JSON_TYPE } from '#support/envelope-assertions.js';

const PROMETHEUS_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** How many builds of each status the store gets: all different, so a swapped label shows. */
const SEEDED: Record<BuildStatus, number> = { queued: 2, starting: 1, running: 3, succeeded: 4, failed: 5 };

let dataDir: string;
let closeStore: (() => Promise<void>) | undefined;
let store: Store;
let blobs: FsBlobStore;
let deps: Deps;
let server: LocalServer;
const succeeded: Build[] = [];

async function seed(): Promise<void> {
  const repo = await store.upsertRepository({ namespace: 'ops', name: 'probe', cloneUrl: 'https://github.com/ops/probe' });
  let n = 0;
  for (const status of BUILD_STATUSES) {
    for (let i = 0; i < SEEDED[status]; i++) {
      const version = await store.upsertVersion({ repositoryId: repo.id, ref: `1.0.${n++}`, erlVersion: '26' });
      const build = await store.createBuild({ versionId: version.id });
      if (status === 'queued') continue;
      if (status === 'starting') {
        expect(await store.transitionBuild(build.id, ['queued'], 'starting')).not.toBeNull();
        continue;
      }
      expect(await store.transitionBuild(build.id, ['queued'], 'running')).not.toBeNull();
      if (status === 'running') continue;
      const artifactKey = status === 'succeeded' ? `artifacts/${build.id}.ep` : null;
      const stored = artifactKey ? await blobs.put(artifactKey, randomBytes(512), 'application/x-tar') : undefined;
      const done = await store.transitionBuild(build.id, ['running'], status, {
        artifactKey, artifactSha256: stored?.sha256 ?? null, message: status,
      });
      expect(done?.status).toBe(status);
      if (status === 'succeeded') succeeded.push(done!);
    }
  }
  const erts = randomBytes(256);
  const { sha256 } = await blobs.put('erts/26/erts-14.0.tar', erts, 'application/x-tar');
  await store.putErts({ release: '26', ertsVersion: '14.0', key: 'erts/26/erts-14.0.tar', size: erts.length, sha256: sha256! });
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'enot-ops-'));
  ({ store, close: closeStore } = await openTestStore());
  blobs = new FsBlobStore(join(dataDir, 'blobs'));
  const config = loadConfig({ ENOT_DATA_DIR: dataDir, ENOT_LOG_LEVEL: 'silent', PORT: '0' });
  deps = { config, store, blobs, metrics: new InMemoryMetrics(), ...idlePipeline() };
  server = await startLocalServer({ deps, port: 0 });
  await seed();
});

afterAll(async () => {
  await server?.close();
  await closeStore?.();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** The samples of an exposition, `name{labels}` -> value; fails on a line that is neither a sample nor HELP/TYPE. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.trimEnd().split('\n')) {
    if (/^# (HELP|TYPE) /.test(line)) continue;
    const m = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    expect(m, line).not.toBeNull();
    out.set(m![1], Number(m![2]));
  }
  return out;
}

async function scrape(): Promise<{ text: string; values: Map<string, number> }> {
  const res = await fetch(`${server.url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe(PROMETHEUS_TYPE);
  const text = await res.text();
  return { text, values: samples(text) };
}

describe('GET /metrics', () => {
  it('shows the exact number of builds in each status, the queue depth and enot_up', async () => {
    const { text, values } = await scrape();
    for (const status of BUILD_STATUSES) {
      expect(values.get(`enot_builds{status="${status}"}`), status).toBe(SEEDED[status]);
    }
    expect(values.get('enot_queue_depth')).toBe(SEEDED.queued + SEEDED.starting);
    expect(values.get('enot_up')).toBe(1);
    for (const family of ['enot_builds', 'enot_queue_depth', 'enot_up']) {
      expect(text).toContain(`# HELP ${family} `);
      expect(text).toMatch(new RegExp(`^# TYPE ${family} gauge$`, 'm'));
    }
  });

  it('follows the store as builds move', async () => {
    const queued = (await store.upsertVersion({
      repositoryId: (await store.upsertRepository({ namespace: 'ops', name: 'probe', cloneUrl: 'x' })).id,
      ref: '9.9.9', erlVersion: '26',
    }));
    const build = await store.createBuild({ versionId: queued.id });
    let { values } = await scrape();
    expect(values.get('enot_builds{status="queued"}')).toBe(SEEDED.queued + 1);
    await store.transitionBuild(build.id, ['queued'], 'failed', { message: 'cancelled' });
    ({ values } = await scrape());
    expect(values.get('enot_builds{status="queued"}')).toBe(SEEDED.queued);
    expect(values.get('enot_builds{status="failed"}')).toBe(SEEDED.failed + 1);
    expect(values.get('enot_queue_depth')).toBe(SEEDED.queued + SEEDED.starting);
    // Later tests compare with the store as it now is.
    SEEDED.failed += 1;
  });

  it('counts the packages and ERTS served since the process started', async () => {
    let { values } = await scrape();
    expect(values.get('enot_downloads_total')).toBe(0);
    expect(values.get('enot_erts_downloads_total')).toBe(0);

    const a = await fetch(`${server.url}/download/${succeeded[0].id}`);
    expect(a.status).toBe(200);
    await a.arrayBuffer();
    const b = await fetch(`${server.url}/get`, { method: 'POST', body: JSON.stringify({ full_name: 'ops/probe' }) });
    expect(b.status).toBe(200);
    expect(b.headers.get('content-type')).toBe('application/x-tar');
    await b.arrayBuffer();
    const e = await fetch(`${server.url}/download_erts/26`);
    expect(e.status).toBe(200);
    await e.arrayBuffer();
    // Nothing served: not counted.
    expect(await (await fetch(`${server.url}/download_erts/19`)).text()).toBe('No such erlang');
    expect(await (await fetch(`${server.url}/get`, {
      method: 'POST', body: JSON.stringify({ full_name: 'ops/none' }),
    })).text()).toBe('No such build');

    ({ values } = await scrape());
    expect(values.get('enot_downloads_total')).toBe(2);
    expect(values.get('enot_erts_downloads_total')).toBe(1);
    expect(values.get('enot_builds_queued_total')).toBe(0);
  });
});

describe('GET /health', () => {
  it('answers 200 with every check ok and timed', async () => {
    const res = await fetch(`${server.url}/health`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(JSON_TYPE);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = await res.json() as { result: boolean; response: { status: string; checks: Record<string, { ok: boolean; ms: number }> } };
    expect(body.result).toBe(true);
    expect(body.response.status).toBe('ok');
    expect(Object.keys(body.response.checks).sort()).toEqual(['artifacts', 'blobs', 'builder', 'database']);
    for (const check of Object.values(body.response.checks)) {
      expect(Object.keys(check).sort()).toEqual(['ms', 'ok']);
      expect(check.ok).toBe(true);
      expect(Number.isInteger(check.ms) && check.ms >= 0).toBe(true);
    }
  });
});

describe('X-Correlation-Id', () => {
  it('is echoed when sane, on data, ops and error answers alike', async () => {
    for (const [path, status] of [['/search?name=x', 200], ['/metrics', 200], ['/health', 200], ['/search', 400], ['/nowhere', 404]] as const) {
      const res = await fetch(server.url + path, { headers: { 'X-Correlation-Id': 'deploy-check-17' } });
      expect(res.status, path).toBe(status);
      expect(res.headers.get('x-correlation-id'), path).toBe('deploy-check-17');
      await res.arrayBuffer();
    }
  });

  it('is the request id when absent or not a sane token', async () => {
    for (const headers of [{}, { 'X-Correlation-Id': 'two words' }, { 'X-Correlation-Id': 'x'.repeat(200) }] as Record<string, string>[]) {
      const res = await fetch(`${server.url}/search?name=x`, { headers });
      const requestId = res.headers.get('x-request-id');
      expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
      expect(res.headers.get('x-correlation-id')).toBe(requestId);
      await res.arrayBuffer();
    }
  });
});

// Last: it installs other dependencies for the whole process.
describe('GET /health with a database that fails', () => {
  let faulty: LocalServer;

  beforeAll(async () => {
    const broken = failingStore(store, ['ping']);
    faulty = await startLocalServer({ deps: { ...deps, store: broken }, port: 0 });
  });

  afterAll(async () => {
    await faulty?.close();
  });

  it('answers 503 naming the failed check, with no detail of the failure', async () => {
    const res = await fetch(`${faulty.url}/health`, { headers: { 'x-correlation-id': 'probe-1' } });
    expect(res.status).toBe(503);
    expect(res.headers.get('content-type')).toBe(JSON_TYPE);
    expect(res.headers.get('x-correlation-id')).toBe('probe-1');
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({ result: false, response: 'unhealthy: database: failed (Error)' });
    expect(text).not.toMatch(/10\.1\.2\.3|hunter2/);
  });

  it('still serves /metrics from the same store', async () => {
    const res = await fetch(`${faulty.url}/metrics`);
    expect(res.status).toBe(200);
    expect(samples(await res.text()).get('enot_builds{status="running"}')).toBe(SEEDED.running);
  });
});
