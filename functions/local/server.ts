// The local HTTP server: mounts every route of functions/routes.ts on node:http, calling the same Lambda handlers.
import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import type { Route } from '#functions/routes.js';
import { useDeps, type Deps } from '#functions/wiring.js';
import type { ApiHandler } from '#http/endpoint.js';
import { fail, type HttpResult } from '#http/envelope.js';
import { errorResult } from '#http/errors.js';
import { requestLogger } from '#http/log.js';
import { correlationIdOf, CORRELATION_ID_HEADER, REQUEST_ID_HEADER, routeNameOf } from '#http/observability.js';
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

// Handler modules are imported once per process, on first use, like a warm Lambda container.
const handlerModules = new Map<string, Promise<ApiHandler>>();

function loadHandler(route: Route): Promise<ApiHandler> {
  let loaded = handlerModules.get(route.entry);
  if (!loaded) {
    const url = new URL(`../${route.entry}`, import.meta.url);
    loaded = import(url.href).then((m: { handler?: ApiHandler }) => {
      if (typeof m.handler !== 'function') throw new Error(`${route.entry} exports no handler`);
      return m.handler;
    });
    handlerModules.set(route.entry, loaded);
    loaded.catch(() => handlerModules.delete(route.entry));
  }
  return loaded;
}

class BodyTooLarge extends Error {}

/** Reads the body, refusing as soon as it passes `limit` bytes. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(new BodyTooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function toEvent(
  req: IncomingMessage, url: URL, route: Route, pathParameters: Record<string, string>, body: Buffer, requestId: string,
): APIGatewayProxyEvent {
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i].toLowerCase();
    (multiValueHeaders[name] ??= []).push(req.rawHeaders[i + 1]);
    headers[name] = multiValueHeaders[name].join(',');
  }
  const multiQuery: Record<string, string[]> = {};
  for (const [k, v] of url.searchParams) (multiQuery[k] ??= []).push(v);
  // API Gateway's single-value map keeps the last value of a repeated parameter.
  const query = Object.fromEntries(Object.entries(multiQuery).map(([k, v]) => [k, v[v.length - 1]]));
  const hasQuery = Object.keys(query).length > 0;
  const now = Date.now();
  return {
    httpMethod: req.method ?? 'GET',
    path: url.pathname,
    resource: route.path,
    pathParameters: Object.keys(pathParameters).length > 0 ? pathParameters : null,
    queryStringParameters: hasQuery ? query : null,
    multiValueQueryStringParameters: hasQuery ? multiQuery : null,
    headers,
    multiValueHeaders,
    body: body.length > 0 ? body.toString('utf8') : null,
    isBase64Encoded: false,
    stageVariables: null,
    requestContext: {
      accountId: 'local',
      apiId: 'local',
      authorizer: null,
      protocol: `HTTP/${req.httpVersion}`,
      httpMethod: req.method ?? 'GET',
      identity: { sourceIp: req.socket.remoteAddress ?? '' } as APIGatewayProxyEvent['requestContext']['identity'],
      path: url.pathname,
      stage: 'local',
      requestId,
      requestTimeEpoch: now,
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

function headerValues(result: HttpResult): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(result.headers ?? {})) out[k] = String(v);
  for (const [k, vs] of Object.entries(result.multiValueHeaders ?? {})) out[k] = vs.map(String);
  return out;
}

/** Writes a handler's result; resolves when the response is complete (or the client is gone). */
async function writeResult(res: ServerResponse, result: HttpResult): Promise<void> {
  const headers = headerValues(result);
  const body = result.stream ? undefined : Buffer.from(result.body, result.isBase64Encoded ? 'base64' : 'utf8');
  // A known length instead of chunked encoding, as API Gateway answers.
  if (body && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-length')) {
    headers['Content-Length'] = String(body.length);
  }
  res.writeHead(result.statusCode, headers);
  if (result.stream) {
    // pipeline destroys the file stream too when the client goes away mid-download.
    await pipeline(result.stream, res).catch(() => res.destroy());
    return;
  }
  await new Promise<void>((resolve) => {
    res.once('close', resolve);
    res.end(body);
  });
}

/**
 * Starts the local API on `port` (0 = any free port), answering with the same handlers Lambda
 * runs, behind the same route table. Installs `deps` as the process-wide dependencies.
 */
export async function startLocalServer(options: LocalServerOptions): Promise<LocalServer> {
  const { deps } = options;
  useDeps(deps);
  const logLevel = deps.config.logLevel;
  let inFlight = 0;
  let drained: (() => void) | undefined;

  async function answer(req: IncomingMessage, res: ServerResponse, requestId: string): Promise<HttpResult> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method ?? 'GET';
    const match = matchRoute(method, url.pathname);
    if (match.kind === 'not-found') {
      req.resume();
      return fail(404, `No route for ${method} ${url.pathname}`);
    }
    if (match.kind === 'wrong-method') {
      req.resume();
      return fail(405, `Method ${method} not allowed on ${url.pathname}`, { Allow: match.allow.join(', ') });
    }
    let body: Buffer;
    try {
      body = await readBody(req, deps.config.maxBodyBytes);
    } catch (e) {
      if (!(e instanceof BodyTooLarge)) throw e;
      // Stop buffering; what the client still sends is discarded, and the connection closes after the answer.
      req.resume();
      res.shouldKeepAlive = false;
      return fail(413, `Request body too large (limit ${deps.config.maxBodyBytes} bytes)`);
    }
    const handler = await loadHandler(match.route);
    const event = toEvent(req, url, match.route, match.pathParameters, body, requestId);
    return handler(event, lambdaContext(match.route, requestId));
  }

  const server = createServer((req, res) => {
    const started = performance.now();
    const requestId = randomUUID();
    const path = (req.url ?? '/').split('?')[0];
    // The same correlation id and route the handler's own lines carry (it reads the same header).
    const correlationId = correlationIdOf(req.headers, requestId);
    const log = requestLogger({ correlation_id: correlationId, route: routeNameOf(req.method, path) }, () => logLevel);
    inFlight++;
    void (async () => {
      let result: HttpResult;
      try {
        result = await answer(req, res, requestId);
      } catch (e) {
        log.error('unhandled error', e);
        result = errorResult(e, requestId);
      }
      result.headers = { ...result.headers, [REQUEST_ID_HEADER]: requestId, [CORRELATION_ID_HEADER]: correlationId };
      await writeResult(res, result);
      log.info('request', {
        requestId,
        method: req.method,
        path,
        status: result.statusCode,
        ms: Math.round(performance.now() - started),
      });
    })().finally(() => {
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
