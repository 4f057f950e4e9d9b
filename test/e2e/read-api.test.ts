// The eight read endpoints end to end: the local server over real HTTP, a real Store (pg or PGlite) and files for blobs.
import { randomBytes, randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '#adapters/blob/fs-blob-store.js';
import { InMemoryMetrics } from '#adapters/metrics/memory-metrics.js';
import { idlePipeline } from '#support/pipeline-deps.js';
import type { Build } from '#core/model.js';
import type { Store } from '#core/ports.js';
import { loadConfig } from '#functions/config.js';
import { startLocalServer, type LocalServer } from '#functions/local/server.js';
import type { Deps } from '#functions/wiring.js';
import { openTestStore } from '#support/databases.js';
import { failingStore } from '#support/failing-store.js';
import { envelope, JSON_TYPE } from '#support/envelope-assertions.js';

const TEXT_TYPE = 'text/plain; charset=utf-8';
const MAX_BODY = 16 * 1024;

let dataDir: string;
let closeStore: (() => Promise<void>) | undefined;
let store: Store;
let blobs: FsBlobStore;
let deps: Deps;
let server: LocalServer;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'enot-read-api-'));
  ({ store, close: closeStore } = await openTestStore());
  blobs = new FsBlobStore(join(dataDir, 'blobs'));
  const config = loadConfig({
    ENOT_DATA_DIR: dataDir, ENOT_LOG_LEVEL: 'silent', ENOT_MAX_BODY_BYTES: String(MAX_BODY), PORT: '0',
  });
  deps = { config, store, blobs, metrics: new InMemoryMetrics(), ...idlePipeline() };
  server = await startLocalServer({ deps, port: 0 });
});

