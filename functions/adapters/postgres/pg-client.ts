// SqlClient over node-postgres: a pool against a URL; a transaction holds one pooled connection.
import { createRequire } from 'node:module';
import type pg from 'pg';
import type { QueryOptions, SqlClient, SqlParam, SqlRow } from './sql-client.js';
import { StatementNames } from './statement-names.js';

/** What a pool and a checked-out connection have in common. */
interface Queryable {
  query(config: pg.QueryConfig): Promise<pg.QueryResult>;
  query(sql: string, params?: unknown[]): Promise<pg.QueryResult>;
}

function boundClient(
  conn: Queryable, names: StatementNames, transaction: SqlClient['transaction'], close: () => Promise<void>,
): SqlClient {
  return {
    async query(sql: string, params: SqlParam[] = [], options: QueryOptions = {}): Promise<SqlRow[]> {
      // A named statement is parsed and planned once per pooled connection (pg prepares it there the
      // first time); afterwards a call only binds and executes. pg refuses a name reused for another text.
      const name = options.reusePlan === false ? undefined : names.nameOf(sql);
      const result = await conn.query({ text: sql, values: params, ...(name === undefined ? {} : { name }) });
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

// Loaded when a client is made, never at import: Lambda bundles leave pg out, and esbuild would hoist a static
// import of it to the top of every bundle. pg is CommonJS, so require is also the cheaper load.
const requireCommonJs = createRequire(import.meta.url);

/** A pooled client for `url`; close() ends the pool. `maxPrepared` caps the texts sent as prepared statements. */
export function createPgClient(url: string, options: { max?: number; maxPrepared?: number } = {}): SqlClient {
  const { Pool } = requireCommonJs('pg') as typeof pg;
  const pool = new Pool({ connectionString: url, max: options.max ?? 10 });
  // An idle connection dropped by the server must not crash the process; the pool replaces it.
  pool.on('error', () => {});
  const names = new StatementNames(options.maxPrepared);

  const transaction = async <T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> => {
    const conn = await pool.connect();
    let broken: unknown;
    try {
      await conn.query('BEGIN');
      const tx: SqlClient = boundClient(conn, names, (inner) => inner(tx), async () => {});
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

  return boundClient(pool, names, transaction, () => pool.end());
}
