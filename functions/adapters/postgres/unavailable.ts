// Turns each driver's "the database cannot be reached" errors into the core's DatabaseUnavailableError, so the
// worker can retry and HTTP can answer 503; every other error (a bad statement, a constraint) passes unchanged.
import { DatabaseUnavailableError } from '#core/errors.js';
import type { SqlClient } from './sql-client.js';

/** Names the outage an error stands for, or undefined when it is not one. */
export type UnavailableClassifier = (error: unknown) => string | undefined;

/** Socket-level errors of a connection that could not be made or was cut. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND',
  'EAI_AGAIN', 'ENOENT',
]);

/**
 * SQLSTATEs of a server going away or refusing connections for now: class 08 (connection exception), 57P01-57P03
 * (admin shutdown, crash shutdown, cannot connect now: starting up or shutting down), 53300 (too many connections).
 */
function transientSqlState(code: string): boolean {
  return code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300';
}

/** node-postgres messages for a connection lost or never made, which carry no code. */
const PG_CONNECTION_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error and is not queryable',
  'Cannot use a pool after calling end on the pool',
  'Connection ended unexpectedly',
];

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Errors of node-postgres (and of the sockets under it). */
export const pgUnavailable: UnavailableClassifier = (error) => {
  const code = codeOf(error);
  if (code && NETWORK_CODES.has(code)) return code;
  if (code && /^[0-9A-Z]{5}$/.test(code) && transientSqlState(code)) return `SQLSTATE ${code}`;
  const message = messageOf(error);
  if (PG_CONNECTION_MESSAGES.some((m) => message.includes(m))) return 'connection lost';
  // A pool connect that failed on every address comes as an AggregateError of socket errors.
  if (error instanceof AggregateError && error.errors.some((e) => pgUnavailable(e) !== undefined)) return 'connection refused';
  return undefined;
};

/**
 * Errors of embedded PGlite: it is in this process, so "unreachable" means closed (a shutdown under way) or its
 * WASM instance aborted (then no query will answer until the service restarts and reopens the directory).
 */
export const pgliteUnavailable: UnavailableClassifier = (error) => {
  const message = messageOf(error);
  if (/PGlite is closed/i.test(message)) return 'closed';
  if (error instanceof Error && error.name === 'RuntimeError' && /Aborted/.test(message)) return 'aborted';
  return undefined;
};

/** Errors of the RDS Data API: a paused cluster resuming, a statement timed out, the service's own 5xx, no network. */
export const dataApiUnavailable: UnavailableClassifier = (error) => {
  const name = error instanceof Error ? error.name : undefined;
  if (name === 'DatabaseResumingException' || name === 'StatementTimeoutException'
    || name === 'DatabaseUnavailableException' || name === 'ServiceUnavailableError' || name === 'InternalServerErrorException') {
    return name;
  }
  const status = (error as { $metadata?: { httpStatusCode?: unknown } } | null)?.$metadata?.httpStatusCode;
  if (typeof status === 'number' && status >= 500) return `HTTP ${status}`;
  const code = codeOf(error);
  if (code && NETWORK_CODES.has(code)) return code;
  return undefined;
};

function translate(error: unknown, classify: UnavailableClassifier): unknown {
  if (error instanceof DatabaseUnavailableError) return error;
  const outage = classify(error);
  return outage === undefined ? error : new DatabaseUnavailableError(outage, { cause: error });
}

/** `client` with every outage error its driver throws (queries, scripts, transactions, close) turned into the core's. */
export function reportingUnavailable(client: SqlClient, classify: UnavailableClassifier): SqlClient {
  const guard = async <T>(call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } catch (error) {
      throw translate(error, classify);
    }
  };
  return {
    query: (sql, params, options) => guard(() => client.query(sql, params, options)),
    exec: (sql) => guard(() => client.exec(sql)),
    transaction: (fn) => guard(() => client.transaction((tx) => fn(reportingUnavailable(tx, classify)))),
    close: () => client.close(),
  };
}
