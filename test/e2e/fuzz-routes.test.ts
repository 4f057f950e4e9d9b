// Property-based fuzzing of every route in the route table against the local server on PGlite: random methods,
// path parameters, query strings, bodies and header values. Whatever is sent, no answer is a 5xx, no fault is
// logged, and every answer is the envelope or one of the documented non-envelope answers. Bounded: a fixed
// number of runs per route; FUZZ_SEED=<n> replays a run (fast-check prints the seed and path of a failure).
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FsBlobStore } from '#adapters/blob/fs-blob-store.js';
import { InMemoryMetrics } from '#adapters/metrics/memory-metrics.js';
import { openPgliteStore } from '#adapters/postgres/open-store.js';
import type { Store } from '#core/ports.js';
import { loadConfig } from '#functions/config.js';
import { startLocalServer, type LocalServer } from '#functions/local/server.js';
import { routes, type Route } from '#functions/routes.js';
import { JSON_TYPE } from '#support/envelope-assertions.js';
import { idlePipeline } from '#support/pipeline-deps.js';

const RUNS_PER_ROUTE = 150;
const MAX_BODY = 64 * 1024;
const SECRET = 'fuzz-secret';
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : Date.now() % 2 ** 31;

let dataDir: string;
let store: Store;
let server: LocalServer;
const known = { buildId: '', failedBuildId: '' };
/** Fault lines the server wrote (level ERROR), kept here instead of printed. */
const errorLines: string[] = [];

beforeAll(async () => {
  const keep = (chunk: string | Uint8Array) => {
    const line = String(chunk);
    if (line.includes('"level":"ERROR"')) errorLines.push(line);
    return true;
  };
  vi.spyOn(process.stdout, 'write').mockImplementation(keep);
  vi.spyOn(process.stderr, 'write').mockImplementation(keep);
  dataDir = await mkdtemp(join(tmpdir(), 'enot-fuzz-'));
  store = await openPgliteStore();
  const blobs = new FsBlobStore(join(dataDir, 'blobs'));
  // One package with a successful build (so downloads, /get and logs answer with bytes) and one failed build.
  const repo = await store.upsertRepository({ namespace: 'fuzz', name: 'pkg', cloneUrl: 'https://github.com/fuzz/pkg' });
  const version = await store.upsertVersion({ repositoryId: repo.id, ref: '1.0.0', erlVersion: '26' });
  const build = await store.createBuild({ versionId: version.id });
  await store.transitionBuild(build.id, ['queued'], 'running');
  const artifact = randomBytes(2048);
  await blobs.put(`artifacts/${build.id}.ep`, artifact, 'application/x-tar');
  await blobs.put(`logs/${build.id}.log`, 'compiled\n', 'text/plain');
  await store.transitionBuild(build.id, ['running'], 'succeeded', {
    artifactKey: `artifacts/${build.id}.ep`, artifactSize: artifact.length, logKey: `logs/${build.id}.log`,
    artifactSha256: createHash('sha256').update(artifact).digest('hex'),
  });
  known.buildId = build.id;
  const other = await store.upsertVersion({ repositoryId: repo.id, ref: '1.0.1', erlVersion: '26' });
  const failed = await store.createBuild({ versionId: other.id });
  await store.transitionBuild(failed.id, ['queued'], 'failed', { message: 'compile failed' });
  known.failedBuildId = failed.id;
  server = await startLocalServer({
    deps: {
      config: loadConfig({
        ENOT_DATA_DIR: dataDir, ENOT_LOG_LEVEL: 'warn', PORT: '0', ENOT_MAX_BODY_BYTES: String(MAX_BODY),
        ENOT_DEFAULT_ERL_VERSION: '26',
        // Thousands of requests from one address: the limiters still count every one, but never refuse.
        ENOT_READ_REQUESTS_PER_MINUTE: '1000000', ENOT_BUILD_REQUESTS_PER_HOUR: '1000000',
      }),
      store,
      blobs,
      ...idlePipeline(),
      webhookSecret: () => Promise.resolve(SECRET),
      metrics: new InMemoryMetrics(),
    },
    port: 0,
  });
});

