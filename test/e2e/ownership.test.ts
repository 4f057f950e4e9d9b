// Ownership, admin and owner tokens, deletion and retirement end to end: the local server over real HTTP, a real
// Store (pg or PGlite) and files for blobs. Admin tokens come from ENOT_ADMIN_TOKENS (one hashed, one plain).
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '#adapters/blob/fs-blob-store.js';
import { InMemoryMetrics } from '#adapters/metrics/memory-metrics.js';
import type { BuildQueue, Store } from '#core/ports.js';
import { loadConfig } from '#functions/config.js';
import { startLocalServer, type LocalServer } from '#functions/local/server.js';
import type { Deps } from '#functions/wiring.js';
import { openTestStore } from '#support/databases.js';
import { envelope } from '#support/envelope-assertions.js';

const ADMIN = `admin-${randomBytes(16).toString('hex')}`;
const PLAIN_ADMIN = `plain-${randomBytes(16).toString('hex')}`;
const RUN = randomBytes(3).toString('hex');

class RecordingQueue implements BuildQueue {
  readonly ids: string[] = [];
  async enqueue(buildIds: readonly string[]): Promise<void> {
    this.ids.push(...buildIds);
  }
}

let dataDir: string;
let closeStore: (() => Promise<void>) | undefined;
let store: Store;
let blobs: FsBlobStore;
let queue: RecordingQueue;
let server: LocalServer;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'enot-ownership-'));
  ({ store, close: closeStore } = await openTestStore());
  blobs = new FsBlobStore(join(dataDir, 'blobs'));
  queue = new RecordingQueue();
  const config = loadConfig({
    ENOT_DATA_DIR: dataDir, ENOT_LOG_LEVEL: 'silent', PORT: '0', ENOT_DEFAULT_ERL_VERSION: '25',
    ENOT_ALLOWED_CLONE_URLS: 'https://github.com/,file:///srv/git/',
    ENOT_ADMIN_TOKENS: `sha256:${createHash('sha256').update(ADMIN).digest('hex')}, ${PLAIN_ADMIN}`,
  });
  const deps: Deps = {
    config, store, blobs, metrics: new InMemoryMetrics(), queue,
    mailer: { send: () => Promise.reject(new Error('this suite sends no mail')) },
    webhookSecret: () => Promise.resolve(undefined),
  };
  server = await startLocalServer({ deps, port: 0 });
});

