// Per-request observability shared by the middy stack and the local server: correlation ids and route names.
import { routes } from '#functions/routes.js';
import { headerValue, type HeaderMap } from '#core/headers.js';
import { matchRoute } from './router.js';

export const CORRELATION_ID_HEADER = 'X-Correlation-Id';
export const REQUEST_ID_HEADER = 'X-Request-Id';

// Long enough for UUIDs and X-Ray ids, short and plain enough to go into a header and a log line as is.
const SANE_CORRELATION_ID = /^[A-Za-z0-9][A-Za-z0-9._:=+/@-]{0,127}$/;

export function isSaneCorrelationId(value: unknown): value is string {
  return typeof value === 'string' && SANE_CORRELATION_ID.test(value);
}

/**
 * The caller's X-Correlation-Id when it is a sane token (so a caller can follow one operation across
 * requests), else the request id. Anything else (too long, spaces, a repeated header) is ignored
 * rather than refused: it is only a label.
 */
export function correlationIdOf(headers: HeaderMap, requestId: string): string {
  const given = headerValue(headers, CORRELATION_ID_HEADER)?.trim();
  return isSaneCorrelationId(given) ? given : requestId;
}

// What every route's own template resolves to (API Gateway's `resource`, the local server's too),
// worked out once by the router itself so the shortcut can never disagree with it.
const nameOfTemplate = new Map<string, string>();
for (const route of routes) {
  const match = matchRoute(route.method, route.path);
  nameOfTemplate.set(`${route.method} ${route.path}`, match.kind === 'found' ? match.route.name : 'unknown');
}

/**
 * The route table name of a request (`search`, `download`, ...). API Gateway hands over the resource
 * template (`/download/{id}`), which matches its own route; `unknown` for anything off the table.
 */
export function routeNameOf(method: string | undefined, resourceOrPath: string | undefined): string {
  if (!method || !resourceOrPath) return 'unknown';
  const known = nameOfTemplate.get(`${method.toUpperCase()} ${resourceOrPath}`);
  if (known !== undefined) return known;
  const match = matchRoute(method, resourceOrPath);
  return match.kind === 'found' ? match.route.name : 'unknown';
}
