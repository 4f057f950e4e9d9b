// The tiny driver interface SqlStore is written against; pg, PGlite and the RDS Data API each implement it.

/**
 * Parameters are plain values only: the Data API cannot send Dates, arrays or bigints,
 * so SQL casts them itself ($1::timestamptz, string_to_array($2::text, ',')).
 */
export type SqlParam = string | number | boolean | null;

/** One result row keyed by column name. Value types differ per driver; rows.ts normalises them. */
export type SqlRow = Record<string, unknown>;

export interface QueryOptions {
  /**
   * False when the best plan depends so much on the parameter values that a plan reused across
   * values could be far worse (a search whose needle is too short for the trigram index): such a
   * statement is planned on every call. Default true: drivers that can keep a prepared statement do.
   */
  reusePlan?: boolean;
}

export interface SqlClient {
  /**
   * Runs one statement with positional parameters ($1..$n) and returns its rows (empty when none).
   * The pg and PGlite drivers keep each distinct text as a prepared statement for the session, so a
   * statement names its columns: a `SELECT *` prepared before a migration adds a column fails after it
   * ("cached plan must not change result type").
   */
  query(sql: string, params?: SqlParam[], options?: QueryOptions): Promise<SqlRow[]>;
  /** Runs a script of statements, each ending with ";" at the end of a line, without parameters. */
  exec(sql: string): Promise<void>;
  /**
   * Runs `fn` in one transaction: committed when it resolves, rolled back when it throws.
   * Called on a client that is already in a transaction, it joins that transaction.
   */
  transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T>;
  /** Releases connections; a no-op on a transaction-bound client. */
  close(): Promise<void>;
}

/**
 * Splits a script into statements at ";" ending a line, dropping pieces that hold only comments.
 * Migrations are written to this rule (no $$ bodies), so no SQL parser is needed.
 */
export function splitStatements(script: string): string[] {
  return script
    .split(/;[ \t]*(?:\r?\n|$)/)
    .map((s) => s.trim())
    .filter((s) => s.replace(/--[^\n]*/g, '').trim() !== '');
}
