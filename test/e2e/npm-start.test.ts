// `npm start` as a user runs it: a real process on PGlite in a data dir, answering, stopping cleanly on SIGTERM, reopening.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '#functions/config.js';
import { buildDeps } from '#functions/wiring.js';
import { killAllServices, signalService, startService, type RunningService } from '#support/local-service.js';

/** Starts `npm start` on PGlite in `dataDir` (no DATABASE_URL). */
const start = (dataDir: string): Promise<RunningService> => startService({ ENOT_DATA_DIR: dataDir }, 60_000);

/** Sends SIGTERM and resolves with the exit code, failing past `ms`. */
const stop = (running: RunningService, ms = 10_000) => signalService(running, 'SIGTERM', ms);

async function expectNoSuchBuild(url: string): Promise<void> {
  const res = await fetch(`${url}/get`, {
    method: 'POST', body: JSON.stringify({ full_name: 'a/b', versions: { ref: '1.0.0' } }),
  });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
  expect(Buffer.from(await res.arrayBuffer())).toEqual(Buffer.from('No such build'));
}

describe('npm start', () => {
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'enot-npm-start-'));
  });

  afterEach(() => {
    // A failed assertion must not leave a server behind.
    killAllServices();
  });

  afterAll(async () => {
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('serves the API on PGlite and exits 0 on SIGTERM', async () => {
    const running = await start(dataDir);
    const search = await fetch(`${running.url}/search?name=x`);
    expect(search.status).toBe(200);
    expect(search.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await search.text()).toBe('{"result":true,"response":[]}');
    await expectNoSuchBuild(running.url);
    expect(await stop(running)).toBe(0);
    // One access log line per request, as JSON.
    const access = running.output().split('\n').filter((l) => l.includes('"path":"/search"'));
    expect(access).toHaveLength(1);
    expect(JSON.parse(access[0])).toMatchObject({ method: 'GET', status: 200, requestId: expect.any(String), ms: expect.any(Number) });
  });

  it('reopens the same data dir, with what was stored there', async () => {
    // Written while no server runs: it only works if the previous run closed PGlite cleanly.
    const artifact = randomBytes(4096);
    const deps = await buildDeps(loadConfig({ ENOT_DATA_DIR: dataDir, ENOT_LOG_LEVEL: 'silent' }));
    try {
      const repo = await deps.store.upsertRepository({ namespace: 'a', name: 'b', cloneUrl: 'https://github.com/a/b' });
      const version = await deps.store.upsertVersion({ repositoryId: repo.id, ref: '1.0.0', erlVersion: '25' });
      const build = await deps.store.createBuild({ versionId: version.id });
      const key = `artifacts/${build.id}.ep`;
      await deps.blobs.put(key, artifact, 'application/x-tar');
      await deps.store.transitionBuild(build.id, ['queued'], 'succeeded', {
        artifactKey: key, artifactSize: artifact.length, artifactSha256: createHash('sha256').update(artifact).digest('hex'),
      });
    } finally {
      await deps.store.close();
    }

    const running = await start(dataDir);
    const res = await fetch(`${running.url}/get`, {
      method: 'POST', body: JSON.stringify({ full_name: 'a/b', versions: { ref: '1.0.0' } }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-tar');
    expect(Buffer.from(await res.arrayBuffer())).toEqual(artifact);
    const versions = await fetch(`${running.url}/versions`, { method: 'POST', body: '{"full_name":"a/b"}' });
    expect(((await versions.json()) as { response: { ref: string }[] }).response.map((v) => v.ref)).toEqual(['1.0.0']);
    expect(await stop(running)).toBe(0);

    // And once more, after this run's own shutdown.
    const again = await start(dataDir);
    expect(((await (await fetch(`${again.url}/search?name=b`)).json()) as { response: unknown[] }).response).toHaveLength(1);
    const res2 = await fetch(`${again.url}/get`, { method: 'POST', body: '{"full_name":"a/b"}' });
    expect(Buffer.from(await res2.arrayBuffer())).toEqual(artifact);
    expect(await stop(again)).toBe(0);
  });
});
