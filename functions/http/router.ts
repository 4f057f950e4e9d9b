// Matches a method and path against the route table (functions/routes.ts), for the local server.
import { routes as allRoutes, type Route } from '#functions/routes.js';
import { decodeComponent } from './percent-decoding.js';

export type RouteMatch =
  | { kind: 'found'; route: Route; pathParameters: Record<string, string> }
  | { kind: 'wrong-method'; allow: string[] }
  | { kind: 'not-found' };

/** A template split once: literal segments as strings, `{name}` segments as the parameter name. */
interface CompiledRoute {
  route: Route;
  segments: (string | { param: string })[];
}

function segments(path: string): string[] {
  // One trailing slash is accepted (/build_log/), so an empty last segment is dropped.
  const trimmed = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  return trimmed.split('/').slice(1);
}

function compileTemplate(template: string): CompiledRoute['segments'] {
  return segments(template).map((s) => {
    const param = /^\{(\w+)\}$/.exec(s);
    return param ? { param: param[1] } : s;
  });
}

/** The parameters when the split path fits the compiled template, else null. */
function matchSegments(want: CompiledRoute['segments'], got: string[]): Record<string, string> | null {
  if (want.length !== got.length) return null;
  // Literals first: most routes are told apart without decoding anything.
  for (let i = 0; i < want.length; i++) {
    const w = want[i];
    if (typeof w === 'string' && w !== got[i]) return null;
  }
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    const w = want[i];
    if (typeof w === 'string') continue;
    // A malformed escape still routes: the parameter check answers it with a 400 naming the parameter.
    const value = decodeComponent(got[i]);
    if (!value) return null;
    params[w.param] = value;
  }
  return params;
}

/** The path parameters when `path` fits the template, else null. */
export function matchPath(template: string, path: string): Record<string, string> | null {
  return matchSegments(compileTemplate(template), segments(path));
}

// Templates are split once per table, not once per request.
const compiledTables = new WeakMap<Route[], CompiledRoute[]>();

function compiled(table: Route[]): CompiledRoute[] {
  let c = compiledTables.get(table);
  if (!c || c.length !== table.length) {
    c = table.map((route) => ({ route, segments: compileTemplate(route.path) }));
    compiledTables.set(table, c);
  }
  return c;
}

/** Finds the route for `method path`; a known path with another method yields the allowed ones (405). */
export function matchRoute(method: string, path: string, table: Route[] = allRoutes): RouteMatch {
  const wanted = method.toUpperCase();
  const got = segments(path);
  let allow: string[] | undefined;
  for (const { route, segments: want } of compiled(table)) {
    const params = matchSegments(want, got);
    if (!params) continue;
    if (route.method === wanted) return { kind: 'found', route, pathParameters: params };
    allow ??= [];
    if (!allow.includes(route.method)) allow.push(route.method);
  }
  return allow ? { kind: 'wrong-method', allow } : { kind: 'not-found' };
}
