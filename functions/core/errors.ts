// Typed errors raised by use cases; functions/http/errors.ts is the one place that maps them to HTTP.

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

/** The caller is not who it claims to be (401). */
export class UnauthorizedError extends DomainError {}