afterAll(async () => {
  vi.restoreAllMocks();
  await server?.close();
  await store?.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

// --- what is sent ---

interface Sent {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** Text that may hold anything: control characters, lone surrogates, any plane. */
const anyText = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('', '\u0000', 'a\u0000b', '\ud800', '..', '/', '%', '%zz', '%00', ' ', '\t', '\r\n', 'ÿ', '😀'),
);

/** `s` with lone surrogates replaced (encodeURIComponent throws on them; a raw fragment sends their bytes instead). */
function wellFormed(s: string): string {
  return (s as string & { toWellFormed(): string }).toWellFormed();
}

/** A raw, already-encoded fragment of a target: printable ASCII only, so escapes may be malformed (`%z`, `%`). */
const rawFragment = fc.string({ unit: fc.constantFrom(...'%0aFz.-_~/?&=+#;:@!$()*,\''.split('')), maxLength: 16 });

const encodedText = fc.oneof(anyText.map((s) => encodeURIComponent(wellFormed(s))), rawFragment);

function uuidLike() {
  return fc.oneof(
    fc.constant(known.buildId),
    fc.constant(known.failedBuildId),
    fc.uuid(),
    fc.constantFrom('00000000-0000-0000-0000-000000000000', 'not-a-uuid', ''),
  );
}

/** A value for a known field, valid or near it, or anything at all. */
const fieldValue = (field: string): fc.Arbitrary<unknown> => {
  const plausible: Record<string, fc.Arbitrary<unknown>> = {
    full_name: fc.constantFrom('fuzz/pkg', 'a/b', 'a', 'a/b/c', '../x', 'fuzz/pkg\u0000'),
    clone_url: fc.constantFrom('https://github.com/fuzz/pkg', 'https://github.com/a/b.git', 'file:///etc', 'https://user@github.com/a/b', '-x'),
    ref: fc.constantFrom('1.0.0', 'v2', 'master', '..', 'a/b', '1.0.0\u0000'),
    erl_version: fc.constantFrom('25', '26', '26.2', '0', '25.0.0.0', 'x'),
    build_id: uuidLike(),
    notify_email: fc.constantFrom(true, false, 'dev@example.org', 'not an address', null),
  };
  return fc.oneof(plausible[field] ?? fc.jsonValue(), fc.jsonValue(), anyText);
};

const versionsValue = fc.oneof(
  fc.record({ ref: fieldValue('ref'), erl_version: fieldValue('erl_version') }, { requiredKeys: [] }),
  fc.array(fc.record({ ref: fieldValue('ref'), erl_version: fieldValue('erl_version') }, { requiredKeys: [] }), { maxLength: 30 }),
  fc.jsonValue(),
);

/** A JSON object shaped like the route's body, with random and missing fields. */
function shapedBody(route: Route): fc.Arbitrary<unknown> {
  const fields = route.name === 'rebuild' ? ['build_id'] : ['full_name', 'clone_url', 'notify_email'];
  const shape: Record<string, fc.Arbitrary<unknown>> = { versions: versionsValue };
  for (const f of fields) shape[f] = fieldValue(f);
  if (route.name === 'callback') {
    return fc.record({
      ref: fieldValue('ref'),
      ref_type: fc.constantFrom('tag', 'branch', 'x', null),
      repository: fc.oneof(fc.record({ full_name: fieldValue('full_name'), clone_url: fieldValue('clone_url') }, { requiredKeys: [] }), fc.jsonValue()),
      zen: fc.constant('ping'),
    }, { requiredKeys: [] });
  }
  return fc.record(shape, { requiredKeys: [] });
}

/** The body bytes: shaped JSON, JSON of any shape, invalid JSON, random bytes, one huge value near the limit. */
function bodyOf(route: Route): fc.Arbitrary<Buffer | undefined> {
  return fc.oneof(
    { weight: 4, arbitrary: shapedBody(route).map((v) => Buffer.from(JSON.stringify(v))) },
    { weight: 2, arbitrary: fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? 'null')) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }).map((s) => Buffer.from(s)) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)) },
    { weight: 1, arbitrary: fc.constantFrom('{', '{"full_name":', '[', 'nul', '{"a":1}}', '\u0000').map((s) => Buffer.from(s)) },
    { weight: 1, arbitrary: fc.integer({ min: MAX_BODY - 2000, max: MAX_BODY + 2000 }).map((n) => hugeBody(route, n)) },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );
}

function hugeBody(route: Route, size: number): Buffer {
  const field = route.name === 'rebuild' ? 'build_id' : 'full_name';
  const head = `{"${field}":"`;
  return Buffer.from(`${head}${'x'.repeat(Math.max(0, size - head.length - 2))}"}`);
}

/** Already-encoded values the fuzzer found trouble with before: NUL, control bytes, bad escapes, bytes that are not UTF-8. */
const hostileEncoded = fc.oneof(
  fc.constantFrom('%00', 'a%00b', '%00%00'),
  fc.constantFrom('%01', '%7F', '%C2%85', '%zz', '%', '%f', '%ff', '%ED%A0%80', '%C0%AF', '%EF%BF%BD', '%09', '%0A', '+', '%2F..%2F'),
);

