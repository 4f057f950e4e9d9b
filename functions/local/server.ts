// The local HTTP server: mounts every route of functions/routes.ts on node:http, calling the same Lambda handlers; listens, drains, closes.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Route } from '#functions/routes.js';
import { useDeps, type Deps } from '#functions/wiring.js';
import type { ApiHandler } from '#http/endpoint.js';
import { fail, type HttpResult } from '#http/envelope.js';
import { errorResult } from '#http/errors.js';
import { logEnabled, requestLogger, type LogLevel } from '#functions/log.js';
import { correlationIdOf } from '#http/observability.js';
import { matchRoute } from '#http/router.js';
import {
  BodyTooLarge, headerMaps, lambdaContext, parseTarget, readBody, toEvent, type HeaderMaps, type Target,
} from './http-event.js';
import { sendResult } from './http-response.js';

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
    await sendResult(req, res, result, requestId, correlationId);
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
