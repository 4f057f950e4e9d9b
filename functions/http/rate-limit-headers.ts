// The rate limit headers of an answer, as hex.pm sends them: X-RateLimit-Limit/Remaining/Reset (unix seconds), and
// Retry-After on a 429.
import type { RateLimitedError } from '#core/errors.js';
import type { RateLimitStatus } from '#core/rate-limits.js';
import type { Headers } from './envelope.js';

export function rateLimitHeaders(status: RateLimitStatus): Headers {
  return {
    'X-RateLimit-Limit': String(status.limit),
    'X-RateLimit-Remaining': String(status.remaining),
    'X-RateLimit-Reset': String(Math.ceil(status.resetAt.getTime() / 1000)),
  };
}

/** A refusal's headers: nothing remains, and when to ask again. */
export function refusalHeaders(error: RateLimitedError): Headers {
  return {
    'Retry-After': String(error.retryAfterS),
    ...rateLimitHeaders({ limit: error.limit, remaining: 0, resetAt: error.resetAt }),
  };
}
