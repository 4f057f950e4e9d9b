// The Store's build leases (migration 005) on every driver: a claim leases a build to its worker, heartbeats renew
// only a worker's own builds, only expired (or lease-less) builds are taken over, and never by two workers at once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SqlStore } from '#adapters/postgres/open-store.js';
import { drivers } from '#support/store-drivers.js';
import { lockWaitOrSettled } from '#support/lock-waits.js';

describe.each(drivers.filter((d) => d.available))('build leases ($driver)', ({ open, concurrent }) => {
  let store: SqlStore;
  let close: () => Promise<void>;
  let repositoryId: number;
  let seq = 0;

  beforeAll(async () => {
    ({ store, close } = await open());
    repositoryId = (await store.upsertRepository({ namespace: 'lease', name: 'lib', cloneUrl: 'https://github.com/lease/lib' })).id;
  });

  afterAll(async () => {
    await close?.();
  });

  /** Fails whatever a previous case left queued or in flight, so each case starts from an empty queue. */
  async function resetQueue(): Promise<void> {
    await store.client.query(
      `UPDATE builds SET status = 'failed', finished_at = now(), message = 'reset' WHERE status IN ('queued', 'starting', 'running')`,
    );
  }

  async function queued(n: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      seq += 1;
      const version = await store.upsertVersion({ repositoryId, ref: `1.${seq}.0`, erlVersion: '25' });
      ids.push((await store.createBuild({ versionId: version.id })).id);
    }
    return ids;
  }

  async function lease(id: string): Promise<{ status: string; worker_id: string | null; age_s: number | null }> {
    const rows = await store.client.query(
      `SELECT status, worker_id, extract(epoch FROM now() - heartbeat_at)::float8 AS age_s FROM builds WHERE id = $1::uuid`, [id],
    );
    const row = rows[0];
    return { status: String(row.status), worker_id: row.worker_id == null ? null : String(row.worker_id), age_s: row.age_s == null ? null : Number(row.age_s) };
  }

  /** Makes the heartbeat of `ids` `seconds` old. */
  async function age(ids: string[], seconds: number): Promise<void> {
    await store.client.query(
      `UPDATE builds SET heartbeat_at = now() - $2::double precision * interval '1 second' WHERE id = ANY (string_to_array($1::text, ',')::uuid[])`,
      [ids.join(','), seconds],
    );
  }

  it('leases a claimed build to its worker, and renews only that worker\'s builds in flight', async () => {
    await resetQueue();
    const [a, b] = await queued(2);
    expect(await store.claimQueuedBuilds(1, 'w1')).toEqual([a]);
    expect(await store.claimQueuedBuilds(1, 'w2')).toEqual([b]);
    expect(await lease(a)).toMatchObject({ status: 'starting', worker_id: 'w1' });
    await age([a, b], 20);
    expect(await store.renewLeases('w1', [a, b])).toEqual([a]);
    expect((await lease(a)).age_s).toBeLessThan(5);
    expect((await lease(b)).age_s).toBeGreaterThan(15);
    // A finished build is nobody's to renew.
    await store.transitionBuild(a, ['starting'], 'failed', { message: 'done' });
    expect(await store.renewLeases('w1', [a])).toEqual([]);
    expect(await store.renewLeases('w1', [])).toEqual([]);
  });

  it('takes over only builds whose lease expired or that carry none, never a worker\'s own', async () => {
    await resetQueue();
    const [fresh, expired, own, none] = await queued(4);
    await store.claimQueuedBuilds(2, 'w1');
    expect(await store.claimQueuedBuilds(1, 'w2')).toEqual([own]);
    expect(await store.claimQueuedBuilds(1)).toEqual([none]); // claimed without a worker: no lease at all
    await age([expired], 31);
    await age([own], 100);
    await store.renewLeases('w1', [fresh]);
    // w2 takes the expired and the lease-less build, but not its own old one (it is alive: it is asking).
    expect((await store.takeOverExpiredLeases('w2', 30, 10)).sort()).toEqual([expired, none].sort());
    expect(await lease(expired)).toMatchObject({ status: 'starting', worker_id: 'w2' });
    expect((await lease(expired)).age_s).toBeLessThan(5);
    expect(await lease(fresh)).toMatchObject({ worker_id: 'w1' });
    expect(await lease(own)).toMatchObject({ worker_id: 'w2' });
    // To anyone else w2's old heartbeat has expired; once taken it is fresh, so not again.
    expect(await store.takeOverExpiredLeases('w3', 30, 10)).toEqual([own]);
    expect(await store.takeOverExpiredLeases('w4', 30, 10)).toEqual([]);
    expect(await store.takeOverExpiredLeases('w4', 30, 0)).toEqual([]);
  });

  it('tells whether another worker holds a live lease', async () => {
    await resetQueue();
    const [a] = await queued(1);
    expect(await store.hasLiveLeasesOfOthers('w1', 30)).toBe(false);
    await store.claimQueuedBuilds(1, 'w1');
    expect(await store.hasLiveLeasesOfOthers('w1', 30)).toBe(false);
    expect(await store.hasLiveLeasesOfOthers('w2', 30)).toBe(true);
    await age([a], 40);
    expect(await store.hasLiveLeasesOfOthers('w2', 30)).toBe(false);
  });

  it('requeues only the builds a worker holds, clearing their lease', async () => {
    await resetQueue();
    const [a, b] = await queued(2);
    await store.claimQueuedBuilds(1, 'w1');
    await store.claimQueuedBuilds(1, 'w2');
    expect(await store.requeueLeasedBuilds('w1', [a, b, 'not-a-uuid'], 'requeued: test')).toEqual([a]);
    expect(await lease(a)).toEqual({ status: 'queued', worker_id: null, age_s: null });
    expect((await store.getBuild(a))).toMatchObject({ status: 'queued', message: 'requeued: test', startedAt: null });
    expect(await lease(b)).toMatchObject({ status: 'starting', worker_id: 'w2' });
  });

  it('says whether a worker holds a build', async () => {
    await resetQueue();
    const [a] = await queued(1);
    expect(await store.holdsLease(a, 'w1')).toBe(false);
    await store.claimQueuedBuilds(1, 'w1');
    expect(await store.holdsLease(a, 'w1')).toBe(true);
    expect(await store.holdsLease(a, 'w2')).toBe(false);
    expect(await store.holdsLease('nope', 'w1')).toBe(false);
  });

  if (concurrent) it('leaves a build whose end is being recorded to its worker (the lease check locks it)', async () => {
    await resetQueue();
    const [a] = await queued(1);
    await store.claimQueuedBuilds(1, 'w1');
    await age([a], 100);
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => { locked = resolve; });
    let release!: () => void;
    const released = new Promise<void>((resolve) => { release = resolve; });
    const recording = store.transaction(async (tx) => {
      expect(await tx.holdsLease(a, 'w1')).toBe(true);
      locked();
      await released;
      await tx.transitionBuild(a, ['starting', 'running'], 'failed', { message: 'recorded by w1' });
    });
    await isLocked;
    // The taker passes the locked row by (SKIP LOCKED) instead of taking a build whose end is being written.
    const taking = store.takeOverExpiredLeases('w2', 30, 10);
    await lockWaitOrSettled(store.client, taking);
    release();
    await recording;
    expect(await taking).toEqual([]);
    expect(await store.takeOverExpiredLeases('w2', 30, 10)).toEqual([]);
    expect(await store.getBuild(a)).toMatchObject({ status: 'failed', message: 'recorded by w1' });
  });

  if (concurrent) it('hands each expired build to exactly one of many racing takers', async () => {
    await resetQueue();
    const ids = await queued(30);
    await store.claimQueuedBuilds(30, 'dead');
    await age(ids, 100);
    const taken = await Promise.all(['t1', 't2', 't3', 't4'].map((w) => store.takeOverExpiredLeases(w, 30, 10)));
    const all = taken.flat();
    expect(new Set(all).size).toBe(all.length);
    expect(all.length).toBeLessThanOrEqual(30);
    // Whatever a racer skipped is still there for the next look, and nothing is left behind.
    const rest = await store.takeOverExpiredLeases('t5', 30, 100);
    expect(new Set([...all, ...rest])).toEqual(new Set(ids));
  });
});
