// A signed webhook body replayed with fresh X-GitHub-Delivery ids: a tag whose webhook build failed is built again
// from webhooks at most once an hour; the failed build is answered meanwhile. On every Store driver available.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { InMemoryMetrics } from '#adapters/metrics/memory-metrics.js';
import type { SqlStore } from '#adapters/postgres/open-store.js';
import type { PackageName } from '#core/model.js';
import type { BuildQueue } from '#core/ports.js';
import {
  rebuild, requestBuilds, requestTagBuild, WEBHOOK_REBUILD_INTERVAL_S, type BuildRequestAnswer, type BuildRequestDeps,
} from '#core/request-builds.js';
import { drivers, type Harness } from '#support/store-drivers.js';

class RecordingQueue implements BuildQueue {
  readonly ids: string[] = [];
  async enqueue(buildIds: readonly string[]): Promise<void> {
    this.ids.push(...buildIds);
  }
}

describe.each(drivers.filter((d) => d.available))('webhook rebuilds of a failed tag on $driver', ({ open }) => {
  let h: Harness;
  let store: SqlStore;
  let queue: RecordingQueue;
  let seq = 0;

  beforeAll(async () => {
    h = await open();
    store = h.store;
  }, 60_000);
  afterAll(async () => {
    await h?.close();
  });
  beforeEach(() => {
    queue = new RecordingQueue();
  });

  function deps(): BuildRequestDeps {
    return {
      store,
      queue,
      metrics: new InMemoryMetrics(),
      config: { allowedCloneUrls: ['https://github.com/'], defaultErlVersion: '25', maxVersionsPerRequest: 5 },
      log: { info: () => {}, warn: () => {}, error: () => {} },
    };
  }

  function pkg(): PackageName {
    seq += 1;
    return { namespace: 'hook', name: `limit${seq}-${Date.now()}` };
  }

  async function deliver(p: PackageName, ref = 'v1.0.0'): Promise<BuildRequestAnswer> {
    seq += 1;
    const answer = await requestTagBuild(deps(), {
      deliveryId: `replay-${p.name}-${seq}`, pkg: p, ref, cloneUrl: `https://github.com/${p.namespace}/${p.name}`,
    });
    if (typeof answer === 'string') throw new Error(answer);
    return answer;
  }

  async function fail(id: string): Promise<void> {
    await store.transitionBuild(id, ['queued'], 'starting');
    await store.transitionBuild(id, ['starting'], 'running');
    expect((await store.transitionBuild(id, ['running'], 'failed', { message: 'compile failed' }))?.status).toBe('failed');
  }

  /** Moves a build's creation back, as if it had been queued `seconds` ago. */
  async function age(id: string, seconds: number): Promise<void> {
    await store.client.query(
      `UPDATE builds SET created_at = now() - make_interval(secs => $2::double precision) WHERE id = $1::uuid`,
      [id, seconds],
    );
  }

  async function builds(p: PackageName): Promise<number> {
    const rows = await store.client.query(
      `SELECT count(*) AS n FROM builds b JOIN versions v ON v.id = b.version_id JOIN repositories r ON r.id = v.repository_id
       WHERE r.namespace = $1::text AND r.name = $2::text`,
      [p.namespace, p.name],
    );
    return Number(rows[0].n);
  }

  it('answers the failed build to replays within the hour, saying so, and queues one new build after it', async () => {
    const p = pkg();
    const first = await deliver(p);
    const failed = first.versions[0].builds[0].build_id;
    expect(first.message).toBeUndefined();
    await fail(failed);
    queue.ids.length = 0;

    for (let i = 0; i < 3; i += 1) {
      const replay = await deliver(p);
      expect(replay.versions[0].builds[0]).toMatchObject({ build_id: failed, status: 'failed' });
      expect(replay.message).toMatch(new RegExp(
        `^not built again: v1\\.0\\.0 \\(OTP 25\\) failed in build ${failed}, queued by a webhook at .*; `
        + 'a webhook builds a failed tag at most once an hour, so again from .* \\(POST /rebuild builds it now\\)$',
      ));
    }
    expect(queue.ids).toEqual([]);
    expect(await builds(p)).toBe(1);

    await age(failed, WEBHOOK_REBUILD_INTERVAL_S + 60);
    const later = await deliver(p);
    const next = later.versions[0].builds[0];
    expect(next.build_id).not.toBe(failed);
    expect(next.status).toBe('queued');
    expect(later.message).toBeUndefined();
    expect(queue.ids).toEqual([next.build_id]);
    // That one is in flight: replays get it (build once), still one build more.
    expect((await deliver(p)).versions[0].builds[0].build_id).toBe(next.build_id);
    expect(await builds(p)).toBe(2);
  });

  it('holds back only webhooks: /buildAsync and /rebuild build the failed tag again at once', async () => {
    const p = pkg();
    const failed = (await deliver(p)).versions[0].builds[0].build_id;
    await fail(failed);
    const viaApi = await requestBuilds(deps(), {
      pkg: p, cloneUrl: `https://github.com/${p.namespace}/${p.name}`, versions: [{ ref: 'v1.0.0' }],
    });
    const apiBuild = viaApi.versions[0].builds[0].build_id;
    expect(apiBuild).not.toBe(failed);
    await fail(apiBuild);
    const rebuilt = await rebuild(deps(), failed);
    expect(rebuilt.build_id).not.toBe(apiBuild);
    expect(rebuilt.status).toBe('queued');
    expect(queue.ids).toEqual([failed, apiBuild, rebuilt.build_id]);
  });

  it('does not count builds that no webhook queued, nor other tags of the package', async () => {
    const p = pkg();
    const viaApi = await requestBuilds(deps(), {
      pkg: p, cloneUrl: `https://github.com/${p.namespace}/${p.name}`, versions: [{ ref: 'v2.0.0' }],
    });
    await fail(viaApi.versions[0].builds[0].build_id);
    const hook = await deliver(p, 'v2.0.0');
    expect(hook.versions[0].builds[0].status).toBe('queued');
    expect(hook.message).toBeUndefined();
    await fail(hook.versions[0].builds[0].build_id);
    expect((await deliver(p, 'v2.0.1')).versions[0].builds[0].status).toBe('queued');
    expect((await deliver(p, 'v2.0.0')).message).toMatch(/^not built again: v2\.0\.0 /);
  });

  it('finds a version\'s newest webhook build within the window, by the database clock', async () => {
    const p = pkg();
    const answer = await deliver(p);
    const { version_id: versionId, builds: [{ build_id: id }] } = answer.versions[0];
    expect((await store.findRecentWebhookBuild(versionId, 60))?.id).toBe(id);
    await age(id, 120);
    expect(await store.findRecentWebhookBuild(versionId, 60)).toBeNull();
    expect((await store.findRecentWebhookBuild(versionId, 180))?.id).toBe(id);
  });
});
