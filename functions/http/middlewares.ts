// Our own small middy middlewares: request state and observability, dependencies, the read rate limit, body limit,
// JSON body, validation, errors, streams. They run on every request, so each does its work once and synchronously
// when it can (middy awaits whatever they return).
import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { z } from 'zod';
import { DatabaseUnavailableError, RateLimitedError, ValidationError } from '#core/errors.js';
import type { RateLimitCounters } from '#core/ports.js';
import { clientAddress, countRead, type RateLimitConfig, type RateLimitStatus } from '#core/rate-limits.js';
import { headerValue } from '#core/headers.js';
import { routes, type Route } from '#functions/routes.js';
import type { HttpResult } from './envelope.js';
import { errorResult, HttpError, statusOf } from './errors.js';
import { logEnabled, processLogger, requestLogger, type LogLevel, type RequestLogger } from '#functions/log.js';
import { problem } from './problem.js';
import { rateLimitHeaders, refusalHeaders } from './rate-limit-headers.js';
import {
  correlationIdOf, CORRELATION_ID_HEADER, REQUEST_ID_HEADER, routeNameOf,
} from './observability.js';
import { invalidParameter } from './parameter-text.js';
import { parseWith, type Source } from './schemas.js';

/**
 * What the middlewares need of the process dependencies. The entry point supplies them (see DepsSource), so
 * this layer names no adapter and no wiring: a Lambda bundle holds only what its entry point builds.
 */
export interface EndpointDeps {
  config: { runtime: 'aws' | 'local'; logLevel: LogLevel; maxBodyBytes: number; rateLimits?: RateLimitConfig };
  metrics: { flush(): void };
  /** The rate limit counters; without them (or without config.rateLimits) nothing is limited. */
  store?: RateLimitCounters;
  /** Requests the rate limits do not apply to (a valid admin or owner token); absent: nobody is exempt. */
  rateLimitExempt?: RateLimitExempt;
}

/** Whether a request is exempt from the rate limits (it carries a valid Bearer token). */
export type RateLimitExempt = (event: APIGatewayProxyEvent) => Promise<boolean>;

/** Where an endpoint gets the process dependencies: built once per process, synchronous once built. */
export interface DepsSource<D extends EndpointDeps> {
  /** The dependencies, built on first call. */
  get(): Promise<D>;
  /** The dependencies when built already, else undefined: the per-request path without a wait. */
  ready(): D | undefined;
}

/** What the middlewares learn about one request, handed to the endpoint function. */
export interface RequestState {
  requestId: string;
  /** The caller's X-Correlation-Id when sane, else the request id; on every log line and answer. */
  correlationId: string;
  /** The route table name (`search`, `download`, ...), `unknown` off the table. */
  route: string;
  /** Logs with correlation_id and route on every line. */
  log: RequestLogger;
  /** performance.now() when the request arrived. */
  startedAt: number;
  deps?: EndpointDeps;
  /** The body as text (base64 decoded), once read. */
  text?: string;
  /** The JSON body, once parsed. */
  json?: unknown;
  body?: unknown;
  query?: unknown;
  path?: unknown;
  /** A body stream the endpoint answered with: closed if the answer that goes out no longer carries it. */
  stream?: Readable;
  /** The rate limit this request counted against: its X-RateLimit-* headers go on whatever answer goes out. */
  rateLimit?: RateLimitStatus;
}

export type ApiMiddleware = MiddlewareObj<APIGatewayProxyEvent, HttpResult, Error, Context>;

// Keyed by the event object: middy hands the handler only (event, context), and one event is one request.
const states = new WeakMap<object, RequestState>();

function newState(event: APIGatewayProxyEvent, context: Partial<Context> | undefined): RequestState {
  const id = requestIdOf(event, context);
  const correlationId = correlationIdOf(event?.headers, id);
  const route = routeNameOf(event?.httpMethod, event?.resource || event?.path);
  const state: RequestState = {
    requestId: id,
    correlationId,
    route,
    startedAt: performance.now(),
    log: requestLogger({ correlation_id: correlationId, route }, () => state.deps?.config.logLevel),
  };
  return state;
}