/** Values each query parameter of the table takes when valid, so that one hostile parameter is the only fault. */
const VALID_QUERY: Record<string, Record<string, () => fc.Arbitrary<string>>> = {
  search: {
    name: () => fc.constantFrom('pkg', 'fuzz', 'mongo', 'p'),
    namespace: () => fc.constantFrom('fuzz', ''),
    version: () => fc.constantFrom('1.0.0', ''),
    erl_version: () => fc.constantFrom('26', ''),
  },
  'last-builds': { n: () => fc.constantFrom('1', '5', '100', '1000') },
  'build-log': { build_id: () => uuidLike() },
};

/** A query string: the route's own parameters (valid, hostile or random), then random ones, encoded or raw. */
function queryOf(route: Route): fc.Arbitrary<string> {
  const own = VALID_QUERY[route.name] ?? {};
  const valueFor = (name: string) => fc.oneof(
    { weight: 4, arbitrary: own[name]() },
    { weight: 3, arbitrary: hostileEncoded },
    { weight: 2, arbitrary: encodedText },
    { weight: 1, arbitrary: fc.integer({ min: -5, max: 1000 }).map(String) },
  );
  const ownPairs = fc.record(
    Object.fromEntries(Object.keys(own).map((name) => [name, valueFor(name).map((v) => `${name}=${v}`)])),
    { requiredKeys: [] },
  ).map((r) => Object.values(r) as string[]);
  const anyValue = fc.oneof(hostileEncoded, encodedText, uuidLike());
  const other = fc.array(fc.oneof(fc.tuple(fc.oneof(encodedText, hostileEncoded), anyValue).map(([k, v]) => `${k}=${v}`), rawFragment), { maxLength: 2 });
  return fc.tuple(ownPairs, other, fc.boolean()).map(([a, b, otherFirst]) => {
    const pairs = otherFirst ? [...b, ...a] : [...a, ...b];
    return pairs.length ? `?${pairs.join('&')}` : '';
  });
}

/** The route's path with each `{param}` replaced by a random encoded value, sometimes with a trailing slash. */
function pathOf(route: Route): fc.Arbitrary<string> {
  const params = route.path.match(/\{\w+\}/g) ?? [];
  const value = fc.oneof(uuidLike(), encodedText, hostileEncoded, fc.constantFrom('25', '26', '26.2', '%2E%2E', '..', '.'));
  return fc.tuple(fc.array(value, { minLength: params.length, maxLength: params.length }), fc.boolean()).map(([values, slash]) => {
    let i = 0;
    const path = route.path.replace(/\{\w+\}/g, () => values[i++] || 'x');
    return slash ? `${path}/` : path;
  });
}

/** Header values: some plausible, some not; header values node itself refuses to send are left out. */
function headersOf(route: Route, body: Buffer | undefined): fc.Arbitrary<Record<string, string>> {
  const sign = (algo: 'sha256' | 'sha1') => (body ? `${algo}=${createHmac(algo, SECRET).update(body).digest('hex')}` : '');
  return fc.record({
    'content-type': fc.constantFrom('application/json', 'application/x-www-form-urlencoded', 'text/plain', 'application/json; charset=latin1', ''),
    'x-correlation-id': fc.oneof(fc.constantFrom('abc', 'a'.repeat(200), 'a b', '../x'), fc.string({ maxLength: 30 })),
    'x-github-event': fc.constantFrom('ping', 'create', 'push', 'delete', ''),
    'x-github-delivery': fc.oneof(fc.uuid(), fc.string({ maxLength: 20 })),
    'x-hub-signature-256': fc.constantFrom('valid', 'sha256=00', 'x', ''),
    'x-hub-signature': fc.constantFrom('valid', 'sha1=00', ''),
    accept: fc.constantFrom('*/*', 'application/json', ''),
  }, { requiredKeys: [] }).map((h) => {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(h)) {
      if (v === undefined) continue;
      const value = v === 'valid' ? sign(k === 'x-hub-signature' ? 'sha1' : 'sha256') : v;
      // Node's client refuses control characters in a value; the raw-socket tests cover those.
      if (/^[\t\x20-\x7e]*$/.test(value) && route) out[k] = value;
    }
    return out;
  });
}

