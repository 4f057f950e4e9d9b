// Matches a method and path against the route table (functions/routes.ts), for the local server.
import { routes as allRoutes, type Route } from '#functions/routes.js';

export type RouteMatch =
  | { kind: 'found'; route: Route; pathParameters: Record<string, string> }
  | { kind: 'wrong-method'; allow: string[] }
  | { kind: 'not-found' };

function segments(path: string): string[] {
  // One trailing slash is accepted (/build_log/), so an empty last segment is dropped.
  const trimmed = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  return trimmed.split('/').slice(1);
}

function decode(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

/** The path parameters when `path` fits the template, else null. */
export function matchPath(template: string, path: string): Record<string, string> | null {
  const want = segments(template);
  const got = segments(path);
  if (want.length !== got.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    const param = /^\{(\w+)\}$/.exec(want[i]);
    if (param) {
      const value = decode(got[i]);
      if (!value) return null;
      params[param[1]] = value;
    } else if (want[i] !== got[i]) {
      return null;
    }
  }
  return params;
}

/** Finds the route for `method path`; a known path with another method yields the allowed ones (405). */
export function matchRoute(method: string, path: string, table: Route[] = allRoutes): RouteMatch {
  const allow: string[] = [];
  for (const route of table) {
    const params = matchPath(route.path, path);
    if (!params) continue;
    if (route.method === method.toUpperCase()) return { kind: 'found', route, pathParameters: params };
    if (!allow.includes(route.method)) allow.push(route.method);
  }
  return allow.length > 0 ? { kind: 'wrong-method', allow } : { kind: 'not-found' };
}
