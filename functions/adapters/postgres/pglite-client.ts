// SqlClient over embedded PGlite (WASM Postgres) with pg_trgm; data in a directory, or in memory.
import { mkdir } from 'node:fs/promises';
import { PGlite, type Transaction } from '@electric-sql/pglite';
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm';
import type { SqlClient, SqlParam, SqlRow } from './sql-client.js';

type Queryable = Pick<Transaction, 'query' | 'exec'>;

function boundClient(db: Queryable, transaction: SqlClient['transaction'], close: () => Promise<void>): SqlClient {
  return {
    async query(sql: string, params: SqlParam[] = []): Promise<SqlRow[]> {
      const result = await db.query<SqlRow>(sql, params);
      return result.rows;
    },
    async exec(sql: string): Promise<void> {
      await db.exec(sql);
    },
    transaction,
    close,
  };
}

/**
 * Opens PGlite in `dir` (created when missing), or in memory when `dir` is undefined.
 * close() must be called: an open PGlite keeps the process alive.
 */
export async function createPgliteClient(dir?: string): Promise<SqlClient> {
  if (dir !== undefined) await mkdir(dir, { recursive: true });
  const db = await PGlite.create({ ...(dir === undefined ? {} : { dataDir: dir }), extensions: { pg_trgm } });

  const transaction = <T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> =>
    // PGlite serialises the whole transaction; queries on `db` from inside it would wait forever.
    db.transaction((raw) => {
      const tx: SqlClient = boundClient(raw, (inner) => inner(tx), async () => {});
      return fn(tx);
    });

  return boundClient(db, transaction, async () => {
    if (!db.closed) await db.close();
  });
}
