// The endpoint factory: every handler in functions/api/ is `endpoint(schemas, fn)` on the same middy stack.
import middy from '@middy/core';
import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import type { z } from 'zod';
import type { Deps } from '#functions/wiring.js';
import type { HttpResult } from './envelope.js';
import type { RequestLogger } from './log.js';
import {
  bodyLimit, bufferStreamOnAws, errorMapping, jsonBody, loadDeps, observability, requestId, stateOf, validate,
  type ApiMiddleware, type Schemas,
} from './middlewares.js';

type Parsed<S extends Schemas, K extends keyof Schemas> = S[K] extends z.ZodType ? z.output<S[K]> : undefined;

export interface EndpointInput<S extends Schemas> {
  body: Parsed<S, 'body'>;
  query: Parsed<S, 'query'>;
  path: Parsed<S, 'path'>;
  deps: Deps;
  requestId: string;
  /** The caller's X-Correlation-Id when sane, else the request id. */
  correlationId: string;
  /** Logs with the correlation id and route on every line. */
  log: RequestLogger;
  event: APIGatewayProxyEvent;
}

/** A Lambda handler for API Gateway REST proxy events. */
export type ApiHandler = (event: APIGatewayProxyEvent, context: Context) => Promise<HttpResult>;

/**
 * Wraps an endpoint function in the shared stack. Order matters: the request id (and correlation
 * id, route, logger) comes first so every later failure (even loading dependencies) is answered and
 * logged with it; observability next, so it sees the final answer and flushes metrics last.
 */
export function endpoint<S extends Schemas>(
  schemas: S,
  fn: (input: EndpointInput<S>) => Promise<HttpResult>,
): ApiHandler {
  const stack: ApiMiddleware[] = [requestId(), observability(), errorMapping(), loadDeps(), bodyLimit()];
  if (schemas.body) stack.push(jsonBody());
  stack.push(validate(schemas), bufferStreamOnAws());
  const handler = middy<APIGatewayProxyEvent, HttpResult, Error, Context>()
    .use(stack)
    .handler(async (event: APIGatewayProxyEvent) => {
      const state = stateOf(event);
      const result = await fn({
        body: state.body as Parsed<S, 'body'>,
        query: state.query as Parsed<S, 'query'>,
        path: state.path as Parsed<S, 'path'>,
        deps: state.deps!,
        requestId: state.requestId,
        correlationId: state.correlationId,
        log: state.log,
        event,
      });
      // Remembered so that an answer replaced later (an error after this point) still closes it.
      if (result?.stream) state.stream = result.stream;
      return result;
    });
  return (event, context) => handler(event, context);
}
