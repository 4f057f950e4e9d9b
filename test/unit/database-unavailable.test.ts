// "The database cannot be reached" is one typed error whatever the driver said, and HTTP answers it 503 with
// Retry-After in the envelope, naming nothing of the driver's error; any other error stays what it was (a 500).
import { describe, expect, it } from 'vitest';
import { DatabaseUnavailableError } from '#core/errors.js';
import { errorResult, statusOf } from '#http/errors.js';
import {
  dataApiUnavailable, pgliteUnavailable, pgUnavailable, reportingUnavailable, type UnavailableClassifier,
} from '#adapters/postgres/unavailable.js';
import type { SqlClient } from '#adapters/postgres/sql-client.js';

const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });
const named = (name: string, message = name) => Object.assign(new Error(message), { name });
const withStatus = (name: string, status: number) => Object.assign(named(name), { $metadata: { httpStatusCode: status } });

const cases: { driver: string; classify: UnavailableClassifier; outage: [string, unknown][]; not: [string, unknown][] }[] = [
  {
    driver: 'pg',
    classify: pgUnavailable,
    outage: [
      ['connection refused', withCode('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED')],
      ['connection reset', withCode('read ECONNRESET', 'ECONNRESET')],
      ['server shutting down (57P01)', withCode('terminating connection due to administrator command', '57P01')],
      ['server starting up (57P03)', withCode('the database system is starting up', '57P03')],
      ['connection exception (08006)', withCode('connection failure', '08006')],
      ['too many connections (53300)', withCode('sorry, too many clients already', '53300')],
      ['connection lost mid-query', new Error('Connection terminated unexpectedly')],
      ['pool connect timeout', new Error('timeout exceeded when trying to connect')],
      ['every address refused', new AggregateError([withCode('a', 'ECONNREFUSED'), withCode('b', 'ECONNREFUSED')], '')],
    ],
    not: [
      ['unique violation (23505)', withCode('duplicate key value violates unique constraint', '23505')],
      ['syntax error (42601)', withCode('syntax error at or near "SELEC"', '42601')],
      ['a plain error', new Error('something else')],
      ['a string', 'ECONNREFUSED'],
    ],
  },
  {
    driver: 'PGlite',
    classify: pgliteUnavailable,
    outage: [
      ['closed', new Error('PGlite is closed')],
      ['WASM aborted', named('RuntimeError', 'Aborted(). Build with -sASSERTIONS for more info.')],
    ],
    not: [
      ['a query error', withCode('relation "x" does not exist', '42P01')],
      ['another RuntimeError', named('RuntimeError', 'unreachable')],
    ],
  },
  {
    driver: 'Data API',
    classify: dataApiUnavailable,
    outage: [
      ['cluster resuming', named('DatabaseResumingException')],
      ['statement timeout', named('StatementTimeoutException')],
      ['service 5xx', withStatus('ServiceUnavailableError', 503)],
      ['any 5xx', withStatus('UnknownError', 502)],
      ['endpoint refused', withCode('connect ECONNREFUSED 127.0.0.1:1', 'ECONNREFUSED')],
    ],
    not: [
      ['bad request (4xx)', withStatus('BadRequestException', 400)],
      ['forbidden', withStatus('ForbiddenException', 403)],
    ],
  },
];

describe.each(cases)('$driver outages', ({ classify, outage, not }) => {
  it.each(outage)('%s is an outage', (_what, error) => {
    expect(classify(error)).toEqual(expect.any(String));
  });
  it.each(not)('%s is not', (_what, error) => {
    expect(classify(error)).toBeUndefined();
  });
});

describe('a client reporting outages', () => {
  const failing = (error: unknown): SqlClient => {
    const client: SqlClient = {
      query: () => Promise.reject(error),
      exec: () => Promise.reject(error),
      transaction: (fn) => fn(client),
      close: () => Promise.resolve(),
    };
    return client;
  };

  it('turns a driver outage into DatabaseUnavailableError, keeping the driver error as its cause only', async () => {
    const cause = withCode('connect ECONNREFUSED 10.1.2.3:5432 password=hunter2', 'ECONNREFUSED');
    const client = reportingUnavailable(failing(cause), pgUnavailable);
    const error = await client.query('SELECT 1').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatabaseUnavailableError);
    expect((error as Error).cause).toBe(cause);
    expect((error as Error).message).not.toMatch(/10\.1\.2\.3|hunter2/);
    await expect(client.exec('SELECT 1;')).rejects.toBeInstanceOf(DatabaseUnavailableError);
    // Inside a transaction too.
    await expect(client.transaction((tx) => tx.query('SELECT 1'))).rejects.toBeInstanceOf(DatabaseUnavailableError);
  });

  it('passes any other error through unchanged', async () => {
    const other = withCode('duplicate key', '23505');
    await expect(reportingUnavailable(failing(other), pgUnavailable).query('INSERT')).rejects.toBe(other);
  });
});

describe('HTTP during an outage', () => {
  it('answers 503 with Retry-After in the legacy envelope', () => {
    const error = new DatabaseUnavailableError('ECONNREFUSED', { cause: new Error('connect ECONNREFUSED 10.0.0.9:5432') });
    expect(statusOf(error)).toBe(503);
    const result = errorResult(error, 'req-1');
    expect(result.statusCode).toBe(503);
    expect(result.headers).toMatchObject({ 'Retry-After': String(DatabaseUnavailableError.RETRY_AFTER_S), 'Content-Type': 'application/json; charset=utf-8' });
    const body = JSON.parse(result.body) as { result: boolean; response: unknown };
    expect(body.result).toBe(false);
    expect(body.response).toBe(`Service unavailable: the database cannot be reached right now; retry in ${DatabaseUnavailableError.RETRY_AFTER_S} s`);
    expect(result.body).not.toMatch(/ECONNREFUSED|10\.0\.0\.9/);
  });

  it('still answers other faults 500', () => {
    expect(errorResult(new Error('boom'), 'req-2').statusCode).toBe(500);
  });
});
