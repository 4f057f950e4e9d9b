// Fault: a second `npm start` on a PGlite data directory, and a service killed outright. The second start is refused
// at once, naming the running process, and touches nothing (the first one's build runs on and is recorded); after a
// SIGKILL the next start takes over the stale lock, opens the directory and builds what was in flight.
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { makeRepo, type ErlangRepo } from '#support/erlang-repos.js';
import { buildProcesses } from '#support/build-processes.js';
import { killAllServices, signalService, startService, type RunningService } from '#support/local-service.js';

let dataDir: string;
let repos: ErlangRepo[] = [];

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'enot-faults-datadir-'));
  repos = await Promise.all(['fd_a', 'fd_b'].map((name) => makeRepo({ name, recipe: ['sleep 3'] })));
});

afterAll(async () => {
  killAllServices();
  await rm(dataDir, { recursive: true, force: true });
  await Promise.all(repos.map((r) => r.cleanup()));
});

const start = (): Promise<RunningService> => startService({
  ENOT_DATA_DIR: dataDir, ENOT_BUILD_CONCURRENCY: '1', ENOT_ALLOWED_CLONE_URLS: `${pathToFileURL(tmpdir()).href}/`,
});

async function requestBuild(url: string, repo: ErlangRepo): Promise<string> {
  const res = await fetch(`${url}/buildAsync`, {
    method: 'POST',
    body: JSON.stringify({ full_name: repo.fullName, clone_url: repo.cloneUrl, versions: { ref: repo.tag }, notify_email: false }),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { response: { versions: { builds: { build_id: string; status: string }[] }[] } }).response.versions[0].builds[0].build_id;
}

async function running(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^enot_builds\{status="running"\} (\d+)$/m.exec(text)?.[1] ?? NaN);
}

async function succeeded(url: string, id: string): Promise<void> {
  await vi.waitFor(async () => {
    const res = await fetch(`${url}/search?name=fd_`);
    const entries = ((await res.json()) as { response: { build_id: string; success: boolean }[] }).response;
    expect(entries.find((e) => e.build_id === id)).toMatchObject({ success: true });
  }, { timeout: 60_000, interval: 200 });
}

describe('one owner per PGlite data directory', () => {
  it('refuses a second npm start at once, touching nothing, and takes over the lock of a killed one', async () => {
    const lockPath = join(dataDir, 'pglite.lock');
    const first = await start();
    const lock = JSON.parse(await readFile(lockPath, 'utf8')) as { pid: number; startedAt: string };
    expect(lock.pid).toBe(first.child.pid);

    const building = await requestBuild(first.url, repos[0]);
    await vi.waitFor(async () => expect(await running(first.url)).toBe(1), { timeout: 30_000, interval: 100 });
    const lockBefore = await stat(lockPath);

    // The second start fails fast with the owner's pid and start time, before it listens or migrates anything.
    const refusedAt = Date.now();
    const refusal = await start().then(
      (s) => { throw new Error(`the second service started: ${s.url}`); },
      (error: Error) => error.message,
    );
    expect(refusal).toContain('exited with 1 before listening');
    expect(refusal).toContain(`in use by process ${first.child.pid}`);
    expect(refusal).toContain(lock.startedAt);
    expect(refusal).not.toMatch(/requeue|queued again|migrat/i);
    expect(Date.now() - refusedAt).toBeLessThan(30_000);

    // Nothing was touched: the lock is the first one's, its build runs on and is recorded by it.
    const lockAfter = await stat(lockPath);
    expect(lockAfter.mtimeMs).toBe(lockBefore.mtimeMs);
    expect(lockAfter.ino).toBe(lockBefore.ino);
    expect(await running(first.url)).toBe(1);
    await succeeded(first.url, building);
    expect(first.output()).not.toMatch(/requeued/);

    // Killed outright mid-build: the lock stays behind, naming a process that is gone.
    const inFlight = await requestBuild(first.url, repos[1]);
    await vi.waitFor(async () => expect(await running(first.url)).toBe(1), { timeout: 30_000, interval: 100 });
    expect(await signalService(first, 'SIGKILL')).toBe('SIGKILL');
    await vi.waitFor(async () => expect(await buildProcesses(dataDir)).toEqual([]), { timeout: 15_000, interval: 100 });

    const third = await start();
    expect((JSON.parse(await readFile(lockPath, 'utf8')) as { pid: number }).pid).toBe(third.child.pid);
    await succeeded(third.url, inFlight);
    // The build that had finished before the kill is still there, as it was.
    await succeeded(third.url, building);
    expect(await signalService(third, 'SIGTERM')).toBe(0);
    // A clean stop releases the lock.
    await expect(stat(lockPath)).rejects.toMatchObject({ code: 'ENOENT' });
  }, 240_000);
});
