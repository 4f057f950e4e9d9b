// THE one place where errors become HTTP responses: typed domain errors -> status, anything else -> 500.
import {
  ChecksumMismatchError, ConflictError, DatabaseUnavailableError, ForbiddenError, GoneError, NotFoundError,
  RateLimitedError, UnauthorizedError, ValidationError,
} from '#core/errors.js';
import { fail, type Headers, type HttpResult } from './envelope.js';
import { refusalHeaders } from './rate-limit-headers.js';

/** A failure that belongs to HTTP itself rather than to the domain (413 body too large, ...). */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly headers: Headers = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** The status a known error maps to; undefined for anything unexpected. */
export function statusOf(error: unknown): number | undefined {
  if (error instanceof HttpError) return error.statusCode;
  if (error instanceof ValidationError) return 400;
  if (error instanceof UnauthorizedError) return 401;
  if (error instanceof ForbiddenError) return 403;
  if (error instanceof NotFoundError) return 404;
  if (error instanceof ConflictError) return 409;
  if (error instanceof GoneError) return 410;
  if (error instanceof RateLimitedError) return 429;
  if (error instanceof DatabaseUnavailableError) return 503;
  if (error instanceof ChecksumMismatchError) return 503;
  return undefined;
}

/**
 * The envelope for an error. Expected errors show their message; anything else is answered with a
 * 500 that names only the request id, so nothing internal leaks. The caller logs the unexpected ones
 * (with the stack) on its request logger, so the line carries the correlation id and route.
 */
export function errorResult(error: unknown, requestId: string): HttpResult {
  const status = statusOf(error);
  if (error instanceof DatabaseUnavailableError) {
    // An outage is not the request's fault and passes: say when to come back, and nothing of the driver's error.
    const after = DatabaseUnavailableError.RETRY_AFTER_S;
    return fail(503, `Service unavailable: the database cannot be reached right now; retry in ${after} s`, {
      'Retry-After': String(after),
    });
  }
  if (status !== undefined) {
    const headers = error instanceof HttpError ? error.headers
      : error instanceof RateLimitedError ? refusalHeaders(error) : {};
    return fail(status, (error as Error).message, headers);
  }
  return fail(500, `Internal error (request id ${requestId})`);
}
