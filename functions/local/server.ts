// The local HTTP server: mounts every route of functions/routes.ts on node:http, calling the same Lambda handlers; listens, drains, closes.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Route } from '#functions/routes.js';
import { useDeps, type Deps } from '#functions/wiring.js';
import type { ApiHandler } from '#http/endpoint.js';
import { fail, type HttpResult } from '#http/envelope.js';
import { errorResult, statusOf } from '#http/errors.js';
import { logEnabled, requestLogger, type LogLevel } from '#functions/log.js';
import { correlationIdOf } from '#http/observability.js';
import { matchRoute } from '#http/router.js';
import { clientErrorListener } from './client-errors.js';
import {
  BodyIdle, BodyTooLarge, ClientGone, headerMaps, lambdaContext, parseTarget, readBody, toEvent,
  type HeaderMaps, type Target,
} from './http-event.js';
import { sendResult } from './http-response.js';

/** At most one warning per this many ms about connections refused at the cap, however many there are. */
const DROP_WARNING_EVERY_MS = 10_000;

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
  const limits = deps.config.http;
  const bodyLimits = { maxBytes: maxBodyBytes, idleS: limits.bodyIdleTimeoutS };
  const serverLog = () => requestLogger({ route: 'unknown' }, levelOf);
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
      const read = readBody(req, maps.headers, bodyLimits);
      body = read instanceof Buffer ? read : await read;
    } catch (e) {
      if (e instanceof BodyIdle) {
        // Nothing more is read from a client this slow: answer, and the connection closes after the answer.
        res.shouldKeepAlive = false;
        return errorResult(e, requestId);
      }
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
    let result: HttpResult | undefined;
    try {
      const target = parseTarget(req.url ?? '/');
      const match = matchRoute(req.method ?? 'GET', target.pathname);
      if (match.kind === 'found') route = match.route.name;
      result = await answer(req, res, requestId, target, maps, match);
    } catch (e) {
      if (e instanceof ClientGone) {
        // Nobody is left to answer; that is the client's choice, not a fault of the server.
        res.destroy();
      } else {
        if (statusOf(e) === undefined) requestLogger({ correlation_id: correlationId, route }, levelOf).error('unhandled error', e);
        result = errorResult(e, requestId);
      }
    }
    if (result) await sendResult(req, res, result, requestId, correlationId);
    if (logEnabled('info', logLevel)) {
      // A client that left (mid-body, or mid-answer: a download cut off) is said so on this info line.
      const disconnected = !result ? 'before its request body was complete'
        : !res.writableFinished ? 'before the whole answer was sent' : undefined;
      requestLogger({ correlation_id: correlationId, route }, levelOf).info('request', {
        requestId,
        method: req.method,
        path: (req.url ?? '/').split('?')[0],
        status: result?.statusCode,
        ...(disconnected ? { disconnected } : {}),
        ms: Math.round(performance.now() - started),
      });
    }
  }

  const server = createServer({
    headersTimeout: limits.headersTimeoutS * 1000,
    requestTimeout: limits.requestTimeoutS * 1000,
    maxHeaderSize: limits.maxHeaderBytes,
    // How often node looks for requests past those limits: often enough that a limit is kept to about a tenth.
    connectionsCheckingInterval: Math.max(50, Math.min(limits.headersTimeoutS, 30) * 100),
  }, (req, res) => {
    inFlight++;
    serve(req, res)
      .catch(() => res.destroy())
      .finally(() => {
        inFlight--;
        if (inFlight === 0) drained?.();
      });
  });

  server.maxConnections = limits.maxConnections;
  server.on('clientError', clientErrorListener(limits, serverLog));
  // Over the cap node closes each new connection at once, unanswered; the log says so, a line per 10 s at most.
  let dropped = 0;
  let lastDropWarning = -Infinity;
  server.on('drop', () => {
    dropped++;
    const now = performance.now();
    if (now - lastDropWarning < DROP_WARNING_EVERY_MS) return;
    lastDropWarning = now;
    serverLog().warn('connections refused: the server is at its connection cap', {
      maxConnections: limits.maxConnections, refused: dropped,
    });
    dropped = 0;
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
