// The Store contract, run on every driver: PGlite always; pg and the Data API (through the test server) with DATABASE_URL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Build, BuildStatus, BuildView, Repository, Version } from '#core/model.js';
import type { Signed, Store } from '#core/ports.js';
import { loadMigrations, runMigrations, SqlStore } from '#adapters/postgres/open-store.js';
import { toDateOrNull } from '#adapters/postgres/rows.js';
import type { SqlClient } from '#adapters/postgres/sql-client.js';
import { lockWaitOrSettled } from '#support/lock-waits.js';
import { drivers, type BareHarness, type Harness, type OpenBare, type OpenHarness } from '#support/store-drivers.js';

describe.each(drivers)('Store on $driver', ({ available, open, openBare, concurrent }) => {
  if (!available) {
    // Only on a machine without a Postgres server; CI always sets DATABASE_URL, so this never skips there.
    it.skip('needs DATABASE_URL', () => {});
    return;
  }
  storeContract(open);
  shownBuildContract(open, concurrent);
  shownBuildBackfill(openBare);
});

// --- fixtures ---

const T0 = Date.UTC(2024, 0, 1);
/** A fixed instant `minutes` after 2024-01-01T00:00Z, so orderings never depend on the clock. */
const at = (minutes: number) => new Date(T0 + minutes * 60_000);

const TIE_OLDER_ID = '00000000-0000-4000-8000-000000000001';
const TIE_NEWER_ID = '00000000-0000-4000-8000-000000000002';

interface BuildSpec {
  outcome: BuildStatus;
  /** Minutes after T0 the build finished (succeeded/failed) or was created (in flight). */
  minute: number;
  id?: string;
}

/** Drives a build through the real transitions to `outcome`, with deterministic timestamps. */
async function addBuild(store: Store, version: Version, spec: BuildSpec): Promise<Build> {
  const finished = spec.outcome === 'succeeded' || spec.outcome === 'failed';
  const created = finished ? at(spec.minute - 5) : at(spec.minute);
  let build: Build | null = await store.createBuild({ versionId: version.id, createdAt: created, id: spec.id });
  if (spec.outcome === 'queued') return build;
  build = await store.transitionBuild(build.id, ['queued'], 'starting', {
    at: new Date(created.getTime() + 60_000),
    builderId: `builder-${build.id.slice(0, 8)}`,
  });
  if (!build || spec.outcome === 'starting') return expectBuild(build);
  build = await store.transitionBuild(build.id, ['starting'], 'running', { at: new Date(created.getTime() + 120_000) });
  if (!build || spec.outcome === 'running') return expectBuild(build);
  if (spec.outcome === 'succeeded') {
    build = await store.transitionBuild(build.id, ['running'], 'succeeded', {
      at: at(spec.minute),
      message: 'built',
      artifactKey: `artifacts/${build.id}.ep`,
      artifactSize: 5_000_000_000 + spec.minute,
      artifactSha256: 'ab'.repeat(32),
      logKey: `logs/${build.id}.log`,
      commitSha: 'c0ffee'.padEnd(40, '0'),
      otpRelease: `${version.erlVersion}.1`,
    });
  } else {
    build = await store.transitionBuild(build.id, ['running'], 'failed', {
      at: at(spec.minute),
      message: 'compile error',
      logKey: `logs/${build.id}.log`,
    });
  }
  return expectBuild(build);
}

function expectBuild(build: Build | null): Build {
  expect(build).not.toBeNull();
  return build!;
}

const ids = (builds: { id: string }[]) => builds.map((b) => b.id);

// --- the contract ---

