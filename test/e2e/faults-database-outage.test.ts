// Fault: Postgres goes away for 10 s while builds finish. `npm start` runs on a private Postgres cluster this suite
// starts (never the machine's shared one); the cluster is stopped while three builds run. During the outage every
// request that needs the database answers 503 with Retry-After in the envelope (never 500); the builds that finished
// meanwhile are recorded once it is back: none stuck in flight, none lost, none built again.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { makeRepo, type ErlangRepo } from '#support/erlang-repos.js';
import { killAllServices, signalService, startService, type RunningService } from '#support/local-service.js';
import { postgresBinDir, startPrivatePostgres, type PrivatePostgres } from '#support/private-postgres.js';

const OUTAGE_MS = 10_000;

let pg: PrivatePostgres | undefined;
let dataDir: string;
let repos: ErlangRepo[] = [];
let service: RunningService | undefined;

beforeAll(async () => {
  pg = await startPrivatePostgres();
  dataDir = await mkdtemp(join(tmpdir(), 'enot-faults-outage-'));
  // Each build sleeps long enough to be running when the database goes, and short enough to end during the outage.
  repos = await Promise.all(['fo_a', 'fo_b', 'fo_c'].map((name) => makeRepo({ name, recipe: ['sleep 3'] })));
});

afterAll(async () => {
  killAllServices();
  await pg?.remove();
  await rm(dataDir, { recursive: true, force: true });
  await Promise.all(repos.map((r) => r.cleanup()));
});

async function metric(url: string, status: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(new RegExp(`^enot_builds\\{status="${status}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
}

/** The answer must be a 503 in the envelope, with a Retry-After of whole seconds and no driver detail. */
async function expectUnavailable(res: Response): Promise<void> {
  const text = await res.text();
  expect(res.status, text).toBe(503);
  expect(res.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
  expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
  const body = JSON.parse(text) as { result: unknown; response: unknown };
  expect(body.result).toBe(false);
  expect(typeof body.response).toBe('string');
  expect(body.response).toMatch(/database/);
  expect(text).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|57P01|terminat/i);
}

describe.skipIf(!postgresBinDir())('a Postgres outage while builds finish', () => {
  it('answers 503 with Retry-After during it, and records every build that finished once it is back', async () => {
    service = await startService({
      DATABASE_URL: pg!.url, ENOT_DATA_DIR: dataDir, ENOT_BUILD_CONCURRENCY: '3',
      ENOT_ALLOWED_CLONE_URLS: `${pathToFileURL(tmpdir()).href}/`,
    });
    const { url } = service;
    const ids: string[] = [];
    for (const repo of repos) {
      const res = await fetch(`${url}/buildAsync`, {
        method: 'POST',
        body: JSON.stringify({ full_name: repo.fullName, clone_url: repo.cloneUrl, versions: { ref: repo.tag }, notify_email: false }),
      });
      expect(res.status).toBe(200);
      ids.push(((await res.json()) as { response: { versions: { builds: { build_id: string }[] }[] } }).response.versions[0].builds[0].build_id);
    }
    await vi.waitFor(async () => expect(await metric(url, 'running')).toBe(3), { timeout: 60_000, interval: 100 });

    await pg!.stop();
    const outageStarted = Date.now();

    // Reads, build requests and the metrics all need the database: each says so with a 503.
    await expectUnavailable(await fetch(`${url}/search?name=fo_`));
    await expectUnavailable(await fetch(`${url}/buildAsync`, {
      method: 'POST',
      body: JSON.stringify({ full_name: repos[0].fullName, clone_url: repos[0].cloneUrl, versions: { ref: '2.0.0' }, notify_email: false }),
    }));
    await expectUnavailable(await fetch(`${url}/builds`, { method: 'POST', body: JSON.stringify({ full_name: repos[0].fullName }) }));
    expect((await fetch(`${url}/health`)).status).toBe(503);

    // Every build ends while the database is down (on a loaded machine the outage lasts until they have): the
    // worker says it will record each when it can.
    await vi.waitFor(() => {
      for (const id of ids) expect(service!.output()).toMatch(new RegExp(`could not be recorded: the database is unavailable; retrying.*${id}`));
    }, { timeout: 60_000, interval: 100 });
    await expectUnavailable(await fetch(`${url}/last_builds`));
    // The rest of the 10 s: the outage's length is the fault under test, not a wait for something to happen.
    await new Promise((r) => setTimeout(r, Math.max(0, OUTAGE_MS - (Date.now() - outageStarted))));
    await expectUnavailable(await fetch(`${url}/search?name=fo_`));

    await pg!.start();
    const found = await vi.waitFor(async () => {
      const res = await fetch(`${url}/search?name=fo_`);
      expect(res.status).toBe(200);
      const entries = ((await res.json()) as { response: { build_id: string; success: boolean }[] }).response;
      expect(entries.map((e) => e.build_id).sort()).toEqual([...ids].sort());
      return entries;
    }, { timeout: 60_000, interval: 200 });
    // 0 lost: all three succeeded, with their packages; 0 stuck: nothing left in flight or queued.
    expect(found.every((e) => e.success)).toBe(true);
    for (const id of ids) {
      const download = await fetch(`${url}/download/${id}`);
      expect(download.status).toBe(200);
      expect((await download.arrayBuffer()).byteLength).toBeGreaterThan(0);
    }
    for (const status of ['queued', 'starting', 'running']) expect(await metric(url, status), status).toBe(0);
    // Recorded from the run that finished during the outage, not built again.
    const output = service.output();
    for (const id of ids) expect(output).toMatch(new RegExp(`recorded a build end after the database came back.*${id}`));
    expect(output).not.toMatch(/queued again/);
    // The outage was answered, never logged as a server error.
    expect(output).not.toMatch(/"unhandled error"/);

    expect(await signalService(service, 'SIGTERM')).toBe(0);
  }, 180_000);
});
