// A Node HTTP request as API Gateway hands it to a Lambda: its target, headers and body read into a proxy event and a context.
import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import type { IncomingMessage } from 'node:http';
import type { Route } from '#functions/routes.js';

/**
 * Request targets made only of these characters mean to the WHATWG URL parser exactly what they say
 * (no escapes to normalize, no `..`, no `//host`), so the common case is split by hand; anything else
 * goes through `new URL`, as every request used to.
 */
const PLAIN_TARGET = /^\/(?!\/)[A-Za-z0-9\-._~!$&'()*+,;=:@/]*(?:\?[\x21\x22\x24-\x7e]*)?$/;
const DOT_SEGMENT = /(?:^|\/)\.\.?(?:[/?]|$)/;

export interface Target {
  pathname: string;
  /** The query string without its `?`; empty when there is none. */
  search: string;
}

/** The path and query of a request target (`req.url`). */
export function parseTarget(raw: string): Target {
  if (PLAIN_TARGET.test(raw) && !DOT_SEGMENT.test(raw)) {
    const q = raw.indexOf('?');
    return q < 0 ? { pathname: raw, search: '' } : { pathname: raw.slice(0, q), search: raw.slice(q + 1) };
  }
  const url = new URL(raw, 'http://localhost');
  return { pathname: url.pathname, search: url.search.slice(1) };
}

export interface HeaderMaps {
  /** Lower-cased names; a repeated header's values joined with ',' (as API Gateway does). */
  headers: Record<string, string>;
  multiValueHeaders: Record<string, string[]>;
}

/** The request's headers in API Gateway's two maps. */
export function headerMaps(rawHeaders: string[]): HeaderMaps {
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i].toLowerCase();
    const value = rawHeaders[i + 1];
    const values = multiValueHeaders[name];
    if (values === undefined) {
      multiValueHeaders[name] = [value];
      headers[name] = value;
    } else {
      values.push(value);
      headers[name] = values.join(',');
    }
  }
  return { headers, multiValueHeaders };
}

/** The request's body passed the server's limit; the answer is a 413. */
export class BodyTooLarge extends Error {}

const EMPTY = Buffer.alloc(0);

/**
 * Reads the body, refusing as soon as it passes `limit` bytes. A request with neither
 * Content-Length nor Transfer-Encoding has no body (HTTP/1.1), so there is nothing to wait for.
 */
export function readBody(req: IncomingMessage, headers: Record<string, string>, limit: number): Buffer | Promise<Buffer> {
  const length = headers['content-length'];
  if (length === undefined && headers['transfer-encoding'] === undefined) return EMPTY;
  const declared = Number(length);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(new BodyTooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      // Past the limit the rest is read and dropped (the answer is a 413 either way).
      if (size > limit) return;
      size += chunk.length;
      if (size > limit) {
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(chunk);
    });
    // Most bodies arrive in one chunk, which is used as is rather than copied.
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size)));
    req.on('error', reject);
  });
}

/** The API Gateway proxy event a Lambda behind `route` would be given for this request. */
export function toEvent(
  req: IncomingMessage, target: Target, maps: HeaderMaps, route: Route, pathParameters: Record<string, string>,
  body: Buffer, requestId: string,
): APIGatewayProxyEvent {
  // API Gateway's single-value map keeps the last value of a repeated parameter.
  let query: Record<string, string> | null = null;
  let multiQuery: Record<string, string[]> | null = null;
  if (target.search !== '') {
    for (const [k, v] of new URLSearchParams(target.search)) {
      query ??= {};
      multiQuery ??= {};
      (multiQuery[k] ??= []).push(v);
      query[k] = v;
    }
  }
  const method = req.method ?? 'GET';
  return {
    httpMethod: method,
    path: target.pathname,
    resource: route.path,
    pathParameters: Object.keys(pathParameters).length > 0 ? pathParameters : null,
    queryStringParameters: query,
    multiValueQueryStringParameters: multiQuery,
    headers: maps.headers,
    multiValueHeaders: maps.multiValueHeaders,
    body: body.length > 0 ? body.toString('utf8') : null,
    isBase64Encoded: false,
    stageVariables: null,
    requestContext: {
      accountId: 'local',
      apiId: 'local',
      authorizer: null,
      protocol: `HTTP/${req.httpVersion}`,
      httpMethod: method,
      identity: { sourceIp: req.socket.remoteAddress ?? '' } as APIGatewayProxyEvent['requestContext']['identity'],
      path: target.pathname,
      stage: 'local',
      requestId,
      requestTimeEpoch: Date.now(),
      resourceId: route.name,
      resourcePath: route.path,
    },
  };
}

/** The Lambda context of one invocation of `route`'s handler. */
export function lambdaContext(route: Route, requestId: string): Context {
  return {
    awsRequestId: requestId,
    functionName: route.name,
    functionVersion: '$LATEST',
    invokedFunctionArn: `local:${route.name}`,
    memoryLimitInMB: '0',
    logGroupName: 'local',
    logStreamName: 'local',
    callbackWaitsForEmptyEventLoop: false,
    // No getRemainingTimeInMillis: there is no Lambda deadline locally, and middy then sets no early timeout.
  } as unknown as Context;
}
