// The local HTTP server: mounts every route of functions/routes.ts on node:http, calling the same Lambda handlers.
import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { Route } from '#functions/routes.js';
import { useDeps, type Deps } from '#functions/wiring.js';
import type { ApiHandler } from '#http/endpoint.js';
import { fail, type HttpResult } from '#http/envelope.js';
import { errorResult } from '#http/errors.js';
import { logEnabled, requestLogger, type LogLevel } from '#http/log.js';
import { correlationIdOf, CORRELATION_ID_HEADER, REQUEST_ID_HEADER } from '#http/observability.js';
import { matchRoute } from '#http/router.js';

export interface LocalServerOptions {
  deps: Deps;
  port: number;
  host?: string;
}

export interface LocalServer {
  url: string;
  port: number;
  /** Stops accepting connections and resolves once in-flight requests have finished. */
  close(): Promise<void>;
  /** Requests being answered right now. */
  inFlight(): number;
  /** Drops every open connection (the end of a bounded shutdown wait). */
  closeAllConnections(): void;
}

// Handler modules are imported once per process, on first use, like a warm Lambda container;
// once loaded, a request finds its handler without waiting on a promise.
const handlerModules = new Map<string, Promise<ApiHandler>>();
const loadedHandlers = new Map<string, ApiHandler>();

function loadHandler(route: Route): ApiHandler | Promise<ApiHandler> {
  const ready = loadedHandlers.get(route.entry);
  if (ready) return ready;
  let loading = handlerModules.get(route.entry);
  if (!loading) {
    const url = new URL(`../${route.entry}`, import.meta.url);
    loading = import(url.href).then((m: { handler?: ApiHandler }) => {
      if (typeof m.handler !== 'function') throw new Error(`${route.entry} exports no handler`);
      loadedHandlers.set(route.entry, m.handler);
      return m.handler;
    });
    handlerModules.set(route.entry, loading);
    loading.catch(() => handlerModules.delete(route.entry));
  }
  return loading;
}

// --- the request ---

/**
 * Request targets made only of these characters mean to the WHATWG URL parser exactly what they say
 * (no escapes to normalize, no `..`, no `//host`), so the common case is split by hand; anything else
 * goes through `new URL`, as every request used to.
 */
