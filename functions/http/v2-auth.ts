// What the token-checked /v2 routes share: the caller's principal from its Bearer token, their inputs parsed into
// problem details (not the envelope), every failure answered as a problem, and the empty 204.
import type { APIGatewayProxyEvent } from 'aws-lambda';
import type * as z from 'zod';
import { authenticate, type AdminTokenHashes, type Principal } from '#core/authorization.js';
import { ValidationError } from '#core/errors.js';
import type { Log, OwnerTokenRecords } from '#core/ports.js';
import { headerValue } from '#core/headers.js';
import type { HttpResult } from './envelope.js';
import { problemFor } from './problem.js';
import { parseWith, type Source } from './schemas.js';

export interface BearerDeps {
  store: Pick<OwnerTokenRecords, 'findOwnerToken'>;
  config: { adminTokenHashes: readonly string[] };
  /** The process's reader (Secrets Manager on AWS); absent: config.adminTokenHashes. */
  adminTokenHashes?: AdminTokenHashes;
}

/**
 * The principal the request's `Authorization: Bearer` header proves: null without the header, UnauthorizedError
 * (401) for a header that is not Bearer or a token that is no admin's or owner's. The rate limits exempt any
 * principal (core/authorization.ts: isPrivileged).
 */
export function bearerPrincipal(deps: BearerDeps, event: APIGatewayProxyEvent): Promise<Principal | null> {
  const adminTokenHashes = deps.adminTokenHashes ?? (() => Promise.resolve(deps.config.adminTokenHashes));
  return authenticate({ store: deps.store, adminTokenHashes }, headerValue(event.headers, 'Authorization'));
}

/** Parses one part of a /v2 request, or throws a ValidationError answered as a 400 problem. */
export function v2Input<T extends z.ZodType>(schema: T, source: Source, value: unknown): z.output<T> {
  const parsed = parseWith(schema, source, value);
  if (!parsed.ok) throw new ValidationError(parsed.message);
  return parsed.data;
}

/** The request's JSON body (an absent or empty body is `{}`), or a 400 problem. */
export function v2JsonBody(event: APIGatewayProxyEvent): unknown {
  const text = event.body === null || event.body === undefined
    ? '' : event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new ValidationError(`Malformed JSON body: ${(error as Error).message}`);
  }
}

/**
 * Runs a /v2 handler's work, answering any failure as problem details: a 401 carries WWW-Authenticate (RFC 6750),
 * a 5xx is logged with `what`.
 */
export async function v2Answer(what: string, requestId: string, log: Log, work: () => Promise<HttpResult>): Promise<HttpResult> {
  try {
    return await work();
  } catch (error) {
    const answer = problemFor(error, requestId);
    if (answer.statusCode === 401) answer.headers = { ...answer.headers, 'WWW-Authenticate': 'Bearer realm="enot-builder"' };
    if (answer.statusCode >= 500) log.error(`${what} failed`, error);
    return answer;
  }
}

/** 204 No Content: a deletion or change done, nothing to say. */
export function noContent(): HttpResult {
  return { statusCode: 204, headers: {}, body: '' };
}