function storeContract(open: OpenHarness): void {
  describe('schema and writes', () => {
    let h: Harness;
    let store: SqlStore;
    let repo: Repository;
    let version: Version;

    beforeAll(async () => {
      h = await open();
      store = h.store;
    });
    afterAll(async () => {
      await h?.close();
    });

    it('counts zero builds of every status in an empty store', async () => {
      expect(await store.countBuildsByStatus()).toEqual({ queued: 0, starting: 0, running: 0, succeeded: 0, failed: 0 });
    });

    it('applies every migration once and records it', async () => {
      const expected = (await loadMigrations()).map((m) => m.name);
      expect(expected).toContain('001_init.sql');
      const before = await store.client.query('SELECT name, applied_at FROM schema_migrations ORDER BY name');
      expect(before.map((r) => r.name)).toEqual(expected);

      expect(await runMigrations(store.client)).toEqual([]);
      const after = await store.client.query('SELECT name, applied_at FROM schema_migrations ORDER BY name');
      expect(after).toEqual(before);

      const tables = await store.client.query(
        `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name`,
      );
      expect(tables.map((r) => r.table_name)).toEqual(
        ['builds', 'erts', 'owner_tokens', 'rate_limits', 'repositories', 'schema_migrations', 'signing_keys', 'versions', 'webhook_deliveries'],
      );
      const trgm = await store.client.query(`SELECT extname FROM pg_extension WHERE extname = 'pg_trgm'`);
      expect(trgm).toHaveLength(1);
    });

    it('returns the existing repository for a duplicate namespace/name, keeping its clone URL', async () => {
      repo = await store.upsertRepository({ namespace: 'alice', name: 'cowboy', cloneUrl: 'https://github.com/alice/cowboy' });
      expect(repo).toMatchObject({ namespace: 'alice', name: 'cowboy', cloneUrl: 'https://github.com/alice/cowboy' });
      expect(typeof repo.id).toBe('number');
      expect(repo.createdAt).toBeInstanceOf(Date);

      const again = await store.upsertRepository({ namespace: 'alice', name: 'cowboy', cloneUrl: 'https://evil.example/x' });
      expect(again).toEqual(repo);

      const other = await store.upsertRepository({ namespace: 'bob', name: 'cowboy', cloneUrl: 'https://github.com/bob/cowboy' });
      expect(other.id).not.toBe(repo.id);
      expect(other.cloneUrl).toBe('https://github.com/bob/cowboy');
    });

    it('rejects empty repository names', async () => {
      await expect(store.upsertRepository({ namespace: 'alice', name: '', cloneUrl: 'https://x' })).rejects.toThrow();
      await expect(store.upsertRepository({ namespace: '', name: 'x', cloneUrl: 'https://x' })).rejects.toThrow();
    });

    it('returns the existing version for a duplicate (repository, ref, erlVersion)', async () => {
      version = await store.upsertVersion({ repositoryId: repo.id, ref: '1.0.0', erlVersion: '25' });
      expect(version).toMatchObject({ repositoryId: repo.id, ref: '1.0.0', erlVersion: '25' });
      expect(await store.upsertVersion({ repositoryId: repo.id, ref: '1.0.0', erlVersion: '25' })).toEqual(version);
      const otherErl = await store.upsertVersion({ repositoryId: repo.id, ref: '1.0.0', erlVersion: '26' });
      expect(otherErl.id).not.toBe(version.id);
    });

    it('rejects a version of an unknown repository and a build of an unknown version', async () => {
      await expect(store.upsertVersion({ repositoryId: 987_654, ref: '1', erlVersion: '25' })).rejects.toThrow();
      await expect(store.createBuild({ versionId: 987_654 })).rejects.toThrow();
    });

    it('creates a queued build with defaults, and refuses a duplicate id', async () => {
      const before = Date.now();
      const build = await store.createBuild({ versionId: version.id });
      const after = Date.now();
      expect(build).toMatchObject({
        versionId: version.id, status: 'queued', startedAt: null, finishedAt: null, message: '',
        artifactKey: null, artifactSize: null, artifactSha256: null, logKey: null, commitSha: null,
        builderId: null, otpRelease: null,
      });
      expect(build.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(build.createdAt.getTime()).toBeGreaterThanOrEqual(before - 5_000);
      expect(build.createdAt.getTime()).toBeLessThanOrEqual(after + 5_000);

      const explicit = await store.createBuild({ versionId: version.id, id: '11111111-1111-4111-8111-111111111111', createdAt: at(0) });
      expect(explicit.id).toBe('11111111-1111-4111-8111-111111111111');
      expect(explicit.createdAt).toEqual(at(0));
      await expect(store.createBuild({ versionId: version.id, id: explicit.id })).rejects.toThrow();
    });

    it('moves a build only from the given statuses and stamps started/finished times', async () => {
      const build = await store.createBuild({ versionId: version.id, createdAt: at(0) });

      const claimed = await store.transitionBuild(build.id, ['queued'], 'starting', { at: at(1), builderId: 'codebuild:1' });
      expect(claimed).toMatchObject({ id: build.id, status: 'starting', startedAt: at(1), finishedAt: null, builderId: 'codebuild:1' });
      // A duplicate delivery claims nothing.
      expect(await store.transitionBuild(build.id, ['queued'], 'starting', { at: at(2) })).toBeNull();

      const running = await store.transitionBuild(build.id, ['starting'], 'running', { at: at(3) });
      expect(running).toMatchObject({ status: 'running', startedAt: at(1), finishedAt: null, builderId: 'codebuild:1' });

      expect(await store.transitionBuild(build.id, ['queued', 'starting'], 'failed')).toBeNull();

      expect(await store.transitionBuild(build.id, [], 'failed')).toBeNull();
      expect(await store.transitionBuild('22222222-2222-4222-8222-222222222222', ['running'], 'failed')).toBeNull();
      expect(await store.transitionBuild('not-a-uuid', ['running'], 'failed')).toBeNull();

      // A success without an artifact is refused by the schema, and changes nothing.
      await expect(store.transitionBuild(build.id, ['running'], 'succeeded', { at: at(9) })).rejects.toThrow();
      expect((await store.getBuild(build.id))?.status).toBe('running');

      const done = await store.transitionBuild(build.id, ['starting', 'running'], 'succeeded', {
        at: at(10), message: 'ok', artifactKey: 'artifacts/x.ep', artifactSize: 6_000_000_000,
        artifactSha256: 'ff'.repeat(32), logKey: 'logs/x.log', commitSha: 'a'.repeat(40), otpRelease: '25.3.2',
      });
      expect(done).toEqual({
        id: build.id, versionId: version.id, status: 'succeeded', createdAt: at(0), startedAt: at(1), finishedAt: at(10),
        message: 'ok', artifactKey: 'artifacts/x.ep', artifactSize: 6_000_000_000, artifactSha256: 'ff'.repeat(32),
        logKey: 'logs/x.log', commitSha: 'a'.repeat(40), builderId: 'codebuild:1', otpRelease: '25.3.2',
      });
      expect(await store.transitionBuild(build.id, ['running'], 'failed')).toBeNull();
    });

    it('rejects an unknown status', async () => {
      const build = await store.createBuild({ versionId: version.id });
      // A move that stamps no time accepts one (and other fields) without using it.
      expect(await store.transitionBuild(build.id, ['queued'], 'queued', { at: at(4), message: 'requeued' }))
        .toMatchObject({ status: 'queued', startedAt: null, finishedAt: null, message: 'requeued' });
      await expect(store.transitionBuild(build.id, ['queued'], 'exploded' as BuildStatus)).rejects.toThrow();
      expect((await store.getBuild(build.id))?.status).toBe('queued');
    });

    it("uses the database's clock when no time is given, and sets or clears fields on request", async () => {
      const build = await store.createBuild({ versionId: version.id });
      const before = Date.now();
      const started = await store.transitionBuild(build.id, ['queued'], 'starting', { logKey: 'logs/a.log' });
      const failed = await store.transitionBuild(build.id, ['starting'], 'failed', { logKey: null, message: 'timed out' });
      const after = Date.now();
      expect(started?.startedAt?.getTime()).toBeGreaterThanOrEqual(before - 5_000);
      expect(started?.startedAt?.getTime()).toBeLessThanOrEqual(after + 5_000);
      expect(started?.logKey).toBe('logs/a.log');
      expect(failed?.finishedAt?.getTime()).toBeGreaterThanOrEqual(before - 5_000);
      expect(failed?.finishedAt?.getTime()).toBeLessThanOrEqual(after + 5_000);
      expect(failed).toMatchObject({ status: 'failed', logKey: null, message: 'timed out', startedAt: started?.startedAt });
    });

    it('commits a transaction, whose Store sees its own writes', async () => {
      const buildId = await store.transaction(async (tx) => {
        const r = await tx.upsertRepository({ namespace: 'txn', name: 'commit', cloneUrl: 'https://github.com/txn/commit' });
        const v = await tx.upsertVersion({ repositoryId: r.id, ref: '1.0.0', erlVersion: '25' });
        const b = await tx.createBuild({ versionId: v.id });
        expect(await tx.getBuild(b.id)).toMatchObject({ namespace: 'txn', name: 'commit', status: 'queued' });
        // A nested transaction joins the outer one.
        await tx.transaction((inner) => inner.transitionBuild(b.id, ['queued'], 'starting'));
        return b.id;
      });
      expect(await store.getBuild(buildId)).toMatchObject({ namespace: 'txn', name: 'commit', ref: '1.0.0', status: 'starting' });
    });

    it('rolls a transaction back when its function throws, and rethrows', async () => {
      let buildId = '';
      await expect(
        store.transaction(async (tx) => {
          const r = await tx.upsertRepository({ namespace: 'txn', name: 'rollback', cloneUrl: 'https://github.com/txn/rollback' });
          const v = await tx.upsertVersion({ repositoryId: r.id, ref: '1.0.0', erlVersion: '25' });
          buildId = (await tx.createBuild({ versionId: v.id })).id;
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      expect(buildId).not.toBe('');
      expect(await store.getBuild(buildId)).toBeNull();
      const left = await store.client.query(`SELECT id FROM repositories WHERE namespace = 'txn' AND name = 'rollback'`);
      expect(left).toEqual([]);
    });

    it('rolls a transaction back when one of its statements fails', async () => {
      let buildId = '';
      await expect(
        store.transaction(async (tx) => {
          buildId = (await tx.createBuild({ versionId: version.id })).id;
          await tx.transitionBuild(buildId, ['queued'], 'exploded' as BuildStatus);
        }),
      ).rejects.toThrow();
      expect(await store.getBuild(buildId)).toBeNull();
    });

    it('registers, reads and replaces the ERTS of a release', async () => {
      expect(await store.getErts('26')).toBeNull();
      const first = await store.putErts({ release: '26', ertsVersion: '14.0', key: 'erts/26-a.tar', size: 12_345_678_901, sha256: '01'.repeat(32) });
      expect(first).toMatchObject({ release: '26', ertsVersion: '14.0', key: 'erts/26-a.tar', size: 12_345_678_901, sha256: '01'.repeat(32) });
      expect(first.createdAt).toBeInstanceOf(Date);
      expect(await store.getErts('26')).toEqual(first);

      const replaced = await store.putErts({ release: '26', ertsVersion: '14.2', key: 'erts/26-b.tar', size: 42, sha256: '02'.repeat(32) });
      expect(replaced).toMatchObject({ release: '26', ertsVersion: '14.2', key: 'erts/26-b.tar', size: 42, sha256: '02'.repeat(32) });
      expect(await store.getErts('26')).toEqual(replaced);
      expect(await store.getErts('25')).toBeNull();
    });

    it('counts the builds written above by status', async () => {
      // queued: defaults build, explicit-id build, unknown-status build; starting: the committed transaction's;
      // succeeded: the transition test's; failed: the database-clock test's.
      expect(await store.countBuildsByStatus()).toEqual({ queued: 3, starting: 1, running: 0, succeeded: 1, failed: 1 });
    });
  });

  describe('reads', () => {
    let h: Harness;
    let store: SqlStore;
    const b: Record<string, Build> = {};
    const v: Record<string, Version> = {};

    beforeAll(async () => {
      h = await open();
      store = h.store;
      const repo = (namespace: string, name: string) =>
        store.upsertRepository({ namespace, name, cloneUrl: `https://github.com/${namespace}/${name}` });
      const version = (r: Repository, ref: string, erlVersion: string) =>
        store.upsertVersion({ repositoryId: r.id, ref, erlVersion });

      const aliceCowboy = await repo('alice', 'cowboy');
      const bobCowboy = await repo('bob', 'cowboy');
      const jsx = await repo('alice', 'jsx');
      const cowboyLib = await repo('carol', 'CowboyLib');
      const myLib = await repo('dave', 'my_lib');
      const myxLib = await repo('dave', 'myxlib');
      const percent = await repo('eve', 'a%b');
      const axb = await repo('eve', 'axb');
      const tie = await repo('frank', 'tie');

      v.v1 = await version(aliceCowboy, '1.0.0', '24');
      v.v2 = await version(aliceCowboy, '1.0.0', '25');
      v.v3 = await version(aliceCowboy, '2.0.0', '25');
      v.v4 = await version(aliceCowboy, '2.0.0', '26');
      v.v5 = await version(aliceCowboy, '3.0.0', '26');
      v.v6 = await version(aliceCowboy, '3.1.0', '26');
      v.v7 = await version(bobCowboy, '1.0.0', '25');
      v.v8 = await version(bobCowboy, '0.9.0', '24');
      v.v9 = await version(jsx, 'v3', '25');
      v.v10 = await version(cowboyLib, '0.1.0', '25');
      v.myLib = await version(myLib, '1.0.0', '25');
      v.myxLib = await version(myxLib, '1.0.0', '25');
      v.percent = await version(percent, '1.0.0', '25');
      v.axb = await version(axb, '1.0.0', '25');
      v.tieOlder = await version(tie, '1', '25');
      v.tieNewer = await version(tie, '2', '25');

      b.b1 = await addBuild(store, v.v1, { outcome: 'succeeded', minute: 10 });
      b.b2 = await addBuild(store, v.v2, { outcome: 'succeeded', minute: 20 });
      b.b3 = await addBuild(store, v.v3, { outcome: 'failed', minute: 30 });
      b.b4 = await addBuild(store, v.v3, { outcome: 'succeeded', minute: 40 }); // rebuild that succeeded
      b.b5 = await addBuild(store, v.v4, { outcome: 'succeeded', minute: 50 });
      b.b6 = await addBuild(store, v.v4, { outcome: 'failed', minute: 60 }); // rebuild that failed
      b.b7 = await addBuild(store, v.v5, { outcome: 'failed', minute: 70 }); // never succeeded
      b.b8 = await addBuild(store, v.v6, { outcome: 'queued', minute: 200 }); // only in flight
      b.b9 = await addBuild(store, v.v1, { outcome: 'running', minute: 210 }); // in flight after a success
      b.b10 = await addBuild(store, v.v7, { outcome: 'succeeded', minute: 15 });
      b.b11 = await addBuild(store, v.v8, { outcome: 'succeeded', minute: 5 });
      b.b12 = await addBuild(store, v.v8, { outcome: 'succeeded', minute: 80 }); // second success of v8
      b.b13 = await addBuild(store, v.v9, { outcome: 'succeeded', minute: 90 });
      b.b14 = await addBuild(store, v.v9, { outcome: 'starting', minute: 220 });
      b.b15 = await addBuild(store, v.v10, { outcome: 'succeeded', minute: 35 });
      b.myLib = await addBuild(store, v.myLib, { outcome: 'succeeded', minute: 100 });
      b.myxLib = await addBuild(store, v.myxLib, { outcome: 'succeeded', minute: 101 });
      b.percent = await addBuild(store, v.percent, { outcome: 'succeeded', minute: 102 });
      b.axb = await addBuild(store, v.axb, { outcome: 'succeeded', minute: 103 });
      b.tieOlder = await addBuild(store, v.tieOlder, { outcome: 'succeeded', minute: 110, id: TIE_OLDER_ID });
      b.tieNewer = await addBuild(store, v.tieNewer, { outcome: 'succeeded', minute: 110, id: TIE_NEWER_ID });
    });
    afterAll(async () => {
      await h?.close();
    });

    const cowboy = { namespace: 'alice', name: 'cowboy' };
    const bob = { namespace: 'bob', name: 'cowboy' };

    it('gets a build with its package and version', async () => {
      const view = await store.getBuild(b.b4.id);
      const expected: BuildView & Signed = {
        ...b.b4,
        // A view carries the build's signed statement; these builds were never signed.
        signed: null,
        namespace: 'alice', name: 'cowboy', ref: '2.0.0', erlVersion: '25',
      };
      expect(view).toEqual(expected);
      expect(view).toMatchObject({
        status: 'succeeded', createdAt: at(35), startedAt: at(36), finishedAt: at(40), message: 'built',
        artifactKey: `artifacts/${b.b4.id}.ep`, artifactSize: 5_000_000_040, otpRelease: '25.1',
      });
      expect(await store.getBuild(b.b8.id)).toMatchObject({ status: 'queued', ref: '3.1.0', startedAt: null });
      expect(await store.getBuild('33333333-3333-4333-8333-333333333333')).toBeNull();
      expect(await store.getBuild('not-a-uuid')).toBeNull();
    });

    it('finds the newest successful build matching a filter', async () => {
      expect((await store.findLatestSuccessfulBuild(cowboy, {}))?.id).toBe(b.b5.id);
      expect((await store.findLatestSuccessfulBuild(cowboy, { ref: '1.0.0' }))?.id).toBe(b.b2.id);
      expect((await store.findLatestSuccessfulBuild(cowboy, { erlVersion: '24' }))?.id).toBe(b.b1.id);
      expect((await store.findLatestSuccessfulBuild(cowboy, { ref: '2.0.0', erlVersion: '25' }))?.id).toBe(b.b4.id);
      // The newer rebuild of 2.0.0/26 failed: the older success still serves.
      expect((await store.findLatestSuccessfulBuild(cowboy, { ref: '2.0.0', erlVersion: '26' }))?.id).toBe(b.b5.id);
      expect(await store.findLatestSuccessfulBuild(cowboy, { ref: '3.0.0' })).toBeNull();
      expect(await store.findLatestSuccessfulBuild(cowboy, { ref: '3.1.0' })).toBeNull();
      expect(await store.findLatestSuccessfulBuild(cowboy, { ref: '1.0.0', erlVersion: '26' })).toBeNull();
      expect((await store.findLatestSuccessfulBuild(bob, {}))?.id).toBe(b.b12.id);
      expect(await store.findLatestSuccessfulBuild({ namespace: 'carol', name: 'cowboy' }, {})).toBeNull();
      expect(await store.findLatestSuccessfulBuild({ namespace: 'alice', name: 'cowbo' }, {})).toBeNull();

      const found = await store.findLatestSuccessfulBuild(cowboy, { ref: '1.0.0', erlVersion: '25' });
      expect(found).toEqual({ ...b.b2, signed: null, namespace: 'alice', name: 'cowboy', ref: '1.0.0', erlVersion: '25' });
    });

    it('lists successful builds newest first, for all versions or any matching filter', async () => {
      expect(ids(await store.listSuccessfulBuilds(cowboy, []))).toEqual(ids([b.b5, b.b4, b.b2, b.b1]));
      expect(ids(await store.listSuccessfulBuilds(cowboy, [{}]))).toEqual(ids([b.b5, b.b4, b.b2, b.b1]));
      expect(ids(await store.listSuccessfulBuilds(cowboy, [{ ref: '1.0.0' }]))).toEqual(ids([b.b2, b.b1]));
      expect(ids(await store.listSuccessfulBuilds(cowboy, [{ ref: '2.0.0', erlVersion: '26' }, { erlVersion: '24' }])))
        .toEqual(ids([b.b5, b.b1]));
      expect(ids(await store.listSuccessfulBuilds(cowboy, [{ ref: '1.0.0' }, {}]))).toEqual(ids([b.b5, b.b4, b.b2, b.b1]));
      expect(await store.listSuccessfulBuilds(cowboy, [{ ref: '3.0.0' }, { ref: '3.1.0' }])).toEqual([]);
      // Every success of a version, not only its latest.
      expect(ids(await store.listSuccessfulBuilds(bob, []))).toEqual(ids([b.b12, b.b10, b.b11]));
      expect(await store.listSuccessfulBuilds({ namespace: 'nobody', name: 'cowboy' }, [])).toEqual([]);

      const [first] = await store.listSuccessfulBuilds(bob, [{ ref: '1.0.0' }]);
      expect(first).toEqual({ ...b.b10, signed: null, namespace: 'bob', name: 'cowboy', ref: '1.0.0', erlVersion: '25' });
    });

    it('lists versions with a success, ordered by their newest success', async () => {
      const shape = (x: Version) => ({ versionId: x.id, ref: x.ref, erlVersion: x.erlVersion });
      expect(await store.listVersionsWithSuccess(cowboy, [])).toEqual([v.v4, v.v3, v.v2, v.v1].map(shape));
      expect(await store.listVersionsWithSuccess(cowboy, [{ erlVersion: '25' }])).toEqual([v.v3, v.v2].map(shape));
      expect(await store.listVersionsWithSuccess(cowboy, [{ ref: '3.0.0' }, { ref: '1.0.0', erlVersion: '24' }]))
        .toEqual([v.v1].map(shape));
      expect(await store.listVersionsWithSuccess(bob, [])).toEqual([v.v8, v.v7].map(shape));
      expect(await store.listVersionsWithSuccess({ namespace: 'frank', name: 'tie' }, [])).toEqual([v.tieNewer, v.tieOlder].map(shape));
      expect(await store.listVersionsWithSuccess({ namespace: 'alice', name: 'nothing' }, [])).toEqual([]);
    });

    it('searches names by substring, one entry per version: its latest success, else its latest failure', async () => {
      const all = await store.searchPackages({ name: 'cowboy', limit: 50 });
      expect(ids(all)).toEqual(ids([b.b12, b.b7, b.b5, b.b4, b.b15, b.b2, b.b10, b.b1]));
      expect(all[1]).toEqual({ ...b.b7, signed: null, namespace: 'alice', name: 'cowboy', ref: '3.0.0', erlVersion: '26' });
      expect(all[4]).toMatchObject({ namespace: 'carol', name: 'CowboyLib', ref: '0.1.0', status: 'succeeded' });

      expect(ids(await store.searchPackages({ name: 'COWBOY', limit: 50 }))).toEqual(ids(all));
      expect(ids(await store.searchPackages({ name: 'wBoYl', limit: 50 }))).toEqual(ids([b.b15]));
      expect(ids(await store.searchPackages({ name: 'lib', limit: 50 }))).toEqual(ids([b.myxLib, b.myLib, b.b15]));
      expect(ids(await store.searchPackages({ name: 'cowboy', limit: 3 }))).toEqual(ids([b.b12, b.b7, b.b5]));
      expect(await store.searchPackages({ name: 'cowboy', limit: 0 })).toEqual([]);
      expect(await store.searchPackages({ name: 'zzz', limit: 50 })).toEqual([]);
    });

    it('narrows a search by namespace, ref and erlVersion', async () => {
      expect(ids(await store.searchPackages({ name: 'cowboy', namespace: 'alice', limit: 50 })))
        .toEqual(ids([b.b7, b.b5, b.b4, b.b2, b.b1]));
      expect(ids(await store.searchPackages({ name: 'cowboy', ref: '1.0.0', limit: 50 }))).toEqual(ids([b.b2, b.b10, b.b1]));
      expect(ids(await store.searchPackages({ name: 'cowboy', erlVersion: '26', limit: 50 }))).toEqual(ids([b.b7, b.b5]));
      expect(ids(await store.searchPackages({ name: 'boy', namespace: 'bob', ref: '0.9.0', erlVersion: '24', limit: 50 })))
        .toEqual(ids([b.b12]));
      expect(await store.searchPackages({ name: 'cowboy', namespace: 'ALICE', limit: 50 })).toEqual([]);
    });

    it('treats % and _ in a search literally', async () => {
      expect(ids(await store.searchPackages({ name: 'my_lib', limit: 50 }))).toEqual(ids([b.myLib]));
      expect(ids(await store.searchPackages({ name: '_', limit: 50 }))).toEqual(ids([b.myLib]));
      expect(ids(await store.searchPackages({ name: 'a%b', limit: 50 }))).toEqual(ids([b.percent]));
      expect(ids(await store.searchPackages({ name: '%', limit: 50 }))).toEqual(ids([b.percent]));
      expect(await store.searchPackages({ name: '\\', limit: 50 })).toEqual([]);
    });

    it('never shows in-flight builds', async () => {
      const inFlight = new Set([b.b8.id, b.b9.id, b.b14.id]);
      const everything = [
        ...(await store.searchPackages({ name: 'o', limit: 100 })),
        ...(await store.searchPackages({ name: 'x', limit: 100 })),
        ...(await store.lastSuccessfulBuilds(100)),
        ...(await store.listSuccessfulBuilds(cowboy, [])),
        ...(await store.listSuccessfulBuilds({ namespace: 'alice', name: 'jsx' }, [])),
      ];
      expect(everything.length).toBeGreaterThan(0);
      expect(everything.filter((x) => inFlight.has(x.id))).toEqual([]);
      expect(everything.every((x) => x.status === 'succeeded' || x.status === 'failed')).toBe(true);
      expect(await store.listVersionsWithSuccess(cowboy, [{ ref: '3.1.0' }])).toEqual([]);
    });

    it('lists the last successful builds, one per version, newest first with ties broken by id', async () => {
      const expected = [
        b.tieNewer, b.tieOlder, b.axb, b.percent, b.myxLib, b.myLib, b.b13, b.b12, b.b5, b.b4, b.b15, b.b2, b.b10, b.b1,
      ];
      expect(ids(await store.lastSuccessfulBuilds(100))).toEqual(ids(expected));
      expect(ids(await store.lastSuccessfulBuilds(1000))).toEqual(ids(expected));
      expect(ids(await store.lastSuccessfulBuilds(3))).toEqual(ids(expected.slice(0, 3)));
      expect(await store.lastSuccessfulBuilds(0)).toEqual([]);
      const [latest] = await store.lastSuccessfulBuilds(1);
      expect(latest).toEqual({ ...b.tieNewer, signed: null, namespace: 'frank', name: 'tie', ref: '2', erlVersion: '25' });
    });

    it('counts builds by status', async () => {
      expect(await store.countBuildsByStatus()).toEqual({ queued: 1, starting: 1, running: 1, succeeded: 15, failed: 3 });
    });
  });
}

// --- the build a search shows, kept on versions by transitionBuild (migration 002) ---

/** A build of `version` moved up to `running`, created at `minute`. */
async function runningBuild(store: Store, version: Version, minute: number, id?: string): Promise<Build> {
  const build = await store.createBuild({ versionId: version.id, createdAt: at(minute), id });
  await store.transitionBuild(build.id, ['queued'], 'starting', { at: at(minute) });
  return expectBuild(await store.transitionBuild(build.id, ['starting'], 'running', { at: at(minute) }));
}

/** Finishes a running build at `minute`. */
async function finish(store: Store, build: Build, outcome: 'succeeded' | 'failed', minute: number): Promise<Build> {
  const update = outcome === 'succeeded'
    ? { at: at(minute), artifactKey: `artifacts/${build.id}.ep`, logKey: `logs/${build.id}.log` }
    : { at: at(minute), message: 'compile error', logKey: `logs/${build.id}.log` };
  return expectBuild(await store.transitionBuild(build.id, ['running'], outcome, update));
}

interface Shown {
  buildId: string | null;
  at: Date | null;
  succeeded: boolean | null;
}

async function shownOf(client: SqlClient, version: Version): Promise<Shown> {
  const [row] = await client.query(
    'SELECT shown_build_id, shown_at, shown_succeeded FROM versions WHERE id = $1::bigint', [version.id],
  );
  return {
    buildId: row.shown_build_id === null ? null : String(row.shown_build_id),
    at: toDateOrNull(row.shown_at),
    succeeded: row.shown_succeeded === null ? null : Boolean(row.shown_succeeded),
  };
}

const shownAs = (build: Build | null): Shown =>
  build === null
    ? { buildId: null, at: null, succeeded: null }
    : { buildId: build.id, at: build.finishedAt, succeeded: build.status === 'succeeded' };

/** How many versions a full recomputation would change: 0 when the maintained columns are right. */
async function staleVersions(client: SqlClient): Promise<number> {
  const [row] = await client.query('SELECT refresh_shown_builds() AS changed');
  return Number(row.changed);
}

/** A small deterministic PRNG (mulberry32), so a failing sequence can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Search's rule over a version's builds: newest success, else newest failure; finish time, then id. */
function expectedShown(builds: Build[]): Build | null {
  const rank = (b: Build) => [b.status === 'succeeded' ? 1 : 0, b.finishedAt!.getTime()] as const;
  let best: Build | null = null;
  for (const b of builds) {
    if (b.status !== 'succeeded' && b.status !== 'failed') continue;
    if (best === null) { best = b; continue; }
    const [s1, t1] = rank(b);
    const [s2, t2] = rank(best);
    if (s1 > s2 || (s1 === s2 && (t1 > t2 || (t1 === t2 && b.id > best.id)))) best = b;
  }
  return best;
}

function shownBuildContract(open: OpenHarness, concurrent: boolean): void {
  describe('the build a search shows', () => {
    let h: Harness;
    let store: SqlStore;
    let counter = 0;

    beforeAll(async () => {
      h = await open();
      store = h.store;
    });
    afterAll(async () => {
      await h?.close();
    });

    /** A fresh package with one version; its name is unique to the test. */
    async function freshVersion(name: string): Promise<Version> {
      const repo = await store.upsertRepository({ namespace: 'shown', name: `${name}${++counter}`, cloneUrl: 'https://github.com/shown/x' });
      return store.upsertVersion({ repositoryId: repo.id, ref: '1.0.0', erlVersion: '26' });
    }

    const searchIds = async (name: string) => ids(await store.searchPackages({ name, namespace: 'shown', limit: 100 }));

    it('shows nothing for a version whose builds are all in flight', async () => {
      const version = await freshVersion('inflight');
      const queued = await store.createBuild({ versionId: version.id, createdAt: at(1) });
      const started = await store.createBuild({ versionId: version.id, createdAt: at(2) });
      await store.transitionBuild(started.id, ['queued'], 'starting', { at: at(3) });
      await runningBuild(store, version, 4);
      expect(await shownOf(store.client, version)).toEqual(shownAs(null));
      expect(await store.searchPackages({ name: 'inflight', limit: 100 })).toEqual([]);

      // A build that finishes becomes shown; one started after it does not displace it.
      const done = await finish(store, await runningBuild(store, version, 5), 'failed', 6);
      await store.transitionBuild(queued.id, ['queued'], 'starting', { at: at(7) });
      await store.transitionBuild(queued.id, ['starting'], 'running', { at: at(8) });
      expect(await shownOf(store.client, version)).toEqual(shownAs(done));
      expect(await store.searchPackages({ name: 'inflight', limit: 100 })).toEqual([
        { ...done, signed: null, namespace: 'shown', name: `inflight${counter}`, ref: '1.0.0', erlVersion: '26' },
      ]);
      expect(await staleVersions(store.client)).toBe(0);
    });

    it('shows a rebuild that succeeded after a failure, and keeps a success when a later rebuild fails', async () => {
      const version = await freshVersion('rebuilt');
      const failed = await finish(store, await runningBuild(store, version, 1), 'failed', 10);
      expect(await shownOf(store.client, version)).toEqual(shownAs(failed));
      const succeeded = await finish(store, await runningBuild(store, version, 11), 'succeeded', 20);
      expect(await shownOf(store.client, version)).toEqual(shownAs(succeeded));
      await finish(store, await runningBuild(store, version, 21), 'failed', 30);
      expect(await shownOf(store.client, version)).toEqual(shownAs(succeeded));
      expect(await searchIds('rebuilt')).toEqual([succeeded.id]);
      expect(await staleVersions(store.client)).toBe(0);
    });

    it('ranks by finish time, not by the order builds finish in', async () => {
      const version = await freshVersion('outoforder');
      const builds = await Promise.all([1, 2, 3, 4, 5].map((m) => runningBuild(store, version, m)));
      // The later-finishing failure is reported first; the earlier one must not replace it.
      const failLate = await finish(store, builds[1], 'failed', 30);
      await finish(store, builds[0], 'failed', 20);
      expect(await shownOf(store.client, version)).toEqual(shownAs(failLate));
      // Any success outranks any failure, even an older success.
      const oldSuccess = await finish(store, builds[2], 'succeeded', 15);
      expect(await shownOf(store.client, version)).toEqual(shownAs(oldSuccess));
      await finish(store, builds[3], 'succeeded', 12);
      expect(await shownOf(store.client, version)).toEqual(shownAs(oldSuccess));
      const newSuccess = await finish(store, builds[4], 'succeeded', 40);
      expect(await shownOf(store.client, version)).toEqual(shownAs(newSuccess));
      expect(await searchIds('outoforder')).toEqual([newSuccess.id]);
      expect(await staleVersions(store.client)).toBe(0);
    });

    it('breaks a tie on finish time by the larger build id, whichever finishes first', async () => {
      const version = await freshVersion('tied');
      const newer = await runningBuild(store, version, 1, '00000000-0000-4000-8000-0000000000b2');
      const older = await runningBuild(store, version, 2, '00000000-0000-4000-8000-0000000000b1');
      const shown = await finish(store, newer, 'succeeded', 50);
      await finish(store, older, 'succeeded', 50);
      expect(await shownOf(store.client, version)).toEqual(shownAs(shown));
      expect(await staleVersions(store.client)).toBe(0);
    });

    it('falls back to the next best build when the shown one is moved out of its finished state', async () => {
      const version = await freshVersion('requeued');
      const first = await finish(store, await runningBuild(store, version, 1), 'failed', 10);
      const second = await finish(store, await runningBuild(store, version, 2), 'failed', 20);
      expect(await shownOf(store.client, version)).toEqual(shownAs(second));
      // A retried failure goes back to the queue: the other failure is shown again.
      expect(await store.transitionBuild(second.id, ['failed'], 'queued')).not.toBeNull();
      expect(await shownOf(store.client, version)).toEqual(shownAs(first));
      expect(await store.transitionBuild(first.id, ['failed'], 'queued')).not.toBeNull();
      expect(await shownOf(store.client, version)).toEqual(shownAs(null));
      expect(await searchIds('requeued')).toEqual([]);
      expect(await staleVersions(store.client)).toBe(0);
    });

    // Not defined at all for PGlite, which runs one transaction at a time: there is no race to test.
    if (concurrent) it('ends on the better build when two builds of a version finish at once', async () => {
      for (const firstFinishesOlder of [true, false]) {
        const version = await freshVersion('concurrent');
        const older = await runningBuild(store, version, 1);
        const newer = await runningBuild(store, version, 2);
        const [first, second] = firstFinishesOlder ? [older, newer] : [newer, older];
        const minuteOf = (build: Build) => (build === newer ? 20 : 10);
        let finishedFirst!: () => void;
        const firstDone = new Promise<void>((resolve) => { finishedFirst = resolve; });
        let commit!: () => void;
        const committed = new Promise<void>((resolve) => { commit = resolve; });
        // The first finish holds its version row until commit; the second, not seeing it yet, waits for
        // that row and must then judge against what the first wrote.
        const firstTx = store.transaction(async (tx) => {
          await finish(tx, first, 'succeeded', minuteOf(first));
          finishedFirst();
          await committed;
        });
        await firstDone;
        const secondFinish = finish(store, second, 'succeeded', minuteOf(second));
        await lockWaitOrSettled(store.client, secondFinish);
        commit();
        await firstTx;
        await secondFinish;
        expect(await shownOf(store.client, version)).toEqual(shownAs({ ...newer, status: 'succeeded', finishedAt: at(20) }));
      }
      expect(await staleVersions(store.client)).toBe(0);
    });

    it('follows a random sequence of builds, finishes and retries like a full recomputation', async () => {
      const random = prng(20261120);
      const pick = <T>(xs: T[]): T => xs[Math.floor(random() * xs.length)];
      const versions = await Promise.all(['a', 'b', 'c', 'd'].map(async (ref) => {
        const repo = await store.upsertRepository({ namespace: 'shown', name: `randomized${ref}`, cloneUrl: 'https://github.com/shown/r' });
        return store.upsertVersion({ repositoryId: repo.id, ref, erlVersion: '26' });
      }));
      const builds = new Map<string, Build>();
      const moves = new Map<string, number>();
      const next: Record<BuildStatus, BuildStatus[]> = {
        queued: ['starting'], starting: ['running'], running: ['succeeded', 'failed'], succeeded: [], failed: ['queued'],
      };

      const check = async () => {
        const shown = versions.map((v) => expectedShown([...builds.values()].filter((b) => b.versionId === v.id)));
        for (const [i, v] of versions.entries()) expect(await shownOf(store.client, v)).toEqual(shownAs(shown[i]));
        const expected = shown.filter((b): b is Build => b !== null)
          .sort((x, y) => y.finishedAt!.getTime() - x.finishedAt!.getTime() || (y.id > x.id ? 1 : -1));
        expect(await searchIds('randomized')).toEqual(ids(expected));
      };

      for (let step = 1; step <= 80; step++) {
        const movable = [...builds.values()].filter((b) => next[b.status].length > 0);
        if (movable.length === 0 || random() < 0.2) {
          const created = await store.createBuild({ versionId: pick(versions).id, createdAt: at(step) });
          builds.set(created.id, created);
        } else {
          const build = pick(movable);
          const to = pick(next[build.status]);
          // Few distinct minutes, so finish times tie now and then.
          const minute = 1 + Math.floor(random() * 12);
          const update = to === 'succeeded' ? { at: at(minute), artifactKey: `artifacts/${build.id}.ep` } : { at: at(minute) };
          const moved = expectBuild(await store.transitionBuild(build.id, [build.status], to, update));
          builds.set(moved.id, moved);
          moves.set(`${build.status}->${to}`, (moves.get(`${build.status}->${to}`) ?? 0) + 1);
        }
        if (step % 10 === 0) await check();
      }
      // The sequence went through every kind of move that changes what is shown.
      for (const move of ['running->succeeded', 'running->failed', 'failed->queued']) expect(moves.get(move)).toBeGreaterThan(0);
      expect(await staleVersions(store.client)).toBe(0);
    });
  });
}

function shownBuildBackfill(openBare: OpenBare): void {
  describe('migration 002 on builds written before it', () => {
    let bare: BareHarness;

    beforeAll(async () => {
      bare = await openBare();
    });
    afterAll(async () => {
      await bare?.close();
    });

    it('backfills every version with its newest success, else its newest failure, else nothing', async () => {
      const { client } = bare;
      const migrations = await loadMigrations();
      const upTo = (prefix: string) => migrations.filter((m) => m.name <= `${prefix}~`);
      expect(await runMigrations(client, upTo('001'))).toEqual(['001_init.sql']);

      const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
      const ts = (minute: number) => `'${at(minute).toISOString()}'`;
      const build = (n: number, ref: string, status: BuildStatus, minute?: number) =>
        `(${`'${id(n)}'`}, (SELECT v.id FROM versions v WHERE v.ref = '${ref}'), '${status}', ${minute === undefined ? 'NULL' : ts(minute)},
          ${status === 'succeeded' ? `'artifacts/${n}.ep'` : 'NULL'})`;
      await client.exec(`
        INSERT INTO repositories (namespace, name, clone_url) VALUES ('old', 'backfill', 'https://github.com/old/backfill');
        INSERT INTO versions (repository_id, ref, erl_version)
          SELECT r.id, x.ref, '26' FROM repositories r, unnest(ARRAY['a', 'b', 'c', 'd', 'e', 'f', 'g']) AS x (ref);
        INSERT INTO builds (id, version_id, status, finished_at, artifact_key) VALUES
          ${build(1, 'a', 'succeeded', 10)}, ${build(2, 'a', 'failed', 20)},
          ${build(3, 'b', 'failed', 10)}, ${build(4, 'b', 'succeeded', 20)},
          ${build(5, 'c', 'failed', 10)}, ${build(6, 'c', 'failed', 30)}, ${build(7, 'c', 'failed', 25)},
          ${build(8, 'd', 'queued')}, ${build(9, 'd', 'running')},
          ${build(11, 'f', 'succeeded', 50)}, ${build(12, 'f', 'succeeded', 50)},
          ${build(13, 'g', 'succeeded', 5)}, ${build(14, 'g', 'failed', 60)}, ${build(15, 'g', 'starting')};
      `);

      expect(await runMigrations(client, upTo('002'))).toEqual(['002_shown_builds.sql']);

      const rows = await client.query(
        'SELECT ref, shown_build_id, shown_at, shown_succeeded FROM versions ORDER BY ref',
      );
      const shown = rows.map((r) => ({
        ref: String(r.ref),
        buildId: r.shown_build_id === null ? null : String(r.shown_build_id),
        at: toDateOrNull(r.shown_at),
        succeeded: r.shown_succeeded === null ? null : Boolean(r.shown_succeeded),
      }));
      const expected = (ref: string, n: number | null, minute: number | null, succeeded: boolean | null) =>
        ({ ref, buildId: n === null ? null : id(n), at: minute === null ? null : at(minute), succeeded });
      expect(shown).toEqual([
        expected('a', 1, 10, true), // a newer failure does not hide a success
        expected('b', 4, 20, true),
        expected('c', 6, 30, false), // never succeeded: the newest failure
        expected('d', null, null, null), // only in flight
        expected('e', null, null, null), // no builds
        expected('f', 12, 50, true), // a tie on finish time goes to the larger id
        expected('g', 13, 5, true),
      ]);

      // Search reads what the backfill wrote, newest first (with the later migrations applied: the store's
      // statements read their columns too).
      await runMigrations(client);
      const found = await new SqlStore(client).searchPackages({ name: 'backfill', limit: 10 });
      expect(ids(found)).toEqual([id(12), id(6), id(4), id(1), id(13)]);
      expect(found[1]).toMatchObject({ namespace: 'old', name: 'backfill', ref: 'c', status: 'failed' });
      expect(await staleVersions(client)).toBe(0);

      // Versions now point at builds and builds at versions: deleting a repository still cascades.
      await client.query(`DELETE FROM repositories WHERE name = 'backfill'`);
      expect(await client.query('SELECT count(*)::int AS n FROM builds')).toEqual([{ n: 0 }]);
      expect(await client.query('SELECT count(*)::int AS n FROM versions')).toEqual([{ n: 0 }]);
    });
  });
}
