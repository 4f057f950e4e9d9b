// The lease statements every local worker runs every few seconds (renew, take over, check, requeue) read only the
// builds in flight, through migration 005's partial indexes, never a scan of the whole builds table.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgClient } from '#adapters/postgres/pg-client.js';
import { runMigrations, SqlStore } from '#adapters/postgres/open-store.js';
import type { SqlClient, SqlParam } from '#adapters/postgres/sql-client.js';
import { createTestDatabase, TEST_DATABASE_URL, type TestDatabase } from '#support/databases.js';

interface PlanNode { 'Node Type': string; 'Relation Name'?: string; 'Index Name'?: string; Plans?: PlanNode[] }

function flatten(node: PlanNode): PlanNode[] {
  return [node, ...(node.Plans ?? []).flatMap(flatten)];
}

describe.skipIf(!TEST_DATABASE_URL)('lease statement plans (pg, 120k builds, 20 in flight)', () => {
  let db: TestDatabase;
  let client: SqlClient;
  let explainer: pg.Client;
  let store: SqlStore;
  const recorded: { sql: string; params: SqlParam[] }[] = [];
  let inFlight: string[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    client = createPgClient(db.url, { max: 2 });
    await runMigrations(client);
    const recording: SqlClient = {
      query: (sql, params = [], options) => {
        recorded.push({ sql, params });
        return client.query(sql, params, options);
      },
      exec: (sql) => client.exec(sql),
      transaction: (fn) => client.transaction(fn),
      close: async () => {},
    };
    store = new SqlStore(recording);
    await client.exec(`
      INSERT INTO repositories (namespace, name, clone_url)
        SELECT 'ns', 'pkg_' || i, 'https://github.com/ns/pkg_' || i FROM generate_series(1, 10000) AS i;
      INSERT INTO versions (repository_id, ref, erl_version)
        SELECT r.id, '1.' || j || '.0', '25' FROM repositories r, generate_series(1, 4) AS j;
      INSERT INTO builds (id, version_id, status, created_at, started_at, finished_at, artifact_key, worker_id, heartbeat_at)
        SELECT gen_random_uuid(), v.id, 'succeeded', now() - interval '1 day', now() - interval '1 day', now() - interval '1 day',
               'artifacts/x.ep', 'old-worker', now() - interval '1 day'
        FROM versions v, generate_series(1, 3) AS k;
      UPDATE builds SET status = 'running', finished_at = NULL, artifact_key = NULL,
             heartbeat_at = now() - (CASE WHEN version_id % 2 = 0 THEN interval '1 hour' ELSE interval '1 second' END)
        WHERE id IN (SELECT id FROM builds ORDER BY id LIMIT 20);
      ANALYZE;
    `);
    inFlight = (await client.query(`SELECT id FROM builds WHERE status = 'running' ORDER BY id`)).map((r) => String(r.id));
    explainer = new pg.Client({ connectionString: db.url });
    await explainer.connect();
  });

  afterAll(async () => {
    await explainer?.end();
    await client?.close();
    await db?.drop();
  });

  /** The plan of the last statement the Store sent, for its parameter values (not run). */
  async function planOfLast(): Promise<PlanNode[]> {
    const last = recorded[recorded.length - 1];
    const { rows } = await explainer.query(`EXPLAIN (FORMAT JSON) ${last.sql}`, last.params);
    return flatten((rows[0]['QUERY PLAN'] as { Plan: PlanNode }[])[0].Plan);
  }

  async function expectNoBuildsScan(): Promise<void> {
    const nodes = await planOfLast();
    const scans = nodes.filter((n) => n['Relation Name'] === 'builds');
    expect(scans.length).toBeGreaterThan(0);
    for (const scan of scans) expect(scan['Node Type'], JSON.stringify(scan)).not.toBe('Seq Scan');
  }

  it('renews, checks and requeues by key', async () => {
    await store.renewLeases('w', inFlight.slice(0, 3));
    await expectNoBuildsScan();
    await store.holdsLease(inFlight[0], 'w');
    await expectNoBuildsScan();
    await store.requeueLeasedBuilds('w', inFlight.slice(0, 3), 'x');
    await expectNoBuildsScan();
  });

  it('finds expired leases and live ones of others among the builds in flight only', async () => {
    await store.takeOverExpiredLeases('w', 30, 50);
    await expectNoBuildsScan();
    await store.hasLiveLeasesOfOthers('w', 30);
    await expectNoBuildsScan();
  });
});
