// RFC 9457 problem details: the error form of every /v2 route (the legacy routes keep the envelope).
import { DatabaseUnavailableError } from '#core/errors.js';
import { statusOf } from './errors.js';
import type { Headers, HttpResult } from './envelope.js';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';
export const V2_JSON_CONTENT_TYPE = 'application/json';

const TITLES: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  409: 'Conflict', 410: 'Gone', 413: 'Content Too Large', 429: 'Too Many Requests', 500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** A problem of type about:blank: its title is the status's own phrase, its detail says what happened. */
export function problem(status: number, detail: string, headers: Headers = {}): HttpResult {
  return {
    statusCode: status,
    headers: { ...headers, 'Content-Type': PROBLEM_CONTENT_TYPE },
    body: JSON.stringify({ type: 'about:blank', title: TITLES[status] ?? 'Error', status, detail }),
  };
}

/**
 * The problem for an error a /v2 handler caught: a known error with its message, anything else a 500 naming only
 * the request id (the caller logs it), as errorResult does for the envelope.
 */
export function problemFor(error: unknown, requestId: string): HttpResult {
  if (error instanceof DatabaseUnavailableError) {
    const after = DatabaseUnavailableError.RETRY_AFTER_S;
    return problem(503, `the database cannot be reached right now; retry in ${after} s`, { 'Retry-After': String(after) });
  }
  const status = statusOf(error);
  if (status !== undefined) return problem(status, (error as Error).message);
  return problem(500, `Internal error (request id ${requestId})`);
}

/** A /v2 resource: plain JSON, no envelope. */
export function resource(body: unknown, headers: Headers = {}): HttpResult {
  return { statusCode: 200, headers: { ...headers, 'Content-Type': V2_JSON_CONTENT_TYPE }, body: JSON.stringify(body) };
}
