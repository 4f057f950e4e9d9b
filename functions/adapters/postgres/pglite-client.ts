// SqlClient over embedded PGlite (WASM Postgres) with pg_trgm; data in a directory, or in memory.
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Transaction } from '@electric-sql/pglite';
import { lockDataDir } from './data-dir-lock.js';
import type { QueryOptions, SqlClient, SqlParam, SqlRow } from './sql-client.js';
import { StatementNames } from './statement-names.js';

type Queryable = Pick<Transaction, 'query' | 'exec'>;

/**
 * A parameter as an SQL literal for EXECUTE, or undefined when it has none that is safe to write.
 * Quotes are doubled, which is the whole escaping when standard_conforming_strings is on (checked at open).
 */
function literal(value: SqlParam): string | undefined {
  if (value === null) return 'NULL';
  if (typeof value === 'boolean') return value ? 'TRUE' : 'FALSE';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : undefined;
  return value.includes('\0') ? undefined : `'${value.replaceAll("'", "''")}'`;
}

/** Statements PREPARE accepts; anything else (LOCK, CREATE, SET) runs as sent. */
const PREPARABLE = /^\s*(?:SELECT|INSERT|UPDATE|DELETE|WITH|VALUES)\b/i;

/**
 * PGlite's query() parses and plans every statement anew, and its protocol API has no named
 * statements; SQL-level PREPARE/EXECUTE does the same job (a call then costs about a third as much).
 * EXECUTE takes no bind parameters, so the values travel as literals.
 */
class PreparedStatements {
  private readonly names: StatementNames;
  /** Names PREPAREd in this session; a prepared statement outlives a rolled-back transaction. */
  private readonly prepared = new Set<string>();

  constructor(private readonly enabled: boolean, maxPrepared?: number) {
    this.names = new StatementNames(maxPrepared);
  }

  async query(db: Queryable, sql: string, params: SqlParam[], options: QueryOptions): Promise<SqlRow[]> {
    const name = this.enabled && options.reusePlan !== false && PREPARABLE.test(sql) ? this.names.nameOf(sql) : undefined;
    const args = name === undefined ? undefined : params.map(literal);
    if (name === undefined || args === undefined || args.includes(undefined)) {
      return (await db.query<SqlRow>(sql, params)).rows;
    }
    if (!this.prepared.has(name)) {
      // Each parameter's type comes from its cast in the text ($1::text), as it does for a bind.
      // query(), not exec(): the extended protocol refuses a text holding more than one statement.
      await db.query(`PREPARE ${name} AS ${sql}`);
      this.prepared.add(name);
    }
    return (await db.query<SqlRow>(args.length === 0 ? `EXECUTE ${name}` : `EXECUTE ${name} (${args.join(', ')})`)).rows;
  }
}

function boundClient(
  db: Queryable, statements: PreparedStatements, transaction: SqlClient['transaction'], close: () => Promise<void>,
): SqlClient {
  return {
    query: (sql: string, params: SqlParam[] = [], options: QueryOptions = {}) => statements.query(db, sql, params, options),
    async exec(sql: string): Promise<void> {
      await db.exec(sql);
    },
    transaction,
    close,
  };
}

/**
 * Opens PGlite in `dir` (created when missing), or in memory when `dir` is undefined.
 * A directory takes one owner: while another live process has it open, this throws DataDirectoryInUseError
 * before anything in it is read or written (see data-dir-lock.ts).
 * close() must be called: an open PGlite keeps the process alive, and the lock is released by it.
 * `maxPrepared` caps the texts run as prepared statements.
 */
export async function createPgliteClient(dir?: string, options: { maxPrepared?: number } = {}): Promise<SqlClient> {
  if (dir !== undefined) await mkdir(dirname(dir), { recursive: true });
  const lock = dir === undefined ? undefined : await lockDataDir(dir);
  let db: import('@electric-sql/pglite').PGlite;
  try {
    if (dir !== undefined) await mkdir(dir, { recursive: true });
    // Imported here, not at the top: Lambda bundles leave PGlite out, and esbuild would hoist a static import.
    const [{ PGlite }, { pg_trgm }] = await Promise.all([
      import('@electric-sql/pglite'), import('@electric-sql/pglite/contrib/pg_trgm'),
    ]);
    db = await PGlite.create({ ...(dir === undefined ? {} : { dataDir: dir }), extensions: { pg_trgm } });
  } catch (error) {
    await lock?.release();
    throw error;
  }
  const quoting = await db.query<{ on: string }>(`SELECT current_setting('standard_conforming_strings') AS on`);
  const statements = new PreparedStatements(quoting.rows[0]?.on === 'on', options.maxPrepared);

  const transaction = <T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> =>
    // PGlite serialises the whole transaction; queries on `db` from inside it would wait forever.
    db.transaction((raw) => {
      const tx: SqlClient = boundClient(raw, statements, (inner) => inner(tx), async () => {});
      return fn(tx);
    });

  return boundClient(db, statements, transaction, async () => {
    try {
      if (!db.closed) await db.close();
    } finally {
      await lock?.release();
    }
  });
}
