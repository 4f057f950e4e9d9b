// Fault: two `npm start` processes share one Postgres database (and one data directory) and its queue; one is killed
// with SIGKILL mid-build. The other takes its builds over once their lease (4 s here) expires and builds them; every
// build ends succeeded, and no build ever runs in two places at once (watched through the live scratch dirs).
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { processTreePids } from '#adapters/builder/process-tree.js';
import { createTestDatabase, TEST_DATABASE_URL, type TestDatabase } from '#support/databases.js';
import { makeRepo, type ErlangRepo } from '#support/erlang-repos.js';
import { killAllServices, signalService, startService, type RunningService } from '#support/local-service.js';

const LEASE_S = 4;

let db: TestDatabase | undefined;
let dataDir: string;
let repos: ErlangRepo[] = [];

beforeAll(async () => {
  if (!TEST_DATABASE_URL) return;
  db = await createTestDatabase();
  dataDir = await mkdtemp(join(tmpdir(), 'enot-faults-shared-'));
  repos = await Promise.all(['fs_a', 'fs_b', 'fs_c', 'fs_d'].map((name) => makeRepo({ name, recipe: ['sleep 2'] })));
});

afterAll(async () => {
  killAllServices();
  await db?.drop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
  await Promise.all(repos.map((r) => r.cleanup()));
});

const start = (): Promise<RunningService> => startService({
  DATABASE_URL: db!.url, ENOT_DATA_DIR: dataDir, ENOT_BUILD_CONCURRENCY: '1', ENOT_BUILD_LEASE_S: String(LEASE_S),
  ENOT_ALLOWED_CLONE_URLS: `${pathToFileURL(tmpdir()).href}/`,
});

/**
 * Watches `<dataDir>/builds` and records any moment at which one build id has live processes in two scratch dirs
 * (a build running twice at once). A dead run's dir may linger; only dirs with live processes count.
 */
function watchDoubleRuns(buildsDir: string): { stop(): Promise<string[]> } {
  const doubles: string[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const names = await readdir(buildsDir).catch(() => [] as string[]);
      const live = new Map<string, number>();
      for (const name of names) {
        const pids = await processTreePids({ dir: join(buildsDir, name) });
        if (pids && pids.length > 0) live.set(name.slice(0, 36), (live.get(name.slice(0, 36)) ?? 0) + 1);
      }
      for (const [id, n] of live) if (n > 1) doubles.push(id);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return doubles;
    },
  };
}

describe.skipIf(!TEST_DATABASE_URL)('two services on one Postgres, one killed', () => {
  it('takes the killed one\'s builds over after the lease, none built twice at once', async () => {
    const sql = new pg.Client({ connectionString: db!.url });
    const a = await start();
    await sql.connect();
    try {
      const ids: string[] = [];
      for (const repo of repos) {
        const res = await fetch(`${a.url}/buildAsync`, {
          method: 'POST',
          body: JSON.stringify({ full_name: repo.fullName, clone_url: repo.cloneUrl, versions: { ref: repo.tag }, notify_email: false }),
        });
        expect(res.status).toBe(200);
        ids.push(((await res.json()) as { response: { versions: { builds: { build_id: string }[] }[] } }).response.versions[0].builds[0].build_id);
      }
      const watcher = watchDoubleRuns(join(dataDir, 'builds'));
      const leased = async () => (await sql.query<{ id: string; worker_id: string }>(
        `SELECT id, worker_id FROM builds WHERE status = 'running'`)).rows;
      const firstOfA = (await vi.waitFor(async () => {
        const rows = await leased();
        expect(rows).toHaveLength(1);
        return rows;
      }, { timeout: 60_000, interval: 100 }))[0];

      // A second service on the same database and data directory leaves the first one's build alone.
      const b = await start();
      expect(b.output()).not.toMatch(/queued again/);
      // Both services build, each its own: the queue is shared, the claims are not.
      const running = await vi.waitFor(async () => {
        const rows = await leased();
        expect(new Set(rows.map((r) => r.worker_id.split(':')[1])).size).toBe(2);
        return rows;
      }, { timeout: 60_000, interval: 100 });
      const ofA = running.filter((r) => r.worker_id.split(':')[1] === String(a.child.pid)).map((r) => r.id);
      expect(ofA).toHaveLength(1);
      if (ofA[0] !== firstOfA.id) {
        // The first build ended meanwhile: by A, recorded by A.
        expect(a.output()).toMatch(new RegExp(`build finished.*${firstOfA.id}`));
      }
      expect(a.output()).not.toMatch(/another worker took this build over|no longer holds/);

      // While both live, neither takes the other's builds.
      expect(b.output()).not.toMatch(/queued again|recorded a build that had finished/);
      const killedAt = Date.now();
      expect(await signalService(a, 'SIGKILL')).toBe('SIGKILL');
      expect(a.output()).not.toMatch(/another worker took this build over|no longer holds|lost the lease/);

      // The survivor takes it over only once the lease has run out, then builds it, and everything else.
      // Queued again and built, or, when it had finished just before the kill, recorded from its stored outputs.
      const takenOver = new RegExp(`(queued again builds whose worker had gone|recorded a build that had finished).*${ofA[0]}`);
      await vi.waitFor(() => expect(b.output()).toMatch(takenOver), { timeout: 30_000, interval: 50 });
      expect(Date.now() - killedAt).toBeGreaterThanOrEqual((LEASE_S - LEASE_S / 3) * 1000 - 500);
      const finished = await vi.waitFor(async () => {
        const rows = (await sql.query<{ id: string; status: string; worker_id: string }>(
          `SELECT id, status, worker_id FROM builds`)).rows;
        expect(rows.filter((r) => r.status === 'succeeded')).toHaveLength(ids.length);
        return rows;
      }, { timeout: 90_000, interval: 200 });
      // The taken-over build was built by the survivor.
      expect(finished.find((r) => r.id === ofA[0])?.worker_id.split(':')[1]).toBe(String(b.child.pid));
      expect(await watcher.stop()).toEqual([]);
      expect(await signalService(b, 'SIGTERM')).toBe(0);
      // What the killed service left in the shared data directory went with the builds taken over.
      expect(await readdir(join(dataDir, 'builds'))).toEqual([]);
    } finally {
      await sql.end();
    }
  }, 240_000);
});
