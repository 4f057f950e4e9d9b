// Every error type the core raises. The DomainErrors are a request's fault, and functions/http/errors.ts is the
// one place that maps them to HTTP; the others are states of the machinery (a busy builder, an unhealthy check).

export class DomainError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The request is well formed but refers to something invalid (400). */
export class ValidationError extends DomainError {}

/** The thing asked for does not exist (404). */
export class NotFoundError extends DomainError {}

/** The request conflicts with existing state (409). */
export class ConflictError extends DomainError {}

/** The thing asked for existed and was removed on purpose, for good (410): an expired build log. */
export class GoneError extends DomainError {}

/** The caller is not who it claims to be (401). */
export class UnauthorizedError extends DomainError {}

/** The caller is known (a valid token) but may not do this (403). */
export class ForbiddenError extends DomainError {}

/**
 * A client asked for more than its rate limit leaves in the current window (429). `limit` and `resetAt` say which
 * limit and when its window ends; nothing of the request was written.
 */
export class RateLimitedError extends DomainError {
  /** Whole seconds until the window ends, at least 1 (Retry-After). */
  readonly retryAfterS: number;

  /** `limitText` says the limit (`at most 10 new builds per hour from one client`). */
  constructor(limitText: string, readonly limit: number, readonly resetAt: Date, now = Date.now()) {
    const retryAfterS = Math.max(1, Math.ceil((resetAt.getTime() - now) / 1000));
    super(`Rate limit exceeded: ${limitText}; retry after ${retryAfterS} s`);
    this.retryAfterS = retryAfterS;
  }
}

/** Thrown by a Builder when it cannot start a build now but may later (throttled): the build is retried. */
export class BuilderBusyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BuilderBusyError';
  }
}

/** An unhealthy state found by a health check; its code is the public reason. */
export class HealthProblem extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = 'HealthProblem';
  }
}

/** A health check that did not answer within its time limit. */
export class HealthCheckTimeout extends Error {}

/**
 * Stored bytes that do not match their recorded sha256 (or have none recorded): they are not served (503). Not the
 * request's fault, and not passing: the object or its record must be repaired (or rebuilt).
 */
export class ChecksumMismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChecksumMismatchError';
  }
}

/**
 * A write to a blob key that already holds an object, where keys are written once (artifacts/, erts/): refused, so
 * bytes that were recorded, signed and served are never replaced. A bug or an attack, never a request's fault.
 */
export class BlobExistsError extends Error {
  constructor(readonly key: string) {
    super(`blob ${key} exists already; artifacts and ERTS tarballs are never overwritten`);
    this.name = 'BlobExistsError';
  }
}

/**
 * The database cannot be reached now (down, restarting, resuming, timed out) but may be soon: every Store driver
 * turns its own "unreachable" errors into this, so callers can retry (the local worker) or answer 503 (HTTP).
 * The message says only that; the driver's error, which may name hosts, is the cause.
 */
export class DatabaseUnavailableError extends Error {
  /** How long a client should wait before asking again. */
  static readonly RETRY_AFTER_S = 5;

  constructor(readonly code: string, options?: { cause?: unknown }) {
    super(`the database is unavailable (${code})`, options);
    this.name = 'DatabaseUnavailableError';
  }
}

/** Another live process owns a data directory that takes one owner (PGlite's): this one must not touch it. */
export class DataDirectoryInUseError extends Error {
  constructor(readonly dir: string, readonly owner: { pid: number; startedAt: string; host?: string }) {
    super(
      `the data directory ${dir} is in use by process ${owner.pid}${owner.host ? ` on ${owner.host}` : ''}, ` +
      `running since ${owner.startedAt}: stop that service first, or give this one another ENOT_DATA_DIR`,
    );
    this.name = 'DataDirectoryInUseError';
  }
}
