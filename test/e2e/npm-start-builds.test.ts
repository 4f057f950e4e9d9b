// `npm start` building, killed and started again: builds queued over HTTP survive a SIGKILL or a SIGTERM of the
// service mid-queue and all end succeeded after the next start (none lost, none stuck), and a killed service leaves
// no build process behind. Also: without Erlang the service still answers, and builds fail saying why.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestDatabase, TEST_DATABASE_URL, type TestDatabase } from '#support/databases.js';
import { makeRepo, plainLibRepo, type ErlangRepo } from '#support/erlang-repos.js';
import { buildProcesses } from '#support/build-processes.js';
import { killAllServices, signalService, startService, type RunningService } from '#support/local-service.js';

/**
 * Starts `npm start` on `dataDir`, with DATABASE_URL when given (else PGlite in the data dir), builds allowed to
 * clone from the temp dir. `env` adds to or overrides the environment.
 */
const start = (dataDir: string, databaseUrl: string | undefined, env: Record<string, string> = {}): Promise<RunningService> =>
  startService({
    ENOT_DATA_DIR: dataDir, ENOT_BUILD_CONCURRENCY: '2', ENOT_ALLOWED_CLONE_URLS: `${pathToFileURL(tmpdir()).href}/`,
    // The waits poll /search every 100 ms: counted, never refused.
    ENOT_READ_REQUESTS_PER_MINUTE: '1000000',
    // On Postgres a killed service's builds are taken over once their lease runs out: a short one keeps this quick.
    ...(databaseUrl ? { DATABASE_URL: databaseUrl, ENOT_BUILD_LEASE_S: '3' } : {}),
    ...env,
  });

const kill = signalService;

const cleanups: Array<() => Promise<void>> = [];

interface SearchEntry { build_id: string; name: string; success: boolean }

async function search(url: string, name: string): Promise<SearchEntry[]> {
  const res = await fetch(`${url}/search?name=${encodeURIComponent(name)}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { response: SearchEntry[] }).response;
}

/** Finished builds among `ids`, by id, as /search shows them. */
async function finishedBuilds(url: string, ids: readonly string[]): Promise<Map<string, SearchEntry>> {
  const found = new Map<string, SearchEntry>();
  for (const entry of await search(url, 'npmq_')) if (ids.includes(entry.build_id)) found.set(entry.build_id, entry);
  return found;
}

/** Resolves with the first value `probe` gives that is not undefined, polling for at most `ms`. */
function waitFor<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  return vi.waitFor(async () => {
    const value = await probe();
    if (value === undefined) throw new Error(`not within ${ms} ms: ${what}`);
    return value;
  }, { timeout: ms, interval: 100 });
}

async function runningCount(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^enot_builds\{status="running"\} (\d+)$/m.exec(text)?.[1] ?? 0);
}


let repos: ErlangRepo[] = [];

beforeAll(async () => {
  // Three builds that take a few seconds (their Makefile sleeps), three quick ones.
  repos = await Promise.all([
    makeRepo({ name: 'npmq_slow_a', recipe: ['sleep 3'] }),
    makeRepo({ name: 'npmq_slow_b', recipe: ['sleep 3'] }),
    makeRepo({ name: 'npmq_slow_c', recipe: ['sleep 3'] }),
    plainLibRepo({ name: 'npmq_quick_a' }),
    plainLibRepo({ name: 'npmq_quick_b' }),
    plainLibRepo({ name: 'npmq_quick_c' }),
  ]);
});

afterEach(() => {
  // A failed assertion must not leave a server behind.
  killAllServices();
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await Promise.all(repos.map((r) => r.cleanup()));
});

/** A data dir and, when a Postgres server is configured, a database of its own. */
async function freshService(): Promise<{ dataDir: string; databaseUrl?: string }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'enot-npm-start-builds-'));
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  let db: TestDatabase | undefined;
  if (TEST_DATABASE_URL) {
    db = await createTestDatabase();
    const created = db;
    cleanups.push(() => created.drop());
  }
  return { dataDir, databaseUrl: db?.url };
}

describe.each(['SIGKILL', 'SIGTERM'] as const)('npm start killed with %s while building', (signal) => {
  it('builds every queued build after the next start', async () => {
    const { dataDir, databaseUrl } = await freshService();
    const first = await start(dataDir, databaseUrl);
    const ids: string[] = [];
    for (const repo of repos) {
      const res = await fetch(`${first.url}/buildAsync`, {
        method: 'POST',
        body: JSON.stringify({ full_name: repo.fullName, clone_url: repo.cloneUrl, versions: { ref: repo.tag }, notify_email: false }),
      });
      const text = await res.text();
      expect(res.status, text).toBe(200);
      ids.push((JSON.parse(text) as { response: { versions: { builds: { build_id: string }[] }[] } }).response.versions[0].builds[0].build_id);
    }
    // Mid-queue: some builds running, the rest waiting.
    await waitFor('a build running', 60_000, async () => ((await runningCount(first.url)) > 0 ? true : undefined));
    const doneBefore = await finishedBuilds(first.url, ids);
    expect(doneBefore.size).toBeLessThan(ids.length);

    const exit = await kill(first, signal);
    if (signal === 'SIGTERM') expect(exit).toBe(0);
    else expect(exit).toBe('SIGKILL');
    // Nothing the killed service was building runs on (the builds' own watchdog, for SIGKILL).
    await waitFor('no build process left', 15_000, async () => ((await buildProcesses(dataDir)).length === 0 ? true : undefined));

    const second = await start(dataDir, databaseUrl);
    const all = await waitFor('every build finished', 120_000, async () => {
      const done = await finishedBuilds(second.url, ids);
      return done.size === ids.length ? done : undefined;
    });
    for (const id of ids) expect(all.get(id), id).toMatchObject({ success: true });
    expect(await runningCount(second.url)).toBe(0);
    const metrics = await (await fetch(`${second.url}/metrics`)).text();
    expect(metrics).toMatch(/^enot_builds\{status="queued"\} 0$/m);
    expect(await kill(second, 'SIGTERM')).toBe(0);
    expect(await readdir(join(dataDir, 'builds'))).toEqual([]);
  }, 240_000);
});

describe('npm start without Erlang/OTP', () => {
  it('answers the API, and fails builds saying that no Erlang/OTP is installed', async () => {
    const { dataDir, databaseUrl } = await freshService();
    // No erl anywhere on PATH (node is started by its full path).
    const running = await start(dataDir, databaseUrl, { PATH: join(dataDir, 'no-bin') });
    expect(running.output()).toContain('no Erlang/OTP installed on this machine');
    const repo = repos[3];
    const res = await fetch(`${running.url}/buildAsync`, {
      method: 'POST',
      body: JSON.stringify({ full_name: repo.fullName, clone_url: repo.cloneUrl, versions: { ref: repo.tag, erl_version: '25' }, notify_email: false }),
    });
    expect(res.status).toBe(200);
    const id = ((await res.json()) as { response: { versions: { builds: { build_id: string }[] }[] } }).response.versions[0].builds[0].build_id;
    const entry = await waitFor('the build failed', 30_000, async () => (await finishedBuilds(running.url, [id])).get(id));
    expect(entry.success).toBe(false);
    const log = await fetch(`${running.url}/build_log?build_id=${id}`);
    expect(log.status).toBe(200);
    expect(await log.text()).toContain('no Erlang/OTP installed on this machine');
    expect(await (await fetch(`${running.url}/download_erts/25`)).text()).toBe('No such erlang');
    expect(await kill(running, 'SIGTERM')).toBe(0);
  }, 120_000);
});