afterAll(async () => {
  await server?.close();
  await closeStore?.();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

// --- helpers ---

function get(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(server.url + path, { redirect: 'manual', ...init });
}

function post(path: string, body: unknown, init: RequestInit = {}): Promise<Response> {
  return fetch(server.url + path, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...init,
  });
}

async function failure(res: Response, status: number): Promise<string> {
  return (await envelope(res, status)) as string;
}

async function plain(res: Response, status: number): Promise<string> {
  expect(res.headers.get('content-type')).toBe(TEXT_TYPE);
  const text = await res.text();
  expect(res.status, text).toBe(status);
  return text;
}

async function bytesOf(res: Response): Promise<Buffer> {
  return Buffer.from(await res.arrayBuffer());
}

// --- (a) an empty store ---

describe('an empty store', () => {
  it('GET /search answers an empty list', async () => {
    expect(await envelope(await get('/search?name=x'), 200)).toEqual([]);
  });

  it('GET /last_builds answers an empty list', async () => {
    expect(await envelope(await get('/last_builds'), 200)).toEqual([]);
  });

  it('POST /builds and /versions answer empty lists', async () => {
    expect(await envelope(await post('/builds', { full_name: 'a/b' }), 200)).toEqual([]);
    expect(await envelope(await post('/versions', { full_name: 'a/b', versions: { ref: '1.0' } }), 200)).toEqual([]);
  });

  it('POST /get answers 200 with exactly `No such build`', async () => {
    const res = await post('/get', { full_name: 'a/b', versions: { ref: '1.0.0' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(TEXT_TYPE);
    expect(await bytesOf(res)).toEqual(Buffer.from('No such build'));
  });

  it('GET /download_erts/25 answers 200 with exactly `No such erlang`', async () => {
    const res = await get('/download_erts/25');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(TEXT_TYPE);
    expect(await bytesOf(res)).toEqual(Buffer.from('No such erlang'));
  });

  it('GET /download/{id} answers 404 No such build', async () => {
    expect(await plain(await get(`/download/${randomUUID()}`), 404)).toBe('No such build');
  });

  it('GET /build_log answers 404 No such build', async () => {
    expect(await failure(await get(`/build_log?build_id=${randomUUID()}`), 404)).toBe('No such build');
  });
});

// --- (b) a seeded store ---

const BASE = Date.parse('2024-05-01T00:00:00Z');
/** Hour `h` of the seed's timeline, plus a few minutes so build_date shows them. */
const T = (h: number) => new Date(BASE + h * 3_600_000 + 7 * 60_000);

interface Seeded extends Build {
  artifact?: Buffer;
  log?: string;
}

async function seedBuild(
  versionId: number,
  status: 'succeeded' | 'failed' | 'queued',
  at: Date,
  options: { log?: string; artifact?: boolean; missingArtifact?: boolean } = {},
): Promise<Seeded> {
  const createdAt = new Date(at.getTime() - 20 * 60_000);
  const build = await store.createBuild({ versionId, createdAt });
  if (status === 'queued') return build;
  const running = await store.transitionBuild(build.id, ['queued'], 'running', { at: new Date(createdAt.getTime() + 60_000) });
  expect(running?.status).toBe('running');
  let artifact: Buffer | undefined;
  let artifactKey: string | null = null;
  let artifactSha256: string | null = null;
  if (status === 'succeeded') {
    artifactKey = `artifacts/${build.id}.ep`;
    if (!options.missingArtifact) {
      artifact = randomBytes(3000 + Math.floor(Math.random() * 3000));
      artifactSha256 = (await blobs.put(artifactKey, artifact, 'application/x-tar')).sha256 ?? null;
    }
  }
  let logKey: string | null = null;
  if (options.log !== undefined) {
    logKey = `logs/${build.id}.log`;
    await blobs.put(logKey, options.log, 'text/plain');
  }
  const done = await store.transitionBuild(build.id, ['running'], status, {
    at,
    message: status === 'succeeded' ? 'Build succeeded' : 'Compile error',
    artifactKey,
    artifactSize: artifact?.length ?? null,
    artifactSha256,
    logKey,
  });
  expect(done?.status).toBe(status);
  return { ...done!, artifact, log: options.log };
}

async function version(namespace: string, name: string, ref: string, erlVersion: string) {
  const repo = await store.upsertRepository({ namespace, name, cloneUrl: `https://github.com/${namespace}/${name}` });
  return store.upsertVersion({ repositoryId: repo.id, ref, erlVersion });
}

describe('a seeded store', () => {
  // alice/cowboy_utils: 1.0.0@25 built twice (rebuild newer), 1.0.0@26, 1.1.0@25 succeeded then a failed rebuild,
  // 2.0.0@25 only failed, 2.0.0@26 only queued. bob/Cowlib (capital C), carol/broken (failed), dave/other, erin/ghost
  // (succeeded but its artifact is gone).
  const s = {} as Record<
    'a1' | 'a1b' | 'a2' | 'a3' | 'a3f' | 'a4f' | 'a5q' | 'b1' | 'c1f' | 'd1' | 'e1',
    Seeded
  >;
  const v = {} as Record<'a100_25' | 'a100_26' | 'a110_25' | 'a200_25' | 'a200_26', number>;
  const ertsBytes = randomBytes(7000);

  beforeAll(async () => {
    v.a100_25 = (await version('alice', 'cowboy_utils', '1.0.0', '25')).id;
    v.a100_26 = (await version('alice', 'cowboy_utils', '1.0.0', '26')).id;
    v.a110_25 = (await version('alice', 'cowboy_utils', '1.1.0', '25')).id;
    v.a200_25 = (await version('alice', 'cowboy_utils', '2.0.0', '25')).id;
    v.a200_26 = (await version('alice', 'cowboy_utils', '2.0.0', '26')).id;
    s.a1 = await seedBuild(v.a100_25, 'succeeded', T(1), { log: 'first build of 1.0.0\n' });
    s.a2 = await seedBuild(v.a100_26, 'succeeded', T(2));
    s.a3 = await seedBuild(v.a110_25, 'succeeded', T(3));
    s.a4f = await seedBuild(v.a200_25, 'failed', T(4), { log: 'src/x.erl:1: syntax error\n' });
    s.a1b = await seedBuild(v.a100_25, 'succeeded', T(5));
    s.a3f = await seedBuild(v.a110_25, 'failed', T(7));
    s.a5q = await seedBuild(v.a200_26, 'queued', T(12));
    s.b1 = await seedBuild((await version('bob', 'Cowlib', '0.1.0', '25')).id, 'succeeded', T(8));
    s.c1f = await seedBuild((await version('carol', 'broken', '1.0', '25')).id, 'failed', T(9), {
      log: 'rebar3 compile\n===> Compiling broken\nerror: ünïcödé is fine\n',
    });
    s.d1 = await seedBuild((await version('dave', 'other', '3.0', '26')).id, 'succeeded', T(10));
    s.e1 = await seedBuild((await version('erin', 'ghost', '1.0', '25')).id, 'succeeded', T(11), { missingArtifact: true });
    const { sha256 } = await blobs.put('erts/25/erts-13.2.tar', ertsBytes, 'application/x-tar');
    await store.putErts({ release: '25', ertsVersion: '13.2', key: 'erts/25/erts-13.2.tar', size: ertsBytes.length, sha256: sha256! });
  });

  const ids = (list: unknown) => (list as { build_id: string }[]).map((e) => e.build_id);

  describe('GET /search', () => {
    it('answers PackageDTOs with the right fields and JSON types', async () => {
      const list = (await envelope(await get('/search?name=broken'), 200)) as Record<string, unknown>[];
      expect(list).toEqual([{
        build_id: s.c1f.id,
        namespace: 'carol',
        name: 'broken',
        success: false,
        path: `/build_log?build_id=${s.c1f.id}`,
        build_date: '2024-05-01 09:07',
        version: '1.0',
        erl_version: '25',
      }]);
    });

    it('matches a substring case-insensitively, one entry per version, newest first, failures included', async () => {
      const list = (await envelope(await get('/search?name=COW'), 200)) as Record<string, unknown>[];
      // 1.1.0@25 shows its success, not the newer failed rebuild; 2.0.0@26 has only a queued build.
      expect(ids(list)).toEqual([s.b1.id, s.a1b.id, s.a4f.id, s.a3.id, s.a2.id]);
      const a1b = list[1];
      expect(a1b).toMatchObject({
        namespace: 'alice', name: 'cowboy_utils', success: true, path: `/download/${s.a1b.id}`,
        build_date: '2024-05-01 05:07', version: '1.0.0', erl_version: '25',
      });
      expect(list[2]).toMatchObject({ success: false, path: `/build_log?build_id=${s.a4f.id}` });
    });

    it('filters by namespace, version and erl_version', async () => {
      expect(ids(await envelope(await get('/search?name=cow&namespace=alice'), 200)))
        .toEqual([s.a1b.id, s.a4f.id, s.a3.id, s.a2.id]);
      expect(ids(await envelope(await get('/search?name=cow&version=1.0.0'), 200))).toEqual([s.a1b.id, s.a2.id]);
      expect(ids(await envelope(await get('/search?name=cow&erl_version=26'), 200))).toEqual([s.a2.id]);
      expect(ids(await envelope(await get('/search?name=cow&namespace=bob&erl_version=25'), 200))).toEqual([s.b1.id]);
      expect(await envelope(await get('/search?name=zzz'), 200)).toEqual([]);
    });

    it('treats LIKE wildcards literally', async () => {
      expect(await envelope(await get('/search?name=%25'), 200)).toEqual([]);
      // Only cowboy_utils has an underscore in its name.
      expect(ids(await envelope(await get('/search?name=_'), 200))).toEqual([s.a1b.id, s.a4f.id, s.a3.id, s.a2.id]);
    });

    it('requires a non-empty name and valid filters', async () => {
      expect(await failure(await get('/search'), 400)).toBe('Validation failed: query parameter name is required');
      expect(await failure(await get('/search?name='), 400)).toBe('Validation failed: query parameter name must not be empty');
      expect(await failure(await get('/search?name=cow&erl_version=R16'), 400)).toMatch(/erl_version/);
      expect(await failure(await get('/search?name=cow&version=..'), 400)).toMatch(/query parameter version/);
    });
  });

  describe('GET /last_builds', () => {
    it('answers the last successes, one per version, newest first', async () => {
      const list = (await envelope(await get('/last_builds'), 200)) as Record<string, unknown>[];
      expect(ids(list)).toEqual([s.e1.id, s.d1.id, s.b1.id, s.a1b.id, s.a3.id, s.a2.id]);
      expect(list.every((e) => e.success === true)).toBe(true);
      expect(list[1]).toEqual({
        build_id: s.d1.id, namespace: 'dave', name: 'other', success: true, path: `/download/${s.d1.id}`,
        build_date: '2024-05-01 10:07', version: '3.0', erl_version: '26',
      });
    });

    it('takes n', async () => {
      expect(ids(await envelope(await get('/last_builds?n=2'), 200))).toEqual([s.e1.id, s.d1.id]);
      expect(ids(await envelope(await get('/last_builds/?n=1'), 200))).toEqual([s.e1.id]);
    });

    it.each(['0', '-1', 'abc', '1.5', '1e2', '2x'])('refuses n=%s', async (n) => {
      expect(await failure(await get(`/last_builds?n=${n}`), 400)).toMatch(/^Validation failed: query parameter n /);
    });
  });

  describe('POST /builds', () => {
    it('lists the successful builds of a package, newest first, with the legacy fields', async () => {
      const list = (await envelope(await post('/builds', { full_name: 'alice/cowboy_utils' }), 200)) as Record<string, unknown>[];
      expect(ids(list)).toEqual([s.a1b.id, s.a3.id, s.a2.id, s.a1.id]);
      expect(list[0]).toEqual({
        build_id: s.a1b.id,
        result: true,
        message: 'Build succeeded',
        artifact_path: `/download/${s.a1b.id}`,
        created_date: s.a1b.createdAt.getTime(),
      });
      expect(typeof list[0].created_date).toBe('number');
    });

    it('filters by versions given as one object or a list', async () => {
      expect(ids(await envelope(await post('/builds', { full_name: 'alice/cowboy_utils', versions: { ref: '1.0.0' } }), 200)))
        .toEqual([s.a1b.id, s.a2.id, s.a1.id]);
      expect(ids(await envelope(await post('/builds', {
        full_name: 'alice/cowboy_utils', versions: [{ ref: '1.0.0', erl_version: '26' }, { ref: '1.1.0' }],
      }), 200))).toEqual([s.a3.id, s.a2.id]);
      expect(await envelope(await post('/builds', { full_name: 'alice/cowboy_utils', versions: [{ ref: '2.0.0' }] }), 200)).toEqual([]);
    });

    it('answers an empty list for an unknown package', async () => {
      expect(await envelope(await post('/builds', { full_name: 'nobody/nothing' }), 200)).toEqual([]);
    });
  });

  describe('POST /versions', () => {
    it('lists versions with a success, newest success first, with both id spellings', async () => {
      const list = await envelope(await post('/versions', { full_name: 'alice/cowboy_utils' }), 200);
      expect(list).toEqual([
        { version_id: v.a100_25, versionId: v.a100_25, ref: '1.0.0', erl_version: '25' },
        { version_id: v.a110_25, versionId: v.a110_25, ref: '1.1.0', erl_version: '25' },
        { version_id: v.a100_26, versionId: v.a100_26, ref: '1.0.0', erl_version: '26' },
      ]);
    });

    it('filters like the enot client asks', async () => {
      const list = await envelope(await post('/versions', { full_name: 'alice/cowboy_utils', versions: { ref: '1.0.0' } }), 200);
      expect((list as { ref: string; erl_version: string }[]).map((x) => `${x.ref}@${x.erl_version}`)).toEqual(['1.0.0@25', '1.0.0@26']);
      expect(await envelope(await post('/versions', { full_name: 'carol/broken' }), 200)).toEqual([]);
    });
  });

  describe('GET /download/{id}', () => {
    it('streams the exact artifact bytes with the package headers', async () => {
      const res = await get(`/download/${s.a2.id}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/x-tar');
      expect(res.headers.get('content-disposition')).toBe('attachment; filename="cowboy_utils.ep"');
      expect(res.headers.get('content-length')).toBe(String(s.a2.artifact!.length));
      expect(await bytesOf(res)).toEqual(s.a2.artifact);
    });

    it('serves an older success of a rebuilt version too', async () => {
      expect(await bytesOf(await get(`/download/${s.a1.id}`))).toEqual(s.a1.artifact);
    });

    it('answers 404 for a failed, queued, unknown, non-UUID or artifact-less build', async () => {
      for (const id of [s.a4f.id, s.a5q.id, randomUUID(), 'not-a-uuid', s.e1.id]) {
        expect(await plain(await get(`/download/${id}`), 404)).toBe('No such build');
      }
    });
  });

  describe('POST /get', () => {
    async function pkg(body: unknown): Promise<Buffer> {
      const res = await post('/get', body);
      expect(res.status).toBe(200);
      return bytesOf(res);
    }

    it('serves the newest success of the package', async () => {
      const res = await post('/get', { full_name: 'alice/cowboy_utils' });
      expect(res.headers.get('content-type')).toBe('application/x-tar');
      expect(res.headers.get('content-disposition')).toBe('attachment; filename="cowboy_utils.ep"');
      expect(await bytesOf(res)).toEqual(s.a1b.artifact);
    });

    it('filters by ref and erl_version, with versions as one object or a list', async () => {
      expect(await pkg({ full_name: 'alice/cowboy_utils', versions: { ref: '1.0.0', erl_version: '26' } })).toEqual(s.a2.artifact);
      expect(await pkg({ full_name: 'alice/cowboy_utils', versions: [{ ref: '1.1.0' }] })).toEqual(s.a3.artifact);
      expect(await pkg({ full_name: 'alice/cowboy_utils', versions: { erl_version: '26' } })).toEqual(s.a2.artifact);
      expect(await pkg({ full_name: 'alice/cowboy_utils', versions: { ref: '1.0.0', erl_version: null } })).toEqual(s.a1b.artifact);
    });

    it('uses only the first version', async () => {
      expect((await pkg({ full_name: 'alice/cowboy_utils', versions: [{ ref: '9.9' }, { ref: '1.0.0' }] })).toString())
        .toBe('No such build');
      expect(await pkg({ full_name: 'alice/cowboy_utils', versions: [{ ref: '1.1.0' }, { ref: '9.9' }] })).toEqual(s.a3.artifact);
    });

    it('answers exactly `No such build` when nothing matches or the artifact is gone', async () => {
      for (const body of [
        { full_name: 'alice/cowboy_utils', versions: { ref: '2.0.0' } },
        { full_name: 'alice/cowboy_utils', versions: [{ ref: '2.0.0', erl_version: '26' }] },
        { full_name: 'carol/broken' },
        { full_name: 'erin/ghost' },
        { full_name: 'nobody/nothing', versions: { ref: '1.0.0' } },
      ]) {
        const res = await post('/get', body);
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type')).toBe(TEXT_TYPE);
        expect(await bytesOf(res)).toEqual(Buffer.from('No such build'));
      }
    });

    it('answers a bad full_name with a 400 envelope', async () => {
      expect(await failure(await post('/get', { full_name: 'no-slash' }), 400)).toMatch(/^Validation failed: full_name /);
      expect(await failure(await post('/get', { versions: { ref: '1.0.0' } }), 400)).toBe('Validation failed: full_name is required');
    });
  });

  describe('GET /download_erts/{version}', () => {
    it('streams the ERTS tarball of a known release', async () => {
      const res = await get('/download_erts/25');
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/x-tar');
      expect(res.headers.get('content-disposition')).toBe('attachment; filename="erts-13.2.tar"');
      expect(res.headers.get('content-length')).toBe(String(ertsBytes.length));
      expect(await bytesOf(res)).toEqual(ertsBytes);
    });

    it('answers exactly `No such erlang` for an unknown release', async () => {
      const res = await get('/download_erts/26.2');
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe(TEXT_TYPE);
      expect(await bytesOf(res)).toEqual(Buffer.from('No such erlang'));
    });

    it('refuses something that is not an OTP release', async () => {
      expect(await failure(await get('/download_erts/R16B'), 400)).toMatch(/^Validation failed: path parameter version /);
      expect(await failure(await get('/download_erts/..%2F..%2Fetc'), 400)).toMatch(/path parameter version/);
    });
  });

  describe('GET /build_log', () => {
    it('answers the whole log as plain text, on both spellings of the path', async () => {
      expect(await plain(await get(`/build_log?build_id=${s.c1f.id}`), 200)).toBe(s.c1f.log);
      expect(await plain(await get(`/build_log/?build_id=${s.a4f.id}`), 200)).toBe(s.a4f.log);
      expect(await plain(await get(`/build_log?build_id=${s.a1.id}`), 200)).toBe(s.a1.log);
    });

    it('answers 404 for an unknown build or one without a log yet', async () => {
      expect(await failure(await get(`/build_log?build_id=${randomUUID()}`), 404)).toBe('No such build');
      expect(await failure(await get(`/build_log?build_id=${s.a5q.id}`), 404)).toBe(`No log for build ${s.a5q.id} yet`);
      expect(await failure(await get(`/build_log?build_id=${s.a2.id}`), 404)).toBe(`No log for build ${s.a2.id} yet`);
    });

    it('requires a UUID build_id', async () => {
      expect(await failure(await get('/build_log'), 400)).toBe('Validation failed: query parameter build_id is required');
      expect(await failure(await get('/build_log?build_id=42'), 400)).toBe('Validation failed: query parameter build_id must be a UUID');
    });
  });
});

describe('GET /last_builds with more than 100 versions', () => {
  beforeAll(async () => {
    const repo = await store.upsertRepository({ namespace: 'zeta', name: 'many', cloneUrl: 'https://github.com/zeta/many' });
    for (let i = 0; i < 101; i++) {
      const ver = await store.upsertVersion({ repositoryId: repo.id, ref: `0.${i}.0`, erlVersion: '25' });
      const build = await store.createBuild({ versionId: ver.id, createdAt: T(20) });
      await store.transitionBuild(build.id, ['queued'], 'succeeded', {
        at: new Date(T(20).getTime() + i * 60_000), artifactKey: `artifacts/${build.id}.ep`,
      });
    }
  });

  it('caps n at 100', async () => {
    const list = (await envelope(await get('/last_builds?n=1000'), 200)) as { version: string }[];
    expect(list).toHaveLength(100);
    expect(list[0].version).toBe('0.100.0');
    expect(list[99].version).toBe('0.1.0');
    expect(await envelope(await get('/last_builds'), 200)).toHaveLength(20);
  });
});

// --- (c) errors ---

describe('errors', () => {
  it('answers malformed JSON with 400 and a string', async () => {
    for (const path of ['/get', '/builds', '/versions']) {
      expect(await failure(await post(path, '{"full_name": "a/b"'), 400)).toMatch(/^Malformed JSON body/);
    }
  });

  it('parses JSON whatever the content type says', async () => {
    const res = await post('/versions', JSON.stringify({ full_name: 'a/b' }), { headers: { 'content-type': 'text/plain' } });
    expect(await envelope(res, 200)).toEqual([]);
  });

  it('answers wrong types and missing fields with 400 naming the field', async () => {
    expect(await failure(await post('/builds', { full_name: 42 }), 400)).toBe('Validation failed: full_name must be a string (got number)');
    expect(await failure(await post('/builds', {}), 400)).toBe('Validation failed: full_name is required');
    expect(await failure(await post('/builds', ''), 400)).toBe('Validation failed: full_name is required');
    expect(await failure(await post('/builds', '[1]'), 400)).toBe('Validation failed: request body must be an object (got array)');
    expect(await failure(await post('/versions', { full_name: 'a/b', versions: 'latest' }), 400))
      .toBe('Validation failed: versions must be an array (got string)');
    expect(await failure(await post('/get', { full_name: 'a/b', versions: [{ ref: 1 }] }), 400))
      .toBe('Validation failed: versions[0].ref must be a string (got number)');
  });

  it('ignores unknown fields', async () => {
    expect(await envelope(await post('/builds', { full_name: 'a/b', extra: { nested: true } }), 200)).toEqual([]);
  });

  it('answers an unknown route with 404', async () => {
    expect(await failure(await get('/nope'), 404)).toBe('No route for GET /nope');
    expect(await failure(await post('/search/more', {}), 404)).toBe('No route for POST /search/more');
  });

  it('answers a wrong method with 405 and Allow', async () => {
    const res = await get('/get');
    expect(res.headers.get('allow')).toBe('POST');
    expect(await failure(res, 405)).toBe('Method GET not allowed on /get');
    const res2 = await post('/search?name=x', {});
    expect(res2.headers.get('allow')).toBe('GET');
    expect(await failure(res2, 405)).toMatch(/^Method POST not allowed/);
  });

  it('answers a body over the limit with 413', async () => {
    const big = JSON.stringify({ full_name: 'a/b', pad: 'x'.repeat(MAX_BODY) });
    expect(await failure(await post('/builds', big), 413)).toBe(`Request body too large (limit ${MAX_BODY} bytes)`);
  });

  it('answers a chunked body over the limit with 413 without reading it all', async () => {
    const { status, body, headers } = await new Promise<{ status: number; body: string; headers: Record<string, unknown> }>(
      (resolve, reject) => {
        const req = httpRequest(`${server.url}/get`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => { text += c; });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }));
        });
        req.on('error', reject);
        // No Content-Length: the limit has to be enforced while reading.
        req.write('{"full_name": "a/b", "pad": "');
        req.write('y'.repeat(MAX_BODY * 2));
        req.end('"}');
      },
    );
    expect(status).toBe(413);
    expect(headers['content-type']).toBe(JSON_TYPE);
    expect(JSON.parse(body)).toEqual({ result: false, response: `Request body too large (limit ${MAX_BODY} bytes)` });
  });

  it('sends the request id in a header', async () => {
    const res = await get('/search?name=x');
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    await res.text();
  });
});

// Last: it installs other dependencies for the whole process.
describe('an internal fault', () => {
  let faulty: LocalServer;

  beforeAll(async () => {
    const broken = failingStore(store, 'all');
    faulty = await startLocalServer({ deps: { ...deps, store: broken }, port: 0 });
  });

  afterAll(async () => {
    await faulty?.close();
  });

  it('answers 500 naming the request id, with no stack or detail', async () => {
    for (const res of [
      await fetch(`${faulty.url}/search?name=x`),
      await fetch(`${faulty.url}/get`, { method: 'POST', body: JSON.stringify({ full_name: 'a/b' }) }),
    ]) {
      const requestId = res.headers.get('x-request-id');
      expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
      const message = await failure(res, 500);
      expect(message).toBe(`Internal error (request id ${requestId})`);
      expect(message).not.toMatch(/10\.1\.2\.3|hunter2|at /);
    }
  });
});
