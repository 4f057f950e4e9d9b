// The read queries stay index lookups on a populated database: EXPLAIN the Store's own SQL (pg driver),
// both as planned for its values and as the generic plan a prepared statement may settle on.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { SqlStore, runMigrations } from '#adapters/postgres/open-store.js';
import { createPgClient } from '#adapters/postgres/pg-client.js';
import type { QueryOptions, SqlClient, SqlParam } from '#adapters/postgres/sql-client.js';
import { createTestDatabase, TEST_DATABASE_URL, type TestDatabase } from '#support/databases.js';

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  Plans?: PlanNode[];
}

function flatten(node: PlanNode): PlanNode[] {
  return [node, ...(node.Plans ?? []).flatMap(flatten)];
}

describe.skipIf(!TEST_DATABASE_URL)('Store query plans (pg, 20k repositories / 80k versions / 240k builds)', () => {
  let db: TestDatabase;
  let client: SqlClient;
  let explainer: pg.Client;
  let store: SqlStore;
  const recorded: { sql: string; params: SqlParam[]; options?: QueryOptions }[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    client = createPgClient(db.url, { max: 2 });
    await runMigrations(client);
    // Records each statement the Store sends, so the test explains exactly that SQL.
    const recording: SqlClient = {
      query: (sql, params = [], options) => {
        recorded.push({ sql, params, options });
        return client.query(sql, params, options);
      },
      exec: (sql) => client.exec(sql),
      transaction: (fn) => client.transaction(fn),
      close: async () => {},
    };
    store = new SqlStore(recording);
    await client.exec(`
      INSERT INTO repositories (namespace, name, clone_url)
        SELECT 'ns' || (i % 2000), n.name, 'https://github.com/ns/' || n.name
        FROM generate_series(1, 20000) AS i, LATERAL (SELECT 'pkg_' || substr(md5(i::text), 1, 12) AS name) n;
      INSERT INTO versions (repository_id, ref, erl_version)
        SELECT r.id, '1.' || j || '.0', (22 + j % 5)::text FROM repositories r, generate_series(1, 4) AS j;
      INSERT INTO builds (id, version_id, status, created_at, started_at, finished_at, artifact_key)
        SELECT gen_random_uuid(), v.id, s.status, t.at - interval '5 minutes', t.at - interval '4 minutes',
               CASE WHEN s.status IN ('succeeded', 'failed') THEN t.at END,
               CASE WHEN s.status = 'succeeded' THEN 'artifacts/x.ep' END
        FROM versions v, generate_series(1, 3) AS k,
          LATERAL (SELECT timestamptz '2024-01-01' + (v.id * 3 + k) * interval '1 minute' AS at) t,
          LATERAL (SELECT CASE WHEN k = 2 AND v.id % 4 = 0 THEN 'failed'
                               WHEN k = 3 AND v.id % 9 = 0 THEN 'queued'
                               ELSE 'succeeded' END AS status) s;
      SELECT refresh_shown_builds();
      ANALYZE;
    `);
    explainer = new pg.Client({ connectionString: db.url });
    await explainer.connect();
  });

  afterAll(async () => {
    await explainer?.end();
    await client?.close();
    await db?.drop();
  });

  async function onePackage(): Promise<{ namespace: string; name: string }> {
    const { rows } = await explainer.query('SELECT namespace, name FROM repositories WHERE id = 777');
    return { namespace: rows[0].namespace, name: rows[0].name };
  }

  /** The plan nodes of the last statement the Store sent, as planned for its parameter values. */
  async function planOfLast(): Promise<PlanNode[]> {
    const last = recorded.at(-1)!;
    const { rows } = await explainer.query(`EXPLAIN (FORMAT JSON) ${last.sql}`, last.params);
    return flatten((rows[0]['QUERY PLAN'] as { Plan: PlanNode }[])[0].Plan);
  }

  /**
   * The generic plan of the last statement: what a prepared statement runs once Postgres stops planning
   * it per call. Statements sent with reusePlan: false are never prepared, so they have none.
   */
  async function genericPlanOfLast(): Promise<PlanNode[]> {
    const last = recorded.at(-1)!;
    expect(last.options?.reusePlan).not.toBe(false);
    const literal = (v: SqlParam) => (v === null ? 'NULL' : typeof v === 'string' ? explainer.escapeLiteral(v) : String(v));
    await explainer.query('DEALLOCATE ALL');
    await explainer.query(`PREPARE last_statement AS ${last.sql}`);
    const args = last.params.length === 0 ? '' : `(${last.params.map(literal).join(', ')})`;
    // Postgres would try custom plans first; the generic one is what it may keep afterwards.
    await explainer.query('SET plan_cache_mode = force_generic_plan');
    try {
      const { rows } = await explainer.query(`EXPLAIN (FORMAT JSON) EXECUTE last_statement${args}`);
      return flatten((rows[0]['QUERY PLAN'] as { Plan: PlanNode }[])[0].Plan);
    } finally {
      await explainer.query('RESET plan_cache_mode');
    }
  }

  function expectIndexOnly(nodes: PlanNode[], indexes: string[]): void {
    const seqScans = nodes.filter((n) => n['Node Type'] === 'Seq Scan').map((n) => n['Relation Name']);
    expect(seqScans).toEqual([]);
    const used = new Set(nodes.map((n) => n['Index Name']).filter(Boolean));
    for (const index of indexes) expect(used).toContain(index);
  }

  /** Both plans of the last statement use `indexes` and scan no table. */
  async function expectLastIndexOnly(indexes: string[]): Promise<void> {
    expectIndexOnly(await planOfLast(), indexes);
    expectIndexOnly(await genericPlanOfLast(), indexes);
  }

  it('searches from the repositories the trigram index matches to their shown versions', async () => {
    // A distinctive part of one package's name, in upper case to exercise lower().
    const { rows } = await explainer.query(`SELECT substr(md5('4242'), 3, 7) AS part`);
    const found = await store.searchPackages({ name: String(rows[0].part).toUpperCase(), limit: 20 });
    expect(found.length).toBeGreaterThan(0);
    // The builds rows are read for the versions kept, by primary key; no per-version probe of builds.
    await expectLastIndexOnly(['repositories_name_trgm_idx', 'builds_pkey']);
    for (const nodes of [await planOfLast(), await genericPlanOfLast()]) {
      expect(nodes.map((n) => n['Index Name'])).not.toContain('builds_succeeded_by_version_idx');
    }
    // In practice Postgres keeps planning this statement per call (its generic plan looks dearer than a
    // selective name's), and that plan reads the matching versions from the covering index alone.
    expectIndexOnly(await planOfLast(), ['versions_shown_by_repository_idx']);

    // Narrowed by namespace, ref and OTP release, still without a scan.
    const [one] = found;
    await store.searchPackages({ name: one.name, namespace: one.namespace, ref: one.ref, erlVersion: one.erlVersion, limit: 20 });
    await expectLastIndexOnly(['builds_pkey']);
  });

  it('walks shown versions newest first for a needle too short for trigrams', async () => {
    // Two hex digits: in several percent of the names, and no trigram to look up.
    const found = await store.searchPackages({ name: '4f', limit: 20 });
    expect(found).toHaveLength(20);
    expect(recorded.at(-1)!.options?.reusePlan).toBe(false);
    expectIndexOnly(await planOfLast(), ['versions_shown_recent_idx', 'builds_pkey']);
  });

  it('finds the latest success of a package through its unique key', async () => {
    const pkg = await onePackage();
    expect(await store.findLatestSuccessfulBuild(pkg, { ref: '1.3.0' })).not.toBeNull();
    await expectLastIndexOnly(['repositories_namespace_name_key']);
    expect(await store.findLatestSuccessfulBuild(pkg, { ref: '1.3.0', erlVersion: '25' })).not.toBeNull();
    await expectLastIndexOnly(['repositories_namespace_name_key', 'versions_repository_ref_erl_key']);
  });

  it('lists successful builds and versions of a package without scanning', async () => {
    const pkg = await onePackage();
    expect((await store.listSuccessfulBuilds(pkg, [])).length).toBeGreaterThan(0);
    await expectLastIndexOnly(['repositories_namespace_name_key']);
    expect((await store.listVersionsWithSuccess(pkg, [])).length).toBe(4);
    await expectLastIndexOnly(['repositories_namespace_name_key', 'builds_succeeded_by_version_idx']);
    // Several filters travel as one JSON parameter, matched against the package's few versions.
    expect((await store.listSuccessfulBuilds(pkg, [{ ref: '1.1.0' }, { ref: '1.2.0', erlVersion: '24' }])).length).toBeGreaterThan(0);
    await expectLastIndexOnly(['repositories_namespace_name_key']);
  });

  it('walks the recent-successes index for the last builds', async () => {
    expect(await store.lastSuccessfulBuilds(20)).toHaveLength(20);
    // The newer-success probe may use either index on version_id; both are lookups.
    await expectLastIndexOnly(['builds_succeeded_recent_idx']);
  });

  it('gets a build by its primary key', async () => {
    const [any] = await store.lastSuccessfulBuilds(1);
    expect(await store.getBuild(any.id)).not.toBeNull();
    await expectLastIndexOnly(['builds_pkey']);
  });

  it("moves a build and its version's shown build by key lookups only", async () => {
    const pkg = await onePackage();
    const [latest] = await store.listSuccessfulBuilds(pkg, [{ ref: '1.2.0' }]);
    const build = await store.createBuild({ versionId: latest.versionId });
    // The build is found by its id, or through the status index when the planner expects its status to
    // be rare (nothing is `starting` here); either is a lookup. Its version is found by primary key.
    await store.transitionBuild(build.id, ['queued'], 'starting', { builderId: 'plan-test' });
    await expectLastIndexOnly(['versions_pkey']);
    await store.transitionBuild(build.id, ['starting'], 'failed', { message: 'plan test' });
    await expectLastIndexOnly(['versions_pkey', 'builds_succeeded_by_version_idx', 'builds_failed_by_version_idx']);
  });

  // --- the build pipeline's statements: each request, claim and reaper pass stays an index lookup ---

  it('finds the build that makes a new one unnecessary through the version index', async () => {
    const pkg = await onePackage();
    const [latest] = await store.listSuccessfulBuilds(pkg, []);
    expect(await store.findReusableBuild(latest.versionId)).not.toBeNull();
    await expectLastIndexOnly(['builds_version_idx']);
    await store.findReusableBuild(latest.versionId, { inFlightOnly: true });
    await expectLastIndexOnly(['builds_version_idx']);
  });

  it('looks up a repository and a build job by their keys', async () => {
    const pkg = await onePackage();
    expect(await store.getRepository(pkg)).not.toBeNull();
    await expectLastIndexOnly(['repositories_namespace_name_key']);
    const [any] = await store.lastSuccessfulBuilds(1);
    expect(await store.getBuildJob(any.id)).not.toBeNull();
    await expectLastIndexOnly(['builds_pkey']);
  });

  it('claims the oldest queued builds through the status index', async () => {
    expect(await store.claimQueuedBuilds(2)).toHaveLength(2);
    expectIndexOnly(await planOfLast(), ['builds_status_created_idx']);
  });

  it('finds stuck and stale builds through the in-flight and status indexes', async () => {
    const before = new Date('2024-03-01T00:00:00Z');
    await store.listBuildsOlderThan(['starting', 'running'], before, 100);
    expectIndexOnly(await planOfLast(), ['builds_in_flight_started_idx']);
    await store.listBuildsOlderThan(['queued'], before, 100);
    expectIndexOnly(await planOfLast(), ['builds_status_created_idx']);
  });
});