function requestOf(route: Route): fc.Arbitrary<Sent> {
  const method = fc.oneof({ weight: 8, arbitrary: fc.constant(route.method) },
    { weight: 2, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS') });
  return fc.tuple(method, pathOf(route), queryOf(route), bodyOf(route)).chain(([m, path, query, body]) =>
    headersOf(route, body).map((headers): Sent => ({ method: m, path: path + query, headers, body })));
}

function send(sent: Sent): Promise<Answer> {
  const { port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: '127.0.0.1', port: Number(port), method: sent.method, path: sent.path, agent: false,
      headers: { ...sent.headers, ...(sent.body ? { 'content-length': String(sent.body.length) } : {}) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(sent.body);
  });
}

// --- what every answer must be ---

/** The documented answers that are not the envelope, by route. */
function isDocumentedNonEnvelope(route: Route | undefined, a: Answer): boolean {
  const type = String(a.headers['content-type'] ?? '');
  const text = a.body.toString('utf8');
  switch (route?.name) {
    case 'download':
      return (a.status === 200 && type === 'application/x-tar') || (a.status === 404 && text === 'No such build');
    case 'get':
      return (a.status === 200 && type === 'application/x-tar') || (a.status === 200 && text === 'No such build');
    case 'download-erts':
      return (a.status === 200 && type === 'application/x-tar') || (a.status === 200 && text === 'No such erlang');
    case 'build-log':
      return a.status === 200 && type === 'text/plain; charset=utf-8';
    case 'metrics':
      return a.status === 200 && type.startsWith('text/plain; version=0.0.4');
    default:
      return false;
  }
}

/**
 * A /v2 route's answer: a 204 with no body, JSON on success, problem details (RFC 9457) on failure, whose status is
 * the answer's; 'envelope' for an answer in the envelope (what the shared stack answers before the handler runs).
 */
function v2Breach(a: Answer): string | undefined | 'envelope' {
  const type = String(a.headers['content-type'] ?? '');
  if (a.status === 204) return a.body.length === 0 ? undefined : 'a 204 with a body';
  if (type === JSON_TYPE) return 'envelope';
  let body: { status?: unknown; title?: unknown; detail?: unknown };
  try {
    body = JSON.parse(a.body.toString('utf8')) as typeof body;
  } catch {
    return `not JSON: ${a.body.toString('utf8').slice(0, 200)}`;
  }
  if (a.status < 300) return type === 'application/json' ? undefined : `content type ${type} with status ${a.status}`;
  if (type !== 'application/problem+json') return `content type ${type} with status ${a.status}`;
  if (body.status !== a.status || typeof body.title !== 'string' || typeof body.detail !== 'string') {
    return `not a problem of status ${a.status}: ${JSON.stringify(body).slice(0, 200)}`;
  }
  return undefined;
}

/** Why the answer breaks the contract, or undefined when it keeps it. */
function contractBreach(route: Route | undefined, sent: Sent, a: Answer): string | undefined {
  if (a.status >= 500) return `a ${a.status}: ${a.body.toString('utf8').slice(0, 300)}`;
  if (!a.headers['x-request-id']) return 'no X-Request-Id';
  if (sent.method === 'HEAD') return undefined;
  if (isDocumentedNonEnvelope(route, a)) return undefined;
  // Any /v2 target, whichever route (or method) it reached: several /v2 routes share a path.
  if (sent.path.startsWith('/v2/')) {
    const v2 = v2Breach(a);
    if (v2 !== 'envelope') return v2;
  }
  if (a.headers['content-type'] !== JSON_TYPE) return `content type ${String(a.headers['content-type'])} with status ${a.status}`;
  let body: unknown;
  try {
    body = JSON.parse(a.body.toString('utf8'));
  } catch {
    return `not JSON: ${a.body.toString('utf8').slice(0, 200)}`;
  }
  const b = body as { result?: unknown; response?: unknown };
  if (typeof b !== 'object' || b === null || Object.keys(b).sort().join() !== 'response,result') return `not the envelope: ${JSON.stringify(body).slice(0, 200)}`;
  if (b.result !== (a.status === 200)) return `result ${String(b.result)} with status ${a.status}`;
  if (b.result === false && typeof b.response !== 'string') return `a failure whose response is not a string: ${JSON.stringify(b.response).slice(0, 200)}`;
  return undefined;
}

/** The route the server would have matched for what was sent, when any (only to know which answers are allowed). */
function routeFor(sent: Sent, route: Route): Route | undefined {
  return sent.method === route.method ? route : undefined;
}

describe('every route, fuzzed', () => {
  it.each(routes.map((r) => [r.name, r] as const))('%s: no 5xx, no fault logged, every answer in the contract', async (_name, route) => {
    const before = errorLines.length;
    await fc.assert(
      fc.asyncProperty(requestOf(route), async (sent) => {
        const answer = await send(sent);
        const breach = contractBreach(routeFor(sent, route), sent, answer);
        if (breach) throw new Error(`${sent.method} ${sent.path} (${sent.body?.length ?? 0} body bytes, headers ${JSON.stringify(sent.headers)}): ${breach}`);
      }),
      { numRuns: RUNS_PER_ROUTE, seed: SEED, endOnFailure: true },
    );
    expect(errorLines.slice(before)).toEqual([]);
  });
});