afterAll(async () => {
  await server?.close();
  await closeStore?.();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

// --- helpers ---

function call(method: string, path: string, token?: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  return fetch(server.url + path, {
    method, headers, redirect: 'manual', ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

async function problemOf(res: Response, status: number): Promise<{ detail: string }> {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  const body = await res.json() as { status: number; title: string; detail: string; type: string };
  expect(body).toMatchObject({ type: 'about:blank', status });
  return body;
}

interface Seeded {
  buildId: string;
  artifact: Buffer;
  keys: string[];
}

/** A package version with a successful build whose artifact and log are in the blob store, finished at `at`. */
async function seedSuccess(namespace: string, name: string, ref: string, at: Date, cloneUrl?: string): Promise<Seeded> {
  const repo = await store.upsertRepository({ namespace, name, cloneUrl: cloneUrl ?? `https://github.com/${namespace}/${name}` });
  const version = await store.upsertVersion({ repositoryId: repo.id, ref, erlVersion: '25' });
  const build = await store.createBuild({ versionId: version.id });
  await store.transitionBuild(build.id, ['queued'], 'running');
  const artifact = randomBytes(512);
  const keys = [`artifacts/${build.id}.ep`, `logs/${build.id}.log`];
  await blobs.put(keys[0], artifact, 'application/x-tar');
  await blobs.put(keys[1], `built ${ref}\n`, 'text/plain');
  await store.transitionBuild(build.id, ['running'], 'succeeded', {
    at, artifactKey: keys[0], artifactSize: artifact.length, logKey: keys[1],
    artifactSha256: createHash('sha256').update(artifact).digest('hex'),
  });
  return { buildId: build.id, artifact, keys };
}

async function issueToken(namespace: string, name: string): Promise<{ id: string; token: string }> {
  const res = await call('POST', `/v2/packages/${namespace}/${name}/tokens`, ADMIN, { label: 'ci' });
  expect(res.status).toBe(201);
  expect(res.headers.get('cache-control')).toBe('no-store');
  return await res.json() as { id: string; token: string };
}

async function postGet(fullName: string, ref?: string): Promise<Buffer> {
  const res = await call('POST', '/get', undefined, { full_name: fullName, versions: ref ? [{ ref }] : [] });
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

// --- item 1: names on github.com belong to their repository ---

describe('ownership of names', () => {
  it('refuses a github.com name that is not the clone URL\'s repository, and writes nothing', async () => {
    const res = await call('POST', '/buildAsync', undefined, {
      full_name: `gh${RUN}/squat`, clone_url: 'https://github.com/evil/other', versions: [{ ref: '1.0.0' }],
    });
    expect(await envelope(res, 400)).toContain(`full_name gh${RUN}/squat does not match clone_url https://github.com/evil/other`);
    expect(await store.getRepository({ namespace: `gh${RUN}`, name: 'squat' })).toBeNull();
  });

  it('accepts the repository\'s own name in any case', async () => {
    const res = await call('POST', '/buildAsync', undefined, {
      full_name: `Own${RUN}/Repo`, clone_url: `https://github.com/own${RUN}/repo.git`, versions: [{ ref: '1.0.0' }],
    });
    expect(await envelope(res, 200)).toMatchObject({ full_name: `Own${RUN}/Repo` });
  });

  it('keeps a name on another host for its first clone URL until an admin moves it', async () => {
    const fullName = `local${RUN}/pkg`;
    const first = await call('POST', '/buildAsync', undefined, { full_name: fullName, clone_url: `file:///srv/git/first${RUN}`, versions: [{ ref: '1.0.0' }] });
    expect(first.status).toBe(200);
    const second = { full_name: fullName, clone_url: `file:///srv/git/second${RUN}`, versions: [{ ref: '1.0.0' }] };
    expect((await call('POST', '/buildAsync', undefined, second)).status).toBe(409);

    const path = `/v2/packages/local${RUN}/pkg/clone-url`;
    await problemOf(await call('PUT', path, undefined, { clone_url: second.clone_url }), 401);
    await problemOf(await call('PUT', path, ADMIN, { clone_url: 'ftp://elsewhere/x' }), 400);
    const moved = await call('PUT', path, ADMIN, { clone_url: second.clone_url });
    expect(moved.status).toBe(200);
    expect(await moved.json()).toEqual({ full_name: fullName, clone_url: second.clone_url });
    expect((await call('POST', '/buildAsync', undefined, second)).status).toBe(200);
  });

  it('will not move a github.com name to another repository', async () => {
    await seedSuccess(`mv${RUN}`, 'pkg', '1.0.0', new Date());
    const res = await call('PUT', `/v2/packages/mv${RUN}/pkg/clone-url`, ADMIN, { clone_url: 'https://github.com/evil/other' });
    expect((await problemOf(res, 400)).detail).toContain('does not match');
  });

  it('lists names registered against another GitHub repository, for an admin only', async () => {
    await store.upsertRepository({ namespace: `taken${RUN}`, name: 'pkg', cloneUrl: 'https://github.com/evil/other' });
    await problemOf(await call('GET', '/v2/admin/conflicts'), 401);
    const res = await call('GET', '/v2/admin/conflicts', PLAIN_ADMIN);
    expect(res.status).toBe(200);
    const { conflicts } = await res.json() as { conflicts: { full_name: string; cloned_repository: string }[] };
    expect(conflicts).toContainEqual(expect.objectContaining({ full_name: `taken${RUN}/pkg`, cloned_repository: 'evil/other' }));
    expect(conflicts.map((c) => c.full_name)).not.toContain(`mv${RUN}/pkg`);
  });
});

// --- item 2: tokens ---

describe('admin and owner tokens', () => {
  it('answers 401 with WWW-Authenticate for a missing, malformed or wrong token, as problem details', async () => {
    const path = '/v2/admin/conflicts';
    const missing = await call('GET', path);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer realm="enot-builder"');
    expect((await problemOf(missing, 401)).detail).toContain('Bearer');
    await problemOf(await call('GET', path, 'not-a-token'), 401);
    await problemOf(await call('GET', path, `${ADMIN}x`), 401);
    const basic = await fetch(server.url + path, { headers: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` } });
    await problemOf(basic, 401);
  });

  it('issues an owner token once, stores only its hash, and revokes it', async () => {
    await seedSuccess(`tok${RUN}`, 'pkg', '1.0.0', new Date());
    const issued = await issueToken(`tok${RUN}`, 'pkg');
    expect(issued.token).toMatch(/^enot_[A-Za-z0-9_-]{43}$/);
    const stored = await store.findOwnerToken(createHash('sha256').update(issued.token).digest('hex'));
    expect(stored).toMatchObject({ id: issued.id, namespace: `tok${RUN}`, name: 'pkg' });
    // The owner may retire its package but not administer it.
    const retire = `/v2/packages/tok${RUN}/pkg/versions/1.0.0/retirement`;
    expect((await call('PUT', retire, issued.token, { reason: 'other', message: 'x' })).status).toBe(204);
    await problemOf(await call('POST', `/v2/packages/tok${RUN}/pkg/tokens`, issued.token, {}), 403);
    await problemOf(await call('DELETE', `/v2/packages/tok${RUN}/pkg/tokens/${issued.id}`, issued.token), 403);

    await problemOf(await call('DELETE', `/v2/packages/tok${RUN}/pkg/tokens/${issued.id}`), 401);
    expect((await call('DELETE', `/v2/packages/tok${RUN}/pkg/tokens/${issued.id}`, ADMIN)).status).toBe(204);
    await problemOf(await call('DELETE', `/v2/packages/tok${RUN}/pkg/tokens/${issued.id}`, ADMIN), 404);
    await problemOf(await call('DELETE', retire, issued.token), 401);
  });

  it('answers 404 for a token of an unknown package and 400 for a bad path, as problems', async () => {
    await problemOf(await call('POST', `/v2/packages/none${RUN}/pkg/tokens`, ADMIN, {}), 404);
    await problemOf(await call('DELETE', `/v2/packages/none${RUN}/pkg/tokens/not-a-uuid`, ADMIN), 400);
    await problemOf(await call('POST', `/v2/packages/tok${RUN}/pkg/tokens`, ADMIN, { label: 7 }), 400);
  });

  const adminOnly = (pkg: string, buildId: string) => [
    ['DELETE', `/v2/builds/${buildId}`],
    ['DELETE', `/v2/packages/${pkg}/versions/1.0.0`],
    ['DELETE', `/v2/packages/${pkg}`],
    ['POST', `/v2/packages/${pkg}/tokens`],
    ['PUT', `/v2/packages/${pkg}/clone-url`],
    ['GET', '/v2/admin/conflicts'],
  ] as const;

  it('refuses every admin operation without a token (401), with a wrong one (401) and with an owner token (403)', async () => {
    const seeded = await seedSuccess(`adm${RUN}`, 'pkg', '1.0.0', new Date());
    const owner = await issueToken(`adm${RUN}`, 'pkg');
    for (const [method, path] of adminOnly(`adm${RUN}/pkg`, seeded.buildId)) {
      const body = method === 'PUT' ? { clone_url: 'https://github.com/x/y' } : undefined;
      await problemOf(await call(method, path, undefined, body), 401);
      await problemOf(await call(method, path, `enot_${randomBytes(32).toString('base64url')}`, body), 401);
      await problemOf(await call(method, path, owner.token, body), 403);
    }
    // Nothing was removed by the refused calls.
    expect(await store.getBuild(seeded.buildId)).not.toBeNull();
    expect(await blobs.get(seeded.keys[0])).toEqual(seeded.artifact);
  });

  it('lets the owner or an admin rebuild outside the rate limits, and nobody else', async () => {
    const mine = await seedSuccess(`rb${RUN}`, 'pkg', '1.0.0', new Date());
    const other = await seedSuccess(`rbo${RUN}`, 'pkg', '1.0.0', new Date());
    const owner = await issueToken(`rb${RUN}`, 'pkg');
    const path = `/v2/builds/${mine.buildId}/rebuild`;
    await problemOf(await call('POST', path), 401);
    await problemOf(await call('POST', path, 'wrong'), 401);
    await problemOf(await call('POST', `/v2/builds/${other.buildId}/rebuild`, owner.token), 403);
    const res = await call('POST', path, owner.token);
    expect(res.status).toBe(200);
    const build = await res.json() as { build_id: string; status: string };
    expect(build.status).toBe('queued');
    expect(queue.ids).toContain(build.build_id);
    // A second asks finds the one in flight (never two).
    expect((await (await call('POST', path, ADMIN)).json() as { build_id: string }).build_id).toBe(build.build_id);
    await problemOf(await call('POST', `/v2/builds/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}/rebuild`, ADMIN), 404);
  });
});

// --- deletion ---

describe('deletion', () => {
  it('deletes a build, a ref and a package with their blobs, and leaves other packages intact', async () => {
    const old = await seedSuccess(`del${RUN}`, 'pkg', '1.0.0', new Date(Date.now() - 60_000));
    const newer = await seedSuccess(`del${RUN}`, 'pkg', '1.0.0', new Date(Date.now() - 30_000));
    const two = await seedSuccess(`del${RUN}`, 'pkg', '2.0.0', new Date());
    const keep = await seedSuccess(`keep${RUN}`, 'pkg', '1.0.0', new Date());

    // One build: the version shows the older success again.
    expect((await call('DELETE', `/v2/builds/${newer.buildId}`, ADMIN)).status).toBe(204);
    expect(await store.getBuild(newer.buildId)).toBeNull();
    for (const key of newer.keys) expect(await blobs.get(key)).toBeNull();
    expect(await postGet(`del${RUN}/pkg`, '1.0.0')).toEqual(old.artifact);
    const search = await (await call('GET', `/search?name=pkg&namespace=del${RUN}&version=1.0.0`)).json() as { response: { build_id: string }[] };
    expect(search.response.map((e) => e.build_id)).toEqual([old.buildId]);
    await problemOf(await call('DELETE', `/v2/builds/${newer.buildId}`, ADMIN), 404);

    // A ref: every build of it and their blobs.
    expect((await call('DELETE', `/v2/packages/del${RUN}/pkg/versions/1.0.0`, ADMIN)).status).toBe(204);
    expect(await store.getBuild(old.buildId)).toBeNull();
    for (const key of old.keys) expect(await blobs.get(key)).toBeNull();
    expect((await postGet(`del${RUN}/pkg`, '1.0.0')).toString()).toBe('No such build');
    expect(await postGet(`del${RUN}/pkg`, '2.0.0')).toEqual(two.artifact);
    await problemOf(await call('DELETE', `/v2/packages/del${RUN}/pkg/versions/1.0.0`, ADMIN), 404);

    // The package: rows, blobs and owner tokens; the name is free again.
    const owner = await issueToken(`del${RUN}`, 'pkg');
    expect((await call('DELETE', `/v2/packages/del${RUN}/pkg`, ADMIN)).status).toBe(204);
    expect(await store.getRepository({ namespace: `del${RUN}`, name: 'pkg' })).toBeNull();
    expect(await store.getBuild(two.buildId)).toBeNull();
    for (const key of two.keys) expect(await blobs.get(key)).toBeNull();
    await problemOf(await call('PUT', `/v2/packages/del${RUN}/pkg/versions/2.0.0/retirement`, owner.token, { reason: 'other' }), 401);
    await problemOf(await call('DELETE', `/v2/packages/del${RUN}/pkg`, ADMIN), 404);

    // The other package is untouched.
    expect(await store.getBuild(keep.buildId)).not.toBeNull();
    for (const key of keep.keys) expect(await blobs.get(key)).not.toBeNull();
    expect(await postGet(`keep${RUN}/pkg`)).toEqual(keep.artifact);
  });

  it('refuses to delete a build in flight (409) and keeps it', async () => {
    const repo = await store.upsertRepository({ namespace: `fly${RUN}`, name: 'pkg', cloneUrl: `https://github.com/fly${RUN}/pkg` });
    const version = await store.upsertVersion({ repositoryId: repo.id, ref: '1.0.0', erlVersion: '25' });
    const build = await store.createBuild({ versionId: version.id });
    await problemOf(await call('DELETE', `/v2/builds/${build.id}`, ADMIN), 409);
    await problemOf(await call('DELETE', `/v2/packages/fly${RUN}/pkg`, ADMIN), 409);
    expect(await store.getBuild(build.id)).not.toBeNull();
  });
});

// --- item 6: retirement ---

describe('retirement', () => {
  it('leaves a retired ref out of /versions, /last_builds and /get without a ref, shows it in /search, serves it by ref', async () => {
    const ns = `ret${RUN}`;
    const one = await seedSuccess(ns, 'pkg', '1.0.0', new Date(Date.now() - 60_000));
    const two = await seedSuccess(ns, 'pkg', '2.0.0', new Date(Date.now() + 60_000));
    const owner = await issueToken(ns, 'pkg');
    const other = await seedSuccess(`reto${RUN}`, 'pkg', '1.0.0', new Date());
    const otherOwner = await issueToken(`reto${RUN}`, 'pkg');
    const path = `/v2/packages/${ns}/pkg/versions/2.0.0/retirement`;
    const body = { reason: 'security', message: 'CVE-2026-0001: use 1.0.0' };

    const versions = async () => ((await (await call('POST', '/versions', undefined, { full_name: `${ns}/pkg` })).json()) as { response: { ref: string }[] }).response.map((v) => v.ref);
    const lastBuilds = async () => ((await (await call('GET', '/last_builds?n=100')).json()) as { response: { build_id: string }[] }).response.map((b) => b.build_id);
    const searched = async () => ((await (await call('GET', `/search?name=pkg&namespace=${ns}`)).json()) as { response: Record<string, unknown>[] }).response;

    expect(await versions()).toEqual(['2.0.0', '1.0.0']);
    expect(await postGet(`${ns}/pkg`)).toEqual(two.artifact);

    await problemOf(await call('PUT', path, undefined, body), 401);
    await problemOf(await call('PUT', path, 'enot_wrong', body), 401);
    await problemOf(await call('PUT', path, otherOwner.token, body), 403);
    await problemOf(await call('PUT', path, owner.token, { reason: 'bored', message: '' }), 400);
    await problemOf(await call('PUT', `/v2/packages/${ns}/pkg/versions/9.9.9/retirement`, owner.token, body), 404);
    expect(await versions()).toEqual(['2.0.0', '1.0.0']);

    expect((await call('PUT', path, owner.token, body)).status).toBe(204);
    expect(await versions()).toEqual(['1.0.0']);
    const last = await lastBuilds();
    expect(last).not.toContain(two.buildId);
    expect(last).toContain(other.buildId);
    expect(await postGet(`${ns}/pkg`)).toEqual(one.artifact);
    expect(await postGet(`${ns}/pkg`, '2.0.0')).toEqual(two.artifact);
    const entries = await searched();
    expect(entries.find((e) => e.version === '2.0.0')?.retired).toEqual({ reason: 'security', message: body.message });
    expect(entries.find((e) => e.version === '1.0.0')).not.toHaveProperty('retired');
    // A retired ref built for another OTP release later is retired too.
    const repo = await store.getRepository({ namespace: ns, name: 'pkg' });
    await store.upsertVersion({ repositoryId: repo!.id, ref: '2.0.0', erlVersion: '26' });
    const v26 = await store.searchPackages({ name: 'pkg', namespace: ns, ref: '2.0.0', limit: 10 });
    expect(v26.every((b) => b.retirement?.reason === 'security')).toBe(true);

    await problemOf(await call('DELETE', path), 401);
    await problemOf(await call('DELETE', path, otherOwner.token), 403);
    expect((await call('DELETE', path, ADMIN)).status).toBe(204);
    expect(await versions()).toEqual(['2.0.0', '1.0.0']);
    expect(await lastBuilds()).toContain(two.buildId);
    expect(await postGet(`${ns}/pkg`)).toEqual(two.artifact);
    expect((await searched()).find((e) => e.version === '2.0.0')).not.toHaveProperty('retired');
  });
});