const PLAIN_TARGET = /^\/(?!\/)[A-Za-z0-9\-._~!$&'()*+,;=:@/]*(?:\?[\x21\x22\x24-\x7e]*)?$/;
const DOT_SEGMENT = /(?:^|\/)\.\.?(?:[/?]|$)/;

interface Target {
  pathname: string;
  /** The query string without its `?`; empty when there is none. */
  search: string;
}

function parseTarget(raw: string): Target {
  if (PLAIN_TARGET.test(raw) && !DOT_SEGMENT.test(raw)) {
    const q = raw.indexOf('?');
    return q < 0 ? { pathname: raw, search: '' } : { pathname: raw.slice(0, q), search: raw.slice(q + 1) };
  }
  const url = new URL(raw, 'http://localhost');
  return { pathname: url.pathname, search: url.search.slice(1) };
}

interface HeaderMaps {
  /** Lower-cased names; a repeated header's values joined with ',' (as API Gateway does). */
  headers: Record<string, string>;
  multiValueHeaders: Record<string, string[]>;
}

function headerMaps(rawHeaders: string[]): HeaderMaps {
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

class BodyTooLarge extends Error {}

const EMPTY = Buffer.alloc(0);

/**
 * Reads the body, refusing as soon as it passes `limit` bytes. A request with neither
 * Content-Length nor Transfer-Encoding has no body (HTTP/1.1), so there is nothing to wait for.
 */
function readBody(req: IncomingMessage, headers: Record<string, string>, limit: number): Buffer | Promise<Buffer> {
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

function toEvent(
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

function lambdaContext(route: Route, requestId: string): Context {
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

// --- the answer ---

interface Outgoing {
  headers: Record<string, string | string[]>;
  /** The Content-Length the result declares, when it does. */
  contentLength?: string;
}

/** The result's headers and multi-value headers in one object, with the request's ids set. */
function outgoingHeaders(result: HttpResult, requestId: string, correlationId: string): Outgoing {
  const headers: Record<string, string | string[]> = {};
  let contentLength: string | undefined;
  const single = result.headers;
  if (single) {
    for (const name in single) {
      if (!Object.hasOwn(single, name)) continue;
      const value = String(single[name]);
      headers[name] = value;
      if (isContentLength(name)) contentLength = value;
    }
  }
  headers[REQUEST_ID_HEADER] = requestId;
  headers[CORRELATION_ID_HEADER] = correlationId;
  const multi = result.multiValueHeaders;
  if (multi) {
    for (const name in multi) {
      if (!Object.hasOwn(multi, name)) continue;
      headers[name] = multi[name].map(String);
      if (isContentLength(name)) contentLength = headers[name].join(',');
    }
  }
  return { headers, contentLength };
}

function isContentLength(name: string): boolean {
  return name.length === 14 && name.toLowerCase() === 'content-length';
}

/**
 * The whole body when `stream` already holds all of it in memory (a small file read at once), else
 * undefined. Such a body goes out in one write, with no piping.
 */
function wholeBody(stream: Readable, contentLength: string | undefined): Buffer | undefined {
  if (contentLength === undefined || stream.readableFlowing || stream.destroyed) return undefined;
  // Only a byte stream hands its buffered data back as one Buffer.
  if (stream.readableObjectMode || stream.readableEncoding !== null) return undefined;
  const size = Number(contentLength);
  if (!Number.isSafeInteger(size) || stream.readableLength !== size) return undefined;
  if (size === 0) return EMPTY;
  const chunk: unknown = stream.read();
  return Buffer.isBuffer(chunk) && chunk.length === size ? chunk : undefined;
}

/** Settles an answer once its response closes or its connection does, whichever comes first. */
class CloseWatch {
  private readonly listener = this.closed.bind(this);
  private settled = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly socket: Socket,
    private readonly stream: Readable | undefined,
    private readonly resolve: () => void,
  ) {
    res.once('close', this.listener);
    watchersOf(socket).add(this);
  }

  closed(): void {
    if (this.settled) return;
    this.settled = true;
    this.res.off('close', this.listener);
    watching.get(this.socket)?.delete(this);
    // After a complete answer the stream has ended already, and this does nothing.
    this.stream?.destroy();
    this.resolve();
  }
}

// The answers still open on each connection. One 'close' listener per connection, however many
// requests a client pipelines on it.
const watching = new WeakMap<Socket, Set<CloseWatch>>();

function watchersOf(socket: Socket): Set<CloseWatch> {
  let watchers = watching.get(socket);
  if (!watchers) {
    const created = new Set<CloseWatch>();
    socket.once('close', () => {
      for (const watch of created) watch.closed();
    });
    watching.set(socket, created);
    watchers = created;
  }
  return watchers;
}

/**
 * Writes a handler's result; resolves once the response is closed (sent, or the client gone).
 * A body stream is closed on every path: sent whole, piped to its end, the client leaving before or
 * during the answer, or a failure to write.
 *
 * The connection is watched as well as the response: on a keep-alive connection an answer can wait
 * behind the previous one, and if the client goes away meanwhile, node never closes (nor destroys)
 * that waiting response. Piping into it would wait forever, holding the file open.
 */
function send(
  req: IncomingMessage, res: ServerResponse, result: HttpResult, requestId: string, correlationId: string,
): Promise<void> {
  const stream = result.stream;
  const socket = req.socket;
  if (res.destroyed || socket.destroyed) {
    stream?.destroy();
    return Promise.resolve();
  }
  return new Promise<void>((resolve) => {
    new CloseWatch(res, socket, stream, resolve);
    try {
      const { headers, contentLength } = outgoingHeaders(result, requestId, correlationId);
      if (!stream) {
        // A known length instead of chunked encoding, as API Gateway answers.
        const body = result.body ?? '';
        if (result.isBase64Encoded) {
          const bytes = Buffer.from(body, 'base64');
          if (contentLength === undefined) headers['Content-Length'] = String(bytes.length);
          res.writeHead(result.statusCode, headers);
          res.end(bytes);
        } else {
          if (contentLength === undefined) headers['Content-Length'] = String(Buffer.byteLength(body, 'utf8'));
          res.writeHead(result.statusCode, headers);
          // A string goes out in the same write as the head.
          res.end(body, 'utf8');
        }
        return;
      }
      res.writeHead(result.statusCode, headers);
      const whole = wholeBody(stream, contentLength);
      if (whole) {
        res.end(whole);
        stream.destroy();
        return;
      }
      stream.on('error', () => res.destroy());
      stream.pipe(res);
    } catch (e) {
      stream?.destroy();
      if (!res.headersSent) {
        // The result could not be written as it was (an invalid header): answer the 500 instead.
        const fallback = errorResult(e, requestId);
        const { headers } = outgoingHeaders(fallback, requestId, correlationId);
        headers['Content-Length'] = String(Buffer.byteLength(fallback.body, 'utf8'));
        res.writeHead(fallback.statusCode, headers);
        res.end(fallback.body, 'utf8');
      } else {
        res.destroy();
      }
    }
  });
}

/**
 * Starts the local API on `port` (0 = any free port), answering with the same handlers Lambda
 * runs, behind the same route table. Installs `deps` as the process-wide dependencies.
 */
export async function startLocalServer(options: LocalServerOptions): Promise<LocalServer> {
  const { deps } = options;
  useDeps(deps);
  const logLevel: LogLevel = deps.config.logLevel;
  const levelOf = () => logLevel;
  const maxBodyBytes = deps.config.maxBodyBytes;
  let inFlight = 0;
  let drained: (() => void) | undefined;

  async function answer(
    req: IncomingMessage, res: ServerResponse, requestId: string, target: Target, maps: HeaderMaps,
    match: ReturnType<typeof matchRoute>,
  ): Promise<HttpResult> {
    const method = req.method ?? 'GET';
    if (match.kind === 'not-found') {
      req.resume();
      return fail(404, `No route for ${method} ${target.pathname}`);
    }
    if (match.kind === 'wrong-method') {
      req.resume();
      return fail(405, `Method ${method} not allowed on ${target.pathname}`, { Allow: match.allow.join(', ') });
    }
    let body: Buffer;
    try {
      const read = readBody(req, maps.headers, maxBodyBytes);
      body = read instanceof Buffer ? read : await read;
    } catch (e) {
      if (!(e instanceof BodyTooLarge)) throw e;
      // Stop buffering; what the client still sends is discarded, and the connection closes after the answer.
      req.resume();
      res.shouldKeepAlive = false;
      return fail(413, `Request body too large (limit ${maxBodyBytes} bytes)`);
    }
    const loading = loadHandler(match.route);
    const handler = typeof loading === 'function' ? loading : await loading;
    const event = toEvent(req, target, maps, match.route, match.pathParameters, body, requestId);
    return handler(event, lambdaContext(match.route, requestId));
  }

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const requestId = randomUUID();
    const maps = headerMaps(req.rawHeaders);
    // The same correlation id and route the handler's own lines carry (it reads the same header).
    const correlationId = correlationIdOf(maps.headers, requestId);
    let route = 'unknown';
    let result: HttpResult;
    try {
      const target = parseTarget(req.url ?? '/');
      const match = matchRoute(req.method ?? 'GET', target.pathname);
      if (match.kind === 'found') route = match.route.name;
      result = await answer(req, res, requestId, target, maps, match);
    } catch (e) {
      requestLogger({ correlation_id: correlationId, route }, levelOf).error('unhandled error', e);
      result = errorResult(e, requestId);
    }
    await send(req, res, result, requestId, correlationId);
    if (logEnabled('info', logLevel)) {
      requestLogger({ correlation_id: correlationId, route }, levelOf).info('request', {
        requestId,
        method: req.method,
        path: (req.url ?? '/').split('?')[0],
        status: result.statusCode,
        ms: Math.round(performance.now() - started),
      });
    }
  }

  const server = createServer((req, res) => {
    inFlight++;
    serve(req, res)
      .catch(() => res.destroy())
      .finally(() => {
        inFlight--;
        if (inFlight === 0) drained?.();
      });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = options.host ?? '127.0.0.1';
  const urlHost = host.includes(':') ? `[${host}]` : host;

  return {
    url: `http://${urlHost}:${port}`,
    port,
    inFlight: () => inFlight,
    closeAllConnections: () => server.closeAllConnections(),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Keep-alive connections with no request in flight would otherwise hold close() open.
        server.closeIdleConnections();
        if (inFlight === 0) return;
        drained = () => server.closeIdleConnections();
      }),
  };
}
