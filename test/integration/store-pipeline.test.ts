// The Store methods of the build pipeline, on every driver: PGlite always; pg and the Data API (through the test
// server) with DATABASE_URL. Notify fields, webhook deliveries, the queue (claim, requeue, stuck builds), and the
// reads the build requests make.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Build, BuildStatus, Repository, Version } from '#core/model.js';
import type { SqlStore } from '#adapters/postgres/open-store.js';
import { lockWaitOrSettled } from '#support/lock-waits.js';
import { drivers, type Harness } from '#support/store-drivers.js';

const T0 = Date.UTC(2024, 0, 1);
/** A fixed instant `minutes` after 2024-01-01T00:00Z, so orderings never depend on the clock. */
const at = (minutes: number) => new Date(T0 + minutes * 60_000);

describe.each(drivers)('pipeline Store methods on $driver', ({ available, open, concurrent }) => {
  if (!available) {
    // Only on a machine without a Postgres server; CI always sets DATABASE_URL, so this never skips there.
    it.skip('needs DATABASE_URL', () => {});
    return;
  }

  let h: Harness;
  let store: SqlStore;
  let repo: Repository;
  let counter = 0;

  beforeAll(async () => {
    h = await open();
    store = h.store;
    repo = await store.upsertRepository({ namespace: 'pipe', name: 'line', cloneUrl: 'https://github.com/pipe/line.git' });
  });

  afterAll(async () => {
    await h?.close();
  });

  /** A version nobody else in this suite uses. */
  async function freshVersion(erlVersion = '25'): Promise<Version> {
    counter += 1;
    return store.upsertVersion({ repositoryId: repo.id, ref: `v${counter}.0.0`, erlVersion });
  }

  async function move(build: Build, to: BuildStatus, minute: number): Promise<Build> {
    const path: BuildStatus[] = ['queued', 'starting', 'running', to];
    let current = build;
    for (let i = path.indexOf(current.status) + 1; i < path.length; i += 1) {
      const next = path[i];
      const moved = await store.transitionBuild(current.id, [current.status], next, {
        at: at(minute + i),
        ...(next === 'succeeded' ? { artifactKey: `artifacts/${current.id}.ep` } : {}),
        ...(next === 'starting' ? { builderId: `builder-${current.id.slice(0, 8)}` } : {}),
      });
      expect(moved, `${current.status} -> ${next}`).not.toBeNull();
      current = moved!;
      if (next === to) break;
    }
    return current;
  }

  async function statusOf(id: string): Promise<BuildStatus | undefined> {
    return (await store.getBuild(id))?.status;
  }

  /** Every queued or in-flight build goes to `failed`, so a queue test starts with nothing queued or in flight. */
  async function resetQueue(): Promise<void> {
    await store.client.query(
      `UPDATE builds SET status = 'failed', finished_at = now(), message = 'reset'
       WHERE status IN ('queued', 'starting', 'running')`,
    );
  }

  async function deliveryRow(deliveryId: string): Promise<{ event: string; buildIds: string } | null> {
    const rows = await store.client.query(
      `SELECT event, array_to_string(build_ids, ',') AS build_ids FROM webhook_deliveries WHERE delivery_id = $1::text`,
      [deliveryId],
    );
    return rows.length === 0 ? null : { event: String(rows[0].event), buildIds: String(rows[0].build_ids) };
  }

  describe('createBuild and getBuildJob', () => {
    it('records no notification by default', async () => {
      const version = await freshVersion();
      const build = await store.createBuild({ versionId: version.id });
      const job = await store.getBuildJob(build.id);
      expect(job).toMatchObject({
        id: build.id, status: 'queued', versionId: version.id, namespace: 'pipe', name: 'line',
        ref: version.ref, erlVersion: '25', cloneUrl: 'https://github.com/pipe/line.git',
        notify: false, notifyEmail: null,
      });
    });

    it("records a notification to an address, or to the commit's author (null)", async () => {
      const version = await freshVersion();
      const toAddress = await store.createBuild({ versionId: version.id, notify: true, notifyEmail: 'dev@example.org' });
      const toAuthor = await store.createBuild({ versionId: version.id, notify: true, notifyEmail: null });
      expect(await store.getBuildJob(toAddress.id)).toMatchObject({ notify: true, notifyEmail: 'dev@example.org' });
      expect(await store.getBuildJob(toAuthor.id)).toMatchObject({ notify: true, notifyEmail: null });
    });

    it('refuses an empty address', async () => {
      const version = await freshVersion();
      await expect(store.createBuild({ versionId: version.id, notify: true, notifyEmail: '' })).rejects.toThrow();
    });

    it('finds no job for an unknown or malformed id', async () => {
      expect(await store.getBuildJob('00000000-0000-4000-8000-00000000ffff')).toBeNull();
      expect(await store.getBuildJob('not-a-uuid')).toBeNull();
    });
  });

  describe('webhook deliveries', () => {
    it('records a delivery once; the second time says it was recorded before', async () => {
      expect(await store.recordWebhookDelivery({ deliveryId: 'd-once', event: 'create' })).toBe(true);
      expect(await store.recordWebhookDelivery({ deliveryId: 'd-once', event: 'create' })).toBe(false);
      expect(await deliveryRow('d-once')).toEqual({ event: 'create', buildIds: '' });
    });

    it('stores the builds of a delivery, and an empty list', async () => {
      const version = await freshVersion();
      const a = await store.createBuild({ versionId: version.id });
      const b = await store.createBuild({ versionId: version.id });
      await store.recordWebhookDelivery({ deliveryId: 'd-builds', event: 'create' });
      await store.setWebhookDeliveryBuilds('d-builds', [a.id, b.id]);
      expect((await deliveryRow('d-builds'))?.buildIds).toBe(`${a.id},${b.id}`);
      await store.setWebhookDeliveryBuilds('d-builds', []);
      expect((await deliveryRow('d-builds'))?.buildIds).toBe('');
    });

    it('records nothing when the transaction that recorded it rolls back', async () => {
      await expect(store.transaction(async (tx) => {
        expect(await tx.recordWebhookDelivery({ deliveryId: 'd-rollback', event: 'create' })).toBe(true);
        throw new Error('the request failed later');
      })).rejects.toThrow('the request failed later');
      expect(await deliveryRow('d-rollback')).toBeNull();
      expect(await store.recordWebhookDelivery({ deliveryId: 'd-rollback', event: 'create' })).toBe(true);
    });

    if (concurrent) it('lets one of two concurrent transactions record the same delivery', async () => {
      let recorded!: () => void;
      const firstRecorded = new Promise<void>((resolve) => { recorded = resolve; });
      let release!: () => void;
      const released = new Promise<void>((resolve) => { release = resolve; });
      const first = store.transaction(async (tx) => {
        const fresh = await tx.recordWebhookDelivery({ deliveryId: 'd-race', event: 'create' });
        recorded();
        await released;
        return fresh;
      });
      await firstRecorded;
      // Waits on the uncommitted key, then sees the committed row.
      const second = store.transaction((tx) => tx.recordWebhookDelivery({ deliveryId: 'd-race', event: 'create' }));
      await lockWaitOrSettled(store.client, second);
      release();
      expect([await first, await second]).toEqual([true, false]);
    });
  });

  describe('the queue', () => {
    it('claims queued builds oldest first, up to the limit, moving them to starting', async () => {
      await resetQueue();
      const version = await freshVersion();
      const builds: Build[] = [];
      for (const minute of [3, 1, 2]) builds.push(await store.createBuild({ versionId: version.id, createdAt: at(minute) }));
      const running = await move(await store.createBuild({ versionId: version.id, createdAt: at(0) }), 'running', 0);
      const [b3, b1, b2] = builds;
      expect(await store.claimQueuedBuilds(2)).toEqual([b1.id, b2.id]);
      expect(await store.getBuild(b1.id)).toMatchObject({ status: 'starting' });
      expect((await store.getBuild(b1.id))?.startedAt).toBeInstanceOf(Date);
      expect(await statusOf(b3.id)).toBe('queued');
      expect(await statusOf(running.id)).toBe('running');
      expect(await store.claimQueuedBuilds(5)).toEqual([b3.id]);
      expect(await store.claimQueuedBuilds(5)).toEqual([]);
    });

    it('claims nothing for a limit below one', async () => {
      await resetQueue();
      const build = await store.createBuild({ versionId: (await freshVersion()).id });
      expect(await store.claimQueuedBuilds(0)).toEqual([]);
      expect(await store.claimQueuedBuilds(-3)).toEqual([]);
      expect(await statusOf(build.id)).toBe('queued');
      expect(await store.claimQueuedBuilds(1)).toEqual([build.id]);
    });

    if (concurrent) it('skips builds another claimer holds, so two claimers never claim the same build', async () => {
      await resetQueue();
      const version = await freshVersion();
      const created: string[] = [];
      for (let i = 0; i < 10; i += 1) created.push((await store.createBuild({ versionId: version.id, createdAt: at(100 + i) })).id);
      let claimed!: () => void;
      const firstClaimed = new Promise<void>((resolve) => { claimed = resolve; });
      let release!: () => void;
      const released = new Promise<void>((resolve) => { release = resolve; });
      const first = store.transaction(async (tx) => {
        const ids = await tx.claimQueuedBuilds(5);
        claimed();
        await released;
        return ids;
      });
      await firstClaimed;
      // The first claimer's rows stay locked (uncommitted) while the second claims: SKIP LOCKED passes them by.
      // A broken implementation waits on those rows instead: seeing it wait, the first is released and the
      // assertions decide, rather than the suite hanging.
      const second = store.claimQueuedBuilds(5);
      await lockWaitOrSettled(store.client, second);
      release();
      const [a, b] = [await first, await second];
      expect(a).toEqual(created.slice(0, 5));
      expect(b).toEqual(created.slice(5));
      for (const id of created) expect(await statusOf(id)).toBe('starting');
    });

    if (concurrent) it('hands every build to exactly one of many racing claimers', async () => {
      await resetQueue();
      const version = await freshVersion();
      const created = new Set<string>();
      for (let i = 0; i < 40; i += 1) created.add((await store.createBuild({ versionId: version.id })).id);
      const claimer = async (): Promise<string[]> => {
        const mine: string[] = [];
        for (;;) {
          const ids = await store.claimQueuedBuilds(3);
          if (ids.length === 0) return mine;
          mine.push(...ids);
        }
      };
      const all = (await Promise.all([claimer(), claimer(), claimer(), claimer()])).flat();
      expect(all.length).toBe(created.size);
      expect(new Set(all)).toEqual(created);
    });

    it('requeues every in-flight build with a message, leaving the others alone', async () => {
      await resetQueue();
      const version = await freshVersion();
      const queued = await store.createBuild({ versionId: version.id });
      const starting = await move(await store.createBuild({ versionId: version.id }), 'starting', 10);
      const running = await move(await store.createBuild({ versionId: version.id }), 'running', 10);
      const succeeded = await move(await store.createBuild({ versionId: version.id }), 'succeeded', 10);
      const failed = await move(await store.createBuild({ versionId: version.id }), 'failed', 10);
      const requeued = await store.requeueInFlightBuilds('the worker restarted');
      expect(requeued.sort()).toEqual([starting.id, running.id].sort());
      for (const b of [starting, running]) {
        expect(await store.getBuild(b.id)).toMatchObject({
          status: 'queued', startedAt: null, builderId: null, message: 'the worker restarted',
        });
      }
      expect(await store.getBuild(queued.id)).toMatchObject({ status: 'queued', message: '' });
      expect(await statusOf(succeeded.id)).toBe('succeeded');
      expect(await statusOf(failed.id)).toBe('failed');
      expect(await store.requeueInFlightBuilds('again')).toEqual([]);
      // A requeued build starts again like a new one, with a fresh start time.
      const restarted = await store.transitionBuild(running.id, ['queued'], 'starting', { at: at(500) });
      expect(restarted?.startedAt).toEqual(at(500));
    });

    it('lists builds stuck past a time: in flight by start, queued by creation, oldest first', async () => {
      await resetQueue();
      const version = await freshVersion();
      const oldQueued = await store.createBuild({ versionId: version.id, createdAt: at(1_000) });
      const newQueued = await store.createBuild({ versionId: version.id, createdAt: at(2_000) });
      // started at minute 1_000 + 1 and 1_500 + 1 (move stamps each step a minute later)
      const oldStarting = await move(await store.createBuild({ versionId: version.id, createdAt: at(900) }), 'starting', 1_000);
      const oldRunning = await move(await store.createBuild({ versionId: version.id, createdAt: at(900) }), 'running', 1_500);
      const newRunning = await move(await store.createBuild({ versionId: version.id, createdAt: at(900) }), 'running', 2_500);
      const finished = await move(await store.createBuild({ versionId: version.id, createdAt: at(0) }), 'failed', 0);
      const before = at(1_800);
      const ids = (builds: Build[]) => builds.map((b) => b.id);

      expect(ids(await store.listBuildsOlderThan(['queued', 'starting', 'running'], before, 10)))
        .toEqual([oldQueued.id, oldStarting.id, oldRunning.id]);
      expect(ids(await store.listBuildsOlderThan(['starting', 'running'], before, 10))).toEqual([oldStarting.id, oldRunning.id]);
      expect(ids(await store.listBuildsOlderThan(['running'], before, 10))).toEqual([oldRunning.id]);
      expect(ids(await store.listBuildsOlderThan(['queued'], before, 10))).toEqual([oldQueued.id]);
      expect(ids(await store.listBuildsOlderThan(['queued', 'running'], at(3_000), 10)))
        .toEqual([oldQueued.id, oldRunning.id, newQueued.id, newRunning.id]);
      expect(ids(await store.listBuildsOlderThan(['queued', 'starting', 'running'], before, 2))).toEqual([oldQueued.id, oldStarting.id]);
      expect(await store.listBuildsOlderThan([], before, 10)).toEqual([]);
      expect(await store.listBuildsOlderThan(['queued'], before, 0)).toEqual([]);
      // Finished builds are never stuck, whatever is asked.
      expect(ids(await store.listBuildsOlderThan(['failed', 'succeeded'], at(10_000), 10))).toEqual([]);
      expect(ids(await store.listBuildsOlderThan(['queued', 'starting', 'running', 'failed'], at(10_000), 10)))
        .not.toContain(finished.id);
      const [stuck] = await store.listBuildsOlderThan(['starting'], before, 1);
      expect(stuck).toMatchObject({ id: oldStarting.id, status: 'starting', versionId: version.id, startedAt: at(1_001) });
    });
  });

  describe('reads of the build requests', () => {
    it('reuses nothing for a version without builds or with failures only', async () => {
      const version = await freshVersion();
      expect(await store.findReusableBuild(version.id)).toBeNull();
      await move(await store.createBuild({ versionId: version.id }), 'failed', 0);
      expect(await store.findReusableBuild(version.id)).toBeNull();
      expect(await store.findReusableBuild(version.id, { inFlightOnly: true })).toBeNull();
    });

    it('reuses the newest in-flight build when none succeeded', async () => {
      const version = await freshVersion();
      await store.createBuild({ versionId: version.id, createdAt: at(1) });
      const newer = await move(await store.createBuild({ versionId: version.id, createdAt: at(2) }), 'running', 5);
      expect((await store.findReusableBuild(version.id))?.id).toBe(newer.id);
    });

    it('prefers the newest success over an in-flight build, unless only in-flight builds are asked for', async () => {
      const version = await freshVersion();
      await move(await store.createBuild({ versionId: version.id, createdAt: at(1) }), 'succeeded', 1);
      const newestSuccess = await move(await store.createBuild({ versionId: version.id, createdAt: at(2) }), 'succeeded', 2);
      const rebuild = await store.createBuild({ versionId: version.id, createdAt: at(3) });
      expect((await store.findReusableBuild(version.id))?.id).toBe(newestSuccess.id);
      expect(await store.findReusableBuild(version.id, { inFlightOnly: true })).toMatchObject({ id: rebuild.id, status: 'queued' });
    });

    it('never reuses a build of another version', async () => {
      const a = await freshVersion('25');
      const b = await store.upsertVersion({ repositoryId: repo.id, ref: a.ref, erlVersion: '26' });
      await store.createBuild({ versionId: a.id });
      expect(await store.findReusableBuild(b.id)).toBeNull();
    });

    it('gets a repository by namespace and name, or null', async () => {
      expect(await store.getRepository({ namespace: 'pipe', name: 'line' })).toEqual(repo);
      expect(await store.getRepository({ namespace: 'pipe', name: 'LINE' })).toBeNull();
      expect(await store.getRepository({ namespace: 'nobody', name: 'line' })).toBeNull();
    });
  });
});
