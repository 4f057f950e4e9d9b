// The pg and PGlite drivers run each distinct statement text as a prepared statement, within a bounded number of texts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgClient } from '#adapters/postgres/pg-client.js';
import { createPgliteClient } from '#adapters/postgres/pglite-client.js';
import type { SqlClient, SqlParam } from '#adapters/postgres/sql-client.js';
import { StatementNames } from '#adapters/postgres/statement-names.js';
import { createTestDatabase, TEST_DATABASE_URL, type TestDatabase } from '#support/databases.js';

describe('StatementNames', () => {
  it('names a text the same every time, another text differently, and stops naming at its cap', () => {
    const names = new StatementNames(2);
    const a = names.nameOf('SELECT 1 AS a');
    expect(a).toMatch(/^enot_[0-9a-f]{16}$/);
    expect(names.nameOf('SELECT 1 AS a')).toBe(a);
    const b = names.nameOf('SELECT 2 AS b');
    expect(b).not.toBe(a);
    expect(names.nameOf('SELECT 3 AS c')).toBeUndefined();
    // Texts named before the cap keep their names.
    expect(names.nameOf('SELECT 2 AS b')).toBe(b);
    expect(names.size).toBe(2);
  });
});

interface Driver {
  driver: string;
  available: boolean;
  /** A client of one connection (so its prepared statements can be listed) on a fresh database. */
  open(maxPrepared?: number): Promise<{ client: SqlClient; close(): Promise<void> }>;
}

const drivers: Driver[] = [
  {
    driver: 'PGlite',
    available: true,
    async open(maxPrepared) {
      const client = await createPgliteClient(undefined, { maxPrepared });
      return { client, close: () => client.close() };
    },
  },
  {
    driver: 'pg',
    available: Boolean(TEST_DATABASE_URL),
    async open(maxPrepared) {
      const db: TestDatabase = await createTestDatabase();
      const client = createPgClient(db.url, { max: 1, maxPrepared });
      return {
        client,
        async close() {
          await client.close();
          await db.drop();
        },
      };
    },
  },
];

describe.each(drivers)('prepared statements on $driver', ({ available, open }) => {
  if (!available) {
    // Only on a machine without a Postgres server; CI always sets DATABASE_URL, so this never skips there.
    it.skip('needs DATABASE_URL', () => {});
    return;
  }

  let client: SqlClient;
  let close: () => Promise<void>;

  beforeAll(async () => {
    ({ client, close } = await open());
    await client.exec('CREATE TABLE notes (id int PRIMARY KEY, body text, n bigint, flag boolean, doc jsonb)');
  });
  afterAll(async () => {
    await close?.();
  });

  /** The statements prepared in the (single) session, listed by a statement that is itself never prepared. */
  async function prepared(client: SqlClient): Promise<string[]> {
    const rows = await client.query(
      `SELECT name FROM pg_prepared_statements WHERE name LIKE 'enot\\_%' ORDER BY name`, [], { reusePlan: false },
    );
    return rows.map((r) => String(r.name));
  }

  it('prepares a text once, reuses it, leaves reusePlan: false unnamed, and runs texts past the cap unnamed', async () => {
    const capped = await open(3);
    try {
      await capOfThree(capped.client);
    } finally {
      await capped.close();
    }
  });

  async function capOfThree(client: SqlClient): Promise<void> {
    expect(await prepared(client)).toEqual([]);
    const texts = ['SELECT $1::int + 1 AS n', 'SELECT $1::int + 2 AS n', 'SELECT $1::int + 3 AS n', 'SELECT $1::int + 4 AS n'];
    for (const [i, sql] of texts.entries()) {
      expect(await client.query(sql, [10])).toEqual([{ n: 11 + i }]);
      expect(await client.query(sql, [20])).toEqual([{ n: 21 + i }]);
    }
    expect(await client.query('SELECT $1::int + 5 AS n', [1], { reusePlan: false })).toEqual([{ n: 6 }]);
    const names = await prepared(client);
    // The first three texts (the cap); not the fourth, nor the one sent with reusePlan: false.
    expect(names).toHaveLength(3);
    const sessionNames = new StatementNames(3);
    expect(names).toEqual(texts.slice(0, 3).map((t) => sessionNames.nameOf(t)).sort());
  }

  it('shares prepared statements between the client and its transactions, which may roll back', async () => {
    const sql = 'SELECT $1::int * 7 AS n';
    await expect(client.transaction(async (tx) => {
      expect(await tx.query(sql, [1])).toEqual([{ n: 7 }]);
      throw new Error('roll back');
    })).rejects.toThrow('roll back');
    const name = new StatementNames().nameOf(sql)!;
    // Prepared inside the transaction, still there after its rollback, and used by the client.
    expect(await prepared(client)).toContain(name);
    expect(await client.query(sql, [2])).toEqual([{ n: 14 }]);
    expect((await prepared(client)).filter((n) => n === name)).toHaveLength(1);
  });

  it('runs statements that cannot be prepared, and reports errors in those that can', async () => {
    await client.transaction(async (tx) => {
      await tx.query('LOCK TABLE notes IN EXCLUSIVE MODE');
    });
    await expect(client.query('SELECT nothing FROM notes WHERE id = $1::int', [1])).rejects.toThrow(/nothing/);
    await expect(client.query('INSERT INTO notes (id) VALUES ($1::int)', ['not a number'])).rejects.toThrow();
  });

  it('returns the same values whether a statement is prepared or not', async () => {
    const hostile = "x'); DROP TABLE notes; --\\' $$ \"q\" ünï \n end";
    const cases: SqlParam[][] = [
      [1, hostile, 5_000_000_040, true, '{"ref": "1.0.0", "list": [1, null, "it\'s"]}'],
      [2, '', -5, false, '[]'],
      [3, null, null, null, null],
    ];
    const insert = 'INSERT INTO notes (id, body, n, flag, doc) VALUES ($1::int, $2::text, $3::bigint, $4::boolean, $5::jsonb)';
    for (const params of cases) await client.query(insert, params);
    const select = 'SELECT id, body, n, flag, doc FROM notes WHERE id = $1::int';
    for (const [id] of cases) {
      const planned = await client.query(select, [id], { reusePlan: false });
      expect(await client.query(select, [id])).toEqual(planned);
    }
    const [first] = await client.query(select, [1]);
    expect(first.body).toBe(hostile);
    expect(Number(first.n)).toBe(5_000_000_040);
    expect(first.doc).toEqual({ ref: '1.0.0', list: [1, null, "it's"] });
    expect(await client.query('SELECT count(*)::int AS n FROM notes')).toEqual([{ n: 3 }]);
    expect(await prepared(client)).toContain(new StatementNames().nameOf(select));
  });
});
