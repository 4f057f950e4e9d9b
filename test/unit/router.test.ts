// The router over the route table: path parameters, trailing slash, 405 with Allow, 404.
import { describe, expect, it } from 'vitest';
import { matchPath, matchRoute } from '#http/router.js';
import { routes, type Route } from '#functions/routes.js';

describe('matchPath', () => {
  it('extracts and decodes parameters', () => {
    expect(matchPath('/download/{id}', '/download/abc')).toEqual({ id: 'abc' });
    expect(matchPath('/download_erts/{version}', '/download_erts/26%2E2')).toEqual({ version: '26.2' });
  });

  it('refuses empty and extra segments', () => {
    expect(matchPath('/download/{id}', '/download/')).toBeNull();
    expect(matchPath('/download/{id}', '/download/a/b')).toBeNull();
    expect(matchPath('/search', '/searches')).toBeNull();
  });

  it('routes a malformed escape with U+FFFD in its place, for the parameter check to refuse with a 400', () => {
    expect(matchPath('/download/{id}', '/download/%E0%A4%A')).toEqual({ id: '\ufffd\ufffdA' });
    expect(matchPath('/download/{id}', '/download/%zz')).toEqual({ id: '\ufffdzz' });
    expect(matchPath('/download/{id}', '/download/a%2Fb')).toEqual({ id: 'a/b' });
  });
});

describe('matchRoute', () => {
  it('finds every route of the table by its method and path', () => {
    for (const route of routes) {
      const path = route.path.replace(/\{\w+\}/g, 'x');
      const m = matchRoute(route.method, path);
      expect(m.kind).toBe('found');
      if (m.kind === 'found') expect(m.route.name).toBe(route.name);
    }
  });

  it('accepts a trailing slash', () => {
    const m = matchRoute('GET', '/build_log/');
    expect(m.kind === 'found' && m.route.name).toBe('build-log');
    const d = matchRoute('GET', '/download/abc/');
    expect(d).toMatchObject({ kind: 'found', pathParameters: { id: 'abc' } });
  });

  it('answers a known path with another method as wrong-method with the allowed ones', () => {
    expect(matchRoute('GET', '/get')).toEqual({ kind: 'wrong-method', allow: ['POST'] });
    expect(matchRoute('DELETE', '/search')).toEqual({ kind: 'wrong-method', allow: ['GET'] });
  });

  it('collects every allowed method of a path', () => {
    const table: Route[] = [
      { name: 'a', method: 'GET', path: '/x', entry: 'api/a.ts', kind: 'read', grants: [] },
      { name: 'b', method: 'POST', path: '/x', entry: 'api/b.ts', kind: 'read', grants: [] },
    ];
    expect(matchRoute('PUT', '/x', table)).toEqual({ kind: 'wrong-method', allow: ['GET', 'POST'] });
    expect(matchRoute('post', '/x/', table)).toMatchObject({ kind: 'found', route: { name: 'b' } });
  });

  it('answers an unknown path as not-found', () => {
    expect(matchRoute('GET', '/nothing')).toEqual({ kind: 'not-found' });
    expect(matchRoute('GET', '/')).toEqual({ kind: 'not-found' });
    expect(matchRoute('GET', '/build_log//')).toEqual({ kind: 'not-found' });
  });
});
