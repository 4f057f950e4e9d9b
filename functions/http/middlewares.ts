// Our own small middy middlewares: request id, dependencies, body limit, JSON body, validation, errors, streams.
import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import { ValidationError } from '#core/errors.js';
import { deps, type Deps } from '#functions/wiring.js';
import type { HttpResult } from './envelope.js';
import { errorResult, HttpError } from './errors.js';
import { parseWith, type Source } from './schemas.js';

/** What the middlewares learn about one request, handed to the endpoint function. */
export interface RequestState {
  requestId: string;
  deps?: Deps;
  /** The JSON body, once parsed. */
  json?: unknown;
  body?: unknown;
  query?: unknown;
  path?: unknown;
}

export type ApiMiddleware = MiddlewareObj<APIGatewayProxyEvent, HttpResult, Error, Context>;

// Keyed by the event object: middy hands the handler only (event, context), and one event is one request.
const states = new WeakMap<object, RequestState>();

export function stateOf(event: APIGatewayProxyEvent): RequestState {
  let state = states.get(event);
  if (!state) {
    state = { requestId: requestIdOf(event, undefined) };
    states.set(event, state);
  }
  return state;
}

/** The Lambda request id, else API Gateway's, else a fresh one (direct invocations in tests). */
export function requestIdOf(event: Partial<APIGatewayProxyEvent> | undefined, context: Partial<Context> | undefined): string {
  return context?.awsRequestId || event?.requestContext?.requestId || randomUUID();
}

export function requestId(): ApiMiddleware {
  return {
    name: 'requestId',
    before: (request) => {
      states.set(request.event, { requestId: requestIdOf(request.event, request.context) });
    },
    after: (request) => {
      if (request.response) withRequestIdHeader(request.response, stateOf(request.event).requestId);
    },
  };
}

function withRequestIdHeader(result: HttpResult, id: string): void {
  result.headers = { ...result.headers, 'X-Request-Id': id };
}

/** Maps whatever was thrown to the envelope; must be registered right after requestId so it sees everything. */
export function errorMapping(): ApiMiddleware {
  return {
    name: 'errorMapping',
    onError: (request) => {
      const state = stateOf(request.event);
      const response = errorResult(request.error, state.requestId, state.deps?.config.logLevel);
      withRequestIdHeader(response, state.requestId);
      request.response = response;
    },
  };
}

export function loadDeps(): ApiMiddleware {
  return {
    name: 'loadDeps',
    before: async (request) => {
      stateOf(request.event).deps = await deps();
    },
  };
}

function rawBody(event: APIGatewayProxyEvent): Buffer {
  if (event.body == null) return Buffer.alloc(0);
  return Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8');
}

/** 413 when the body is larger than config.maxBodyBytes (API Gateway allows far more). */
export function bodyLimit(): ApiMiddleware {
  return {
    name: 'bodyLimit',
    before: (request) => {
      const limit = stateOf(request.event).deps!.config.maxBodyBytes;
      if (rawBody(request.event).length > limit) {
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
      const text = rawBody(request.event).toString('utf8');
      const state = stateOf(request.event);
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

/** Validates body, query and path parameters; the first failing part gives a 400 naming its fields. */
export function validate(schemas: Schemas): ApiMiddleware {
  return {
    name: 'validate',
    before: (request) => {
      const state = stateOf(request.event);
      const inputs: Record<Source, unknown> = {
        body: state.json,
        query: request.event.queryStringParameters ?? {},
        path: request.event.pathParameters ?? {},
      };
      for (const source of ['path', 'query', 'body'] as const) {
        const schema = schemas[source];
        if (!schema) continue;
        const parsed = parseWith(schema, source, inputs[source]);
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
  return {
    name: 'bufferStreamOnAws',
    after: async (request) => {
      const response = request.response;
      if (!response?.stream) return;
      if (stateOf(request.event).deps?.config.runtime !== 'aws') return;
      const chunks: Buffer[] = [];
      for await (const chunk of response.stream) chunks.push(Buffer.from(chunk as Uint8Array));
      const { stream: _buffered, ...rest } = response;
      request.response = { ...rest, body: Buffer.concat(chunks).toString('base64'), isBase64Encoded: true };
    },
  };
}