export function stateOf(event: APIGatewayProxyEvent): RequestState {
  let state = states.get(event);
  if (!state) {
    state = newState(event, undefined);
    states.set(event, state);
  }
  return state;
}

/** The Lambda request id, else API Gateway's, else a fresh one (direct invocations in tests). */
export function requestIdOf(event: Partial<APIGatewayProxyEvent> | undefined, context: Partial<Context> | undefined): string {
  return context?.awsRequestId || event?.requestContext?.requestId || randomUUID();
}

/** Starts the request's state (ids, route, logger); answers carry X-Request-Id and X-Correlation-Id. */
export function requestId(): ApiMiddleware {
  return {
    name: 'requestId',
    before: (request) => {
      states.set(request.event, newState(request.event, request.context));
    },
    after: (request) => {
      if (request.response) withIdHeaders(request.response, stateOf(request.event));
    },
  };
}

/**
 * Results are built fresh for each request (envelope.ts, download.ts), so their headers are set in place. A refusal
 * (429) brings its own rate limit headers; any other answer of a limited request gets the count it was given.
 */
function withIdHeaders(result: HttpResult, state: RequestState): void {
  const headers = (result.headers ??= {});
  headers[REQUEST_ID_HEADER] = state.requestId;
  headers[CORRELATION_ID_HEADER] = state.correlationId;
  if (state.rateLimit && result.statusCode !== 429) Object.assign(headers, rateLimitHeaders(state.rateLimit));
}

/** Records the rate limit a request counted against (the build endpoints' budget); its headers go on the answer. */
export function noteRateLimit(event: APIGatewayProxyEvent, status: RateLimitStatus | undefined): void {
  if (status) stateOf(event).rateLimit = status;
}

/**
 * The end of every invocation, answered or failed: on AWS one summary line per request (the local
 * server writes its own), then the invocation's metrics are flushed (EMF on AWS). Registered right
 * after requestId, so on failure it runs once errorMapping has made the answer.
 */
export function observability(): ApiMiddleware {
  const finish = (request: { event: APIGatewayProxyEvent; response?: HttpResult | null }) => {
    const state = stateOf(request.event);
    const d = state.deps;
    if (d?.config.runtime === 'aws' && logEnabled('info', d.config.logLevel)) {
      state.log.info('request', {
        method: request.event.httpMethod,
        path: request.event.path,
        status: request.response?.statusCode,
        ms: Math.round(performance.now() - state.startedAt),
      });
    }
    try {
      d?.metrics?.flush();
    } catch (e) {
      // Losing one invocation's metrics must not fail a request that has already been answered.
      state.log.warn('metrics flush failed', { error: String(e) });
    }
  };
  return { name: 'observability', after: finish, onError: finish };
}

/**
 * Maps whatever was thrown to the envelope; must be registered before loadDeps so it sees everything.
 * A body stream the endpoint had already opened is closed here: the error answer replaces it, and an
 * open file must not wait for the garbage collector.
 */
export function errorMapping(): ApiMiddleware {
  return {
    name: 'errorMapping',
    onError: (request) => {
      const state = stateOf(request.event);
      if (statusOf(request.error) === undefined) state.log.error('unhandled error', request.error);
      const response = request.error instanceof RateLimitedError && routeOf(state)?.path.startsWith('/v2/')
        ? problem(429, request.error.message, refusalHeaders(request.error))
        : errorResult(request.error, state.requestId);
      withIdHeaders(response, state);
      request.response = response;
      state.stream?.destroy();
      state.stream = undefined;
    },
  };
}

