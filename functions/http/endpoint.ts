// The endpoint factory: every handler in functions/api/ is `endpoint(schemas, fn)` on the same middy stack, bound
// to the process dependencies by functions/service-endpoint.ts (this layer never builds them itself).
import middy from '@middy/core';
import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import type { z } from 'zod';
import type { HttpResult } from './envelope.js';
import type { RequestLogger } from '#functions/log.js';
import {
  bodyLimit, bufferStreamOnAws, errorMapping, jsonBody, loadDeps, observability, readLimit, requestId, stateOf, validate,
  type ApiMiddleware, type DepsSource, type EndpointDeps, type Schemas,
} from './middlewares.js';

type Parsed<S extends Schemas, K extends keyof Schemas> = S[K] extends z.ZodType ? z.output<S[K]> : undefined;

export interface EndpointInput<S extends Schemas, D extends EndpointDeps> {
  body: Parsed<S, 'body'>;
  query: Parsed<S, 'query'>;
  path: Parsed<S, 'path'>;
  deps: D;
  requestId: string;
  /** The caller's X-Correlation-Id when sane, else the request id. */
  correlationId: string;
  /** Logs with the correlation id and route on every line. */
  log: RequestLogger;
  event: APIGatewayProxyEvent;
}

/** A Lambda handler for API Gateway REST proxy events. */
export type ApiHandler = (event: APIGatewayProxyEvent, context: Context) => Promise<HttpResult>;

/** `endpoint(schemas, fn)` over one source of dependencies. */
export type EndpointFactory<D extends EndpointDeps> = <S extends Schemas>(
  schemas: S,
  fn: (input: EndpointInput<S, D>) => Promise<HttpResult>,
) => ApiHandler;

/**
 * The endpoint factory for dependencies from `source`. Each endpoint wraps its function in the shared stack.
 * Order matters: the request id (and correlation id, route, logger) comes first so every later failure (even
 * loading dependencies) is answered and logged with it; observability next, so it sees the final answer and
 * flushes metrics last. The read limit comes before the body is read, so a refused read costs only its count.
 */
export function endpointFactory<D extends EndpointDeps>(source: DepsSource<D>): EndpointFactory<D> {
  return (schemas, fn) => {
    const stack: ApiMiddleware[] = [requestId(), observability(), errorMapping(), loadDeps(source), readLimit(), bodyLimit()];
    if (schemas.body) stack.push(jsonBody());
    stack.push(validate(schemas), bufferStreamOnAws());
    const handler = middy<APIGatewayProxyEvent, HttpResult, Error, Context>()
      .use(stack)
      .handler(async (event: APIGatewayProxyEvent) => {
        const state = stateOf(event);
        const result = await fn({
          body: state.body as Parsed<typeof schemas, 'body'>,
          query: state.query as Parsed<typeof schemas, 'query'>,
          path: state.path as Parsed<typeof schemas, 'path'>,
          deps: state.deps as D,
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
  };
}
