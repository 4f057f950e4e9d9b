// A Node HTTP request as API Gateway hands it to a Lambda: its target, headers and body read into a proxy event and a context.
import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import type { IncomingMessage } from 'node:http';
import type { Route } from '#functions/routes.js';
import { HttpError } from '#http/errors.js';
import { decodeQueryComponent } from '#http/percent-decoding.js';

/**
 * Request targets made only of these characters mean to the WHATWG URL parser exactly what they say
 * (no escapes to normalize, no `..`), so the common case is split by hand; anything else goes through
 * `new URL`, behind a fixed origin so that nothing in the target can name a host.
 */
const PLAIN_TARGET = /^\/(?!\/)[A-Za-z0-9\-._~!$&'()*+,;=:@/]*(?:\?[\x21\x22\x24-\x7e]*)?$/;
const DOT_SEGMENT = /(?:^|\/)\.\.?(?:[/?]|$)/;

export interface Target {
  pathname: string;
  /** The query string without its `?`; empty when there is none. */
  search: string;
}

const ABSOLUTE_FORM = /^https?:\/\//i;
const ORIGIN = 'http://localhost';

/**
 * The path and query of a request target (`req.url`). An origin-form target (`/path?query`) is a path however
 * it starts: `//a/x` is the path `//a/x` (it matches no route), never the host `a`. An absolute-form target
 * (`http://host/path`, which RFC 9112 says a server must accept) is routed by its path; its host, like the Host
 * header, is ignored. Anything else (`*`, `x`, `ftp://...`) is a 400.
 */
export function parseTarget(raw: string): Target {
  if (PLAIN_TARGET.test(raw) && !DOT_SEGMENT.test(raw)) {
    const q = raw.indexOf('?');
    return q < 0 ? { pathname: raw, search: '' } : { pathname: raw.slice(0, q), search: raw.slice(q + 1) };
  }
  let url: URL;
  try {
    if (raw.startsWith('/')) url = new URL(ORIGIN + raw);
    else if (ABSOLUTE_FORM.test(raw)) url = new URL(raw);
    else throw new Error('not a path');
  } catch {
    throw new HttpError(400, 'Bad request: the request target must be a path such as /search?name=x');
  }
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

/** The client sent nothing of its body for the idle limit; the answer is a 408 and the connection closes. */
export class BodyIdle extends HttpError {
  constructor(idleS: number) {
    super(408, `Request timeout: no part of the body arrived for ${idleS} s`);
    this.name = 'BodyIdle';
  }
}

/** The client closed its connection before its body was complete: nobody is left to answer. */
export class ClientGone extends Error {
  constructor() {
    super('the client closed the connection before its request body was complete');
    this.name = 'ClientGone';
  }
}

const EMPTY = Buffer.alloc(0);

export interface BodyLimits {
  /** Bytes; past it, BodyTooLarge. */
  maxBytes: number;
  /** Seconds without a byte of the body; past it, BodyIdle. */
  idleS: number;
}

/**
 * Reads the body, refusing as soon as it passes `limits.maxBytes` bytes or pauses longer than `limits.idleS`
 * (the whole request's limit is node's requestTimeout). A request with neither Content-Length nor
 * Transfer-Encoding has no body (HTTP/1.1), so there is nothing to wait for. A client that leaves midway is
 * ClientGone, not a failure of the server.
 */
export function readBody(req: IncomingMessage, headers: Record<string, string>, limits: BodyLimits): Buffer | Promise<Buffer> {
  const length = headers['content-length'];
  if (length === undefined && headers['transfer-encoding'] === undefined) return EMPTY;
  const limit = limits.maxBytes;
  const declared = Number(length);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(new BodyTooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(idle);
      outcome();
    };
    const idleMs = limits.idleS * 1000;
    const onIdle = () => settle(() => reject(new BodyIdle(limits.idleS)));
    const idle = setTimeout(onIdle, idleMs);
    req.on('data', (chunk: Buffer) => {
      // Past the limit the rest is read and dropped (the answer is a 413 either way).
      if (settled) return;
      idle.refresh();
      size += chunk.length;
      if (size > limit) {
        settle(() => reject(new BodyTooLarge()));
        return;
      }
      chunks.push(chunk);
    });
    // Most bodies arrive in one chunk, which is used as is rather than copied.
    req.on('end', () => settle(() => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size))));
    // 'error' (aborted) and 'close' before 'end' both mean the client left; node may emit either or both.
    req.on('error', () => settle(() => reject(new ClientGone())));
    req.on('close', () => settle(() => reject(new ClientGone())));
  });
}

/**
 * The decoded pairs of a query string, as URLSearchParams gives them, except that a malformed escape becomes
 * U+FFFD instead of staying as it was: the parameter check then refuses it (400) rather than a `%zz` reaching
 * a schema as if the client had meant it.
 */
function queryPairs(search: string): [string, string][] {
  const pairs: [string, string][] = [];
  for (const part of search.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? '' : part.slice(eq + 1);
    pairs.push([decodeQueryComponent(name), decodeQueryComponent(value)]);
  }
  return pairs;
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
    for (const [k, v] of queryPairs(target.search)) {
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
