// Our own small middy middlewares: request state and observability, dependencies, body limit, JSON body,
// validation, errors, streams. They run on every request, so each does its work once and synchronously
// when it can (middy awaits whatever they return).
import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { z } from 'zod';
import { ValidationError } from '#core/errors.js';
import type { HttpResult } from './envelope.js';
import { errorResult, HttpError, statusOf } from './errors.js';
import { logEnabled, processLogger, requestLogger, type LogLevel, type RequestLogger } from '#functions/log.js';
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
  config: { runtime: 'aws' | 'local'; logLevel: LogLevel; maxBodyBytes: number };
  metrics: { flush(): void };
}

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

/** Results are built fresh for each request (envelope.ts, download.ts), so their headers are set in place. */
function withIdHeaders(result: HttpResult, state: RequestState): void {
  const headers = (result.headers ??= {});
  headers[REQUEST_ID_HEADER] = state.requestId;
  headers[CORRELATION_ID_HEADER] = state.correlationId;
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
      const response = errorResult(request.error, state.requestId);
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
