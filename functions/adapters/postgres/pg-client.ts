// SqlClient over node-postgres: a pool against a URL; a transaction holds one pooled connection.
import pg from 'pg';
import type { SqlClient, SqlParam, SqlRow } from './sql-client.js';

/** What a pool and a checked-out connection have in common. */
interface Queryable {
  query(sql: string, params?: unknown[]): Promise<pg.QueryResult>;
}

function boundClient(conn: Queryable, transaction: SqlClient['transaction'], close: () => Promise<void>): SqlClient {
  return {
    async query(sql: string, params: SqlParam[] = []): Promise<SqlRow[]> {
      const result = await conn.query(sql, params);
      return (result.rows ?? []) as SqlRow[];
    },
    async exec(sql: string): Promise<void> {
      // Without parameters pg uses the simple protocol, which accepts a whole script.
      await conn.query(sql);
    },
    transaction,
    close,
  };
}

/** A pooled client for `url`; close() ends the pool. */
export function createPgClient(url: string, options: { max?: number } = {}): SqlClient {
  const pool = new pg.Pool({ connectionString: url, max: options.max ?? 10 });
  // An idle connection dropped by the server must not crash the process; the pool replaces it.
  pool.on('error', () => {});

  const transaction = async <T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> => {
    const conn = await pool.connect();
    let broken: unknown;
    try {
      await conn.query('BEGIN');
      const tx: SqlClient = boundClient(conn, (inner) => inner(tx), async () => {});
      const result = await fn(tx);
      await conn.query('COMMIT');
      return result;
    } catch (error) {
      await conn.query('ROLLBACK').catch((rollbackError: unknown) => {
        broken = rollbackError;
      });
      throw error;
    } finally {
      // A connection whose ROLLBACK failed is in an unknown state: discard it rather than reuse it.
      conn.release(broken !== undefined);
    }
  };

  return boundClient(pool, transaction, () => pool.end());
}