function attachDeps(state: RequestState, d: EndpointDeps, context: Context | undefined): void {
  state.deps = d;
  // In Lambda one process runs one invocation at a time, so the process Logger can carry the
  // invocation (function name, request id, cold start). The local server's contexts are made up.
  if (d.config.runtime === 'aws' && context?.awsRequestId) {
    processLogger(d.config.logLevel).addContext(context);
  }
}

/** The process dependencies; synchronous once they are built (every request but the first). */
export function loadDeps(source: DepsSource<EndpointDeps>): ApiMiddleware {
  return {
    name: 'loadDeps',
    before: (request) => {
      const state = stateOf(request.event);
      const ready = source.ready();
      if (ready) {
        attachDeps(state, ready, request.context);
        return undefined;
      }
      return source.get().then((d) => attachDeps(state, d, request.context));
    },
  };
}

const routeByName = new Map<string, Route>(routes.map((route) => [route.name, route]));

function routeOf(state: RequestState): Route | undefined {
  return routeByName.get(state.route);
}

/** The client a request counts against: its source address, or a trusted proxy's X-Forwarded-For. */
export function clientOf(event: APIGatewayProxyEvent, rateLimits: RateLimitConfig): string {
  const forwardedFor = rateLimits.trustedProxies.length > 0 ? headerValue(event.headers, 'X-Forwarded-For') : undefined;
  return clientAddress(event.requestContext?.identity?.sourceIp, forwardedFor, rateLimits.trustedProxies);
}

/**
 * Counts a request of a `read` route against its client's reads per minute (rate-limits.ts: countRead, counted in
 * batches), 429 past the limit. Registered after loadDeps, before anything reads the body, so a refused request costs
 * only the count. The build routes count in their endpoints instead: only the new builds a request queued count. A
 * counter the database cannot update right now does not refuse the read: the limit is a fence, and the read answers
 * for itself.
 */
export function readLimit(): ApiMiddleware {
  const count = async (
    event: APIGatewayProxyEvent, state: RequestState, store: RateLimitCounters, d: EndpointDeps, rateLimits: RateLimitConfig,
  ) => {
    if (d.rateLimitExempt && await d.rateLimitExempt(event)) return;
    try {
      state.rateLimit = await countRead({ store, config: { rateLimits }, log: state.log }, clientOf(event, rateLimits));
    } catch (error) {
      if (error instanceof RateLimitedError) throw error;
      if (!(error instanceof DatabaseUnavailableError)) state.log.error('counting a read failed; it is not limited', error);
    }
  };
  return {
    name: 'readLimit',
    before: (request) => {
      const state = stateOf(request.event);
      const route = routeOf(state);
      // A route without the database (the checksum indexes, redirected to S3 on AWS) has only the WAF fence.
      if (route?.kind !== 'read' || !route.grants.includes('db:read')) return undefined;
      const d = state.deps;
      const rateLimits = d?.config.rateLimits;
      if (!d?.store || !rateLimits?.readRequestsPerMinute) return undefined;
      return count(request.event, state, d.store, d, rateLimits);
    },
  };
}

/**
 * The body's size in bytes. A text body is measured without copying it; a base64 one is decoded
 * (once: the text is kept for jsonBody).
 */
function bodySize(event: APIGatewayProxyEvent, state: RequestState): number {
  if (event.body == null) return 0;
  if (!event.isBase64Encoded) return Buffer.byteLength(event.body, 'utf8');
  const bytes = Buffer.from(event.body, 'base64');
  state.text = bytes.toString('utf8');
  return bytes.length;
}

/** The body as UTF-8 text, as its bytes would decode (a lone surrogate reads as U+FFFD). */
function bodyText(event: APIGatewayProxyEvent, state: RequestState): string {
  if (state.text !== undefined) return state.text;
  const body = event.body;
  if (body == null) return '';
  if (event.isBase64Encoded) return Buffer.from(body, 'base64').toString('utf8');
  const s = body as string & { isWellFormed(): boolean; toWellFormed(): string };
  return s.isWellFormed() ? body : s.toWellFormed();
}

/** 413 when the body is larger than config.maxBodyBytes (API Gateway allows far more). */
export function bodyLimit(): ApiMiddleware {
  return {
    name: 'bodyLimit',
    before: (request) => {
      const state = stateOf(request.event);
      const limit = state.deps!.config.maxBodyBytes;
      if (bodySize(request.event, state) > limit) {
        throw new HttpError(413, `Request body too large (limit ${limit} bytes)`);
      }
    },
  };
}

/**
 * Parses the body as JSON whatever the Content-Type says (the enot client and older scripts do
 * not always set it). An empty body counts as `{}`, so the message names the missing fields.
 */
export function jsonBody(): ApiMiddleware {
  return {
    name: 'jsonBody',
    before: (request) => {
      const state = stateOf(request.event);
      const text = bodyText(request.event, state);
      if (text.trim() === '') {
        state.json = {};
        return;
      }
      try {
        state.json = JSON.parse(text);
      } catch (e) {
        throw new ValidationError(`Malformed JSON body: ${(e as Error).message}`);
      }
    },
  };
}

export interface Schemas {
  body?: z.ZodType;
  query?: z.ZodType;
  path?: z.ZodType;
}

// What an absent query string or path parameter map validates as; zod never writes to its input.
const NOTHING: Readonly<Record<string, string>> = Object.freeze({});

/**
 * Checks every path and query parameter, named by a schema or not, for text a schema must never see (NUL,
 * control characters, invalid bytes); then validates body, query and path parameters. The first failing part
 * gives a 400 naming its fields.
 */
export function validate(schemas: Schemas): ApiMiddleware {
  // Which parts this endpoint checks, in the order they are reported: decided once, not per request.
  const parts = (['path', 'query', 'body'] as const)
    .filter((source) => schemas[source])
    .map((source) => ({ source, schema: schemas[source]! }));
  const inputOf = (source: Source, event: APIGatewayProxyEvent, state: RequestState): unknown => {
    if (source === 'body') return state.json;
    if (source === 'query') return event.queryStringParameters ?? NOTHING;
    return event.pathParameters ?? NOTHING;
  };
  return {
    name: 'validate',
    before: (request) => {
      const event = request.event;
      const invalid = invalidParameter('path', event.pathParameters)
        ?? invalidParameter('query', event.multiValueQueryStringParameters)
        ?? invalidParameter('query', event.queryStringParameters);
      if (invalid) throw new ValidationError(invalid);
      const state = stateOf(event);
      for (const { source, schema } of parts) {
        const parsed = parseWith(schema, source, inputOf(source, request.event, state));
        if (!parsed.ok) throw new ValidationError(parsed.message);
        state[source] = parsed.data;
      }
    },
  };
}

/**
 * In Lambda a stream cannot be returned through API Gateway's proxy integration: buffer it into a
 * base64 body (S3 downloads normally redirect; this is the fallback).
 */
export function bufferStreamOnAws(): ApiMiddleware {
  const buffer = async (request: { response?: HttpResult | null }, response: HttpResult & { stream: Readable }, state: RequestState) => {
    const chunks: Buffer[] = [];
    for await (const chunk of response.stream) chunks.push(Buffer.from(chunk as Uint8Array));
    const { stream: _buffered, ...rest } = response;
    state.stream = undefined;
    request.response = { ...rest, body: Buffer.concat(chunks).toString('base64'), isBase64Encoded: true };
  };
  return {
    name: 'bufferStreamOnAws',
    after: (request) => {
      const response = request.response;
      if (!response?.stream) return undefined;
      const state = stateOf(request.event);
      if (state.deps?.config.runtime !== 'aws') return undefined;
      return buffer(request, response as HttpResult & { stream: Readable }, state);
    },
  };
}
