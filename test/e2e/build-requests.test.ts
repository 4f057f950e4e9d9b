// POST /buildAsync, /rebuild and /callback end to end: the local server over real HTTP and a real Store (pg or
// PGlite). No builder runs, so the builds these requests make stay queued, which is what is checked; the queue
// records what it is handed. Webhook payloads are GitHub's own examples, signed as GitHub signs them.
import { webhookSecretFor } from '#adapters/secrets/webhook-secret.js';
import { sign } from '@octokit/webhooks-methods';
import type { WebhookDefinition } from '@octokit/webhooks-examples';
import { createHmac, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FsBlobStore } from '#adapters/blob/fs-blob-store.js';
import { InMemoryMetrics } from '#adapters/metrics/memory-metrics.js';
import type { BuildQueue, Store } from '#core/ports.js';
import { loadConfig } from '#functions/config.js';
import { startLocalServer, type LocalServer } from '#functions/local/server.js';
import { useDeps, type Deps } from '#functions/wiring.js';
import { invokeLambda, loadApigwEvent } from '#support/apigw-events.js';
import { openTestStore } from '#support/databases.js';
import { envelope, JSON_TYPE } from '#support/envelope-assertions.js';

// A JSON package: required, so its default export needs no interop.
const webhookExamples = createRequire(import.meta.url)('@octokit/webhooks-examples') as WebhookDefinition[];

// The secret the recorded API Gateway event for /callback (fixtures/apigw/callback-create-tag.json) is signed with.
const SECRET = 'enot-fixture-webhook-secret';
const MAX_VERSIONS = 3;
const NO_SUCH_BUILD = '{"result":false,"response":"Validation failed: No such build!"}';

class RecordingQueue implements BuildQueue {
  readonly ids: string[] = [];
  async enqueue(buildIds: readonly string[]): Promise<void> {
    this.ids.push(...buildIds);
  }
}

let dataDir: string;
let closeStore: (() => Promise<void>) | undefined;
let store: Store;
let queue: RecordingQueue;
let metrics: InMemoryMetrics;
let deps: Deps;
let server: LocalServer;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'enot-build-requests-'));
  ({ store, close: closeStore } = await openTestStore());
  const config = loadConfig({
    ENOT_DATA_DIR: dataDir,
    ENOT_LOG_LEVEL: 'silent',
    PORT: '0',
    ENOT_ALLOWED_CLONE_URLS: 'https://github.com/,file:///srv/git/',
    ENOT_DEFAULT_ERL_VERSION: '25',
    ENOT_MAX_VERSIONS_PER_REQUEST: String(MAX_VERSIONS),
    GIT_SECRET: SECRET,
  });
  queue = new RecordingQueue();
  metrics = new InMemoryMetrics();
  deps = {
    config, store, blobs: new FsBlobStore(join(dataDir, 'blobs')), metrics, queue,
    mailer: { send: () => Promise.reject(new Error('this suite sends no mail')) },
    webhookSecret: webhookSecretFor(config),
  };
  server = await startLocalServer({ deps, port: 0 });
});

afterAll(async () => {
  await server?.close();
  await closeStore?.();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

beforeEach(() => {
  queue.ids.length = 0;
});

// --- helpers ---

function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(server.url + path, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

const failure = async (res: Response, status: number) => (await envelope(res, status)) as string;

interface BuildOut {
  build_id: string;
  result: boolean;
  message: string;
  artifact_path: string;
  created_date: number;
  status: string;
}

interface Answer {
  full_name: string;
  clone_url: string;
  versions: { ref: string; erl_version: string; version_id: number; builds: BuildOut[] }[];
  notify_email: boolean | string;
}

let seq = 0;
/** A package name no other test uses. */
function fresh(): { full_name: string; clone_url: string; namespace: string; name: string } {
  seq += 1;
  const name = `pkg-${seq}-${randomUUID().slice(0, 8)}`;
  return { full_name: `e2e/${name}`, clone_url: `https://github.com/e2e/${name}.git`, namespace: 'e2e', name };
}

async function buildAsync(body: unknown): Promise<Answer> {
  return (await envelope(await post('/buildAsync', body), 200)) as Answer;
}

async function finish(id: string, outcome: 'succeeded' | 'failed'): Promise<void> {
  await store.transitionBuild(id, ['queued'], 'starting');
  await store.transitionBuild(id, ['starting'], 'running');
  const done = await store.transitionBuild(id, ['running'], outcome, outcome === 'succeeded' ? { artifactKey: `artifacts/${id}.ep` } : {});
  expect(done?.status).toBe(outcome);
}

// --- POST /buildAsync ---

describe('POST /buildAsync', () => {
  it('takes versions as a single object, fills in the default release and mail, and queues the build', async () => {
    const p = fresh();
    const answer = await buildAsync({ full_name: p.full_name, clone_url: p.clone_url, versions: { ref: '1.0.0' } });
    const build = (await store.getBuild(answer.versions[0].builds[0].build_id))!;
    expect(answer).toEqual({
      full_name: p.full_name,
      clone_url: `github.com/e2e/${p.name}`,
      versions: [{
        ref: '1.0.0', erl_version: '25', version_id: build.versionId,
        builds: [{
          build_id: build.id, result: true, message: '', artifact_path: `/download/${build.id}`,
          created_date: build.createdAt.getTime(), status: 'queued',
        }],
      }],
      notify_email: true,
    });
    expect(build.status).toBe('queued');
    expect(queue.ids).toEqual([build.id]);
  });

  it('takes a list with releases and an explicit recipient; collapses duplicates', async () => {
    const p = fresh();
    const answer = await buildAsync({
      ...p, versions: [{ ref: 'v2', erl_version: '26' }, { ref: 'v2', erl_version: '26.2' }, { ref: 'v2', erl_version: '26' }],
      notify_email: 'maintainer@example.org', unknown_field: 'ignored',
    });
    expect(answer.versions.map((v) => [v.ref, v.erl_version, v.builds[0].status])).toEqual([['v2', '26', 'queued'], ['v2', '26.2', 'queued']]);
    expect(answer.notify_email).toBe('maintainer@example.org');
    expect(queue.ids).toHaveLength(2);
  });

  it('builds once: the same request again answers the same build and queues nothing', async () => {
    const p = fresh();
    const request = { full_name: p.full_name, clone_url: p.clone_url, versions: [{ ref: '1.0' }] };
    const first = await buildAsync(request);
    const second = await buildAsync(request);
    expect(second.versions[0].builds[0].build_id).toBe(first.versions[0].builds[0].build_id);
    expect(queue.ids).toEqual([first.versions[0].builds[0].build_id]);
  });

  it('creates one build for identical requests arriving at once', async () => {
    const p = fresh();
    const request = { full_name: p.full_name, clone_url: p.clone_url, versions: [{ ref: '1.0' }] };
    const answers = await Promise.all(Array.from({ length: 6 }, () => buildAsync(request)));
    const ids = new Set(answers.map((a) => a.versions[0].builds[0].build_id));
    expect(ids.size).toBe(1);
    expect(queue.ids).toEqual([...ids]);
  });

  it('answers 409 when a name off github.com is registered with another clone URL', async () => {
    const p = fresh();
    await buildAsync({ ...p, clone_url: `file:///srv/git/${p.name}`, versions: { ref: '1.0' } });
    const message = await failure(await post('/buildAsync', { ...p, clone_url: 'file:///srv/git/mallory-fork', versions: { ref: '2.0' } }), 409);
    expect(message).toBe(
      `Repository ${p.full_name} is registered with clone URL /srv/git/${p.name}, not /srv/git/mallory-fork; `
      + 'a package name cannot move to another repository',
    );
    expect(queue.ids).toHaveLength(1);
  });

  it('answers 400 when a github.com clone URL is not the repository the name names', async () => {
    const p = fresh();
    const message = await failure(await post('/buildAsync', { ...p, clone_url: 'https://github.com/mallory/fork.git', versions: { ref: '1.0' } }), 400);
    expect(message).toBe(
      `Validation failed: full_name ${p.full_name} does not match clone_url https://github.com/mallory/fork.git: `
      + 'a package cloned from github.com is named for its repository (mallory/fork)',
    );
    expect(queue.ids).toHaveLength(0);
  });

  it('refuses clone URLs outside the allowed prefixes or unsafe to hand to git', async () => {
    const p = fresh();
    const cases: [string, string][] = [
      ['https://gitlab.com/e2e/x.git', 'clone_url must start with one of: https://github.com/, file:///srv/git/'],
      ['https://token@github.com/e2e/x.git', 'clone_url must not carry credentials (user@host)'],
      ['https://github.com/e2e/../../x', 'clone_url must not contain .. path segments'],
      ['file:///srv/git/../../etc', 'clone_url must not contain .. path segments'],
      ['--upload-pack=id', 'clone_url must not start with -'],
      ['https://github.com/e2e/x y', 'clone_url must not contain spaces or control characters'],
    ];
    for (const [clone_url, problem] of cases) {
      expect(await failure(await post('/buildAsync', { full_name: p.full_name, clone_url, versions: { ref: '1.0' } }), 400), clone_url)
        .toBe(`Validation failed: ${problem}`);
    }
    expect(await store.getRepository(p)).toBeNull();
    expect(queue.ids).toEqual([]);
  });

  it('refuses refs that are not plain tags, naming the field', async () => {
    const p = fresh();
    for (const ref of ['-x', 'a..b', '$(id)', 'a/b', 'a b', '', 'x'.repeat(101)]) {
      const message = await failure(await post('/buildAsync', { ...p, versions: [{ ref }] }), 400);
      expect(message, ref).toMatch(/^Validation failed: versions\[0\]\.ref must be a git tag/);
    }
    expect(await failure(await post('/buildAsync', { ...p, versions: { ref: '1.0', erl_version: '25; id' } }), 400))
      .toBe('Validation failed: versions[0].erl_version must be an OTP release such as 25 or 26.2');
    expect(await store.getRepository(p)).toBeNull();
  });

  it('rejects the whole request when one version of a list is bad, before writing anything', async () => {
    const p = fresh();
    const message = await failure(await post('/buildAsync', { ...p, versions: [{ ref: '1.0' }, { ref: '$(id)' }] }), 400);
    expect(message).toMatch(/^Validation failed: versions\[1\]\.ref /);
    expect(await store.getRepository(p)).toBeNull();
    expect(queue.ids).toEqual([]);
  });

  it('refuses more versions than configured, and none', async () => {
    const p = fresh();
    const versions = ['1', '2', '3', '4'].map((ref) => ({ ref }));
    expect(await failure(await post('/buildAsync', { ...p, versions }), 400))
      .toBe(`Validation failed: versions must hold at most ${MAX_VERSIONS} entries`);
    expect(await failure(await post('/buildAsync', { ...p, versions: [] }), 400))
      .toBe('Validation failed: versions must name at least one version');
    expect(await store.getRepository(p)).toBeNull();
  });

  it('names missing and mistyped fields, and refuses a notify_email that is no address', async () => {
    const p = fresh();
    expect(await failure(await post('/buildAsync', { clone_url: p.clone_url, versions: { ref: '1' } }), 400))
      .toBe('Validation failed: full_name is required');
    expect(await failure(await post('/buildAsync', { full_name: p.full_name, versions: { ref: '1' } }), 400))
      .toBe('Validation failed: clone_url is required');
    expect(await failure(await post('/buildAsync', { full_name: p.full_name, clone_url: p.clone_url }), 400))
      .toBe('Validation failed: versions is required');
    expect(await failure(await post('/buildAsync', { ...p, versions: { erl_version: '25' } }), 400))
      .toBe('Validation failed: versions[0].ref is required');
    for (const notify_email of ['not an address', 'a@b', 'x@example.org\r\nBcc: y@example.org', 3]) {
      expect(await failure(await post('/buildAsync', { ...p, versions: { ref: '1' }, notify_email }), 400), String(notify_email))
        .toBe('Validation failed: notify_email must be true, false or an email address');
    }
    expect(await failure(await post('/buildAsync', '{"full_name":'), 400)).toMatch(/^Malformed JSON body: /);
    expect(await store.getRepository(p)).toBeNull();
  });

  it('answers a wrong method with the envelope', async () => {
    const res = await fetch(`${server.url}/buildAsync`);
    expect(await failure(res, 405)).toBe('Method GET not allowed on /buildAsync');
  });
});

// --- POST /rebuild ---

describe('POST /rebuild', () => {
  it('answers an unknown or malformed id with exactly "Validation failed: No such build!"', async () => {
    for (const build_id of [randomUUID(), 'not-a-uuid', '']) {
      const res = await post('/rebuild', { build_id });
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toBe(JSON_TYPE);
      expect(await res.text()).toBe(NO_SUCH_BUILD);
    }
    expect(await failure(await post('/rebuild', {}), 400)).toBe('Validation failed: build_id is required');
  });

  it('queues a new build of the same version, even after a success', async () => {
    const p = fresh();
    const first = await buildAsync({ ...p, versions: { ref: '1.0', erl_version: '26' } });
    const old = first.versions[0].builds[0].build_id;
    await finish(old, 'succeeded');
    queue.ids.length = 0;
    const again = (await envelope(await post('/rebuild', { build_id: old }), 200)) as BuildOut;
    expect(again.build_id).not.toBe(old);
    expect(again).toMatchObject({ result: true, message: '', artifact_path: `/download/${again.build_id}`, status: 'queued' });
    expect(await store.getBuild(again.build_id)).toMatchObject({
      status: 'queued', versionId: first.versions[0].version_id, ref: '1.0', erlVersion: '26',
    });
    expect(queue.ids).toEqual([again.build_id]);
    expect((await store.getBuild(old))?.status).toBe('succeeded');
  });

  it('answers the build already in flight instead of queueing a second one', async () => {
    const p = fresh();
    const first = await buildAsync({ ...p, versions: { ref: '1.0' } });
    const old = first.versions[0].builds[0].build_id;
    await finish(old, 'failed');
    const rebuilt = (await envelope(await post('/rebuild', { build_id: old }), 200)) as BuildOut;
    queue.ids.length = 0;
    for (const id of [old, rebuilt.build_id]) {
      expect(await envelope(await post('/rebuild', { build_id: id }), 200)).toMatchObject({ build_id: rebuilt.build_id, status: 'queued' });
    }
    expect(queue.ids).toEqual([]);
  });
});

// --- POST /callback ---

type Example = Record<string, unknown> & { repository?: Record<string, unknown> };

function example(name: string): Example {
  const definition = webhookExamples.find((d) => d.name === name);
  if (!definition) throw new Error(`no ${name} example`);
  return structuredClone(definition.examples[0]) as unknown as Example;
}

/** GitHub's `create` example for a tag, moved to a repository of its own so tests do not meet. */
function tagCreated(ref = 'simple-tag'): { payload: Example; full_name: string } {
  const payload = example('create');
  const name = `Hello-World-${randomUUID().slice(0, 8)}`;
  const full_name = `Codertocat/${name}`;
  payload.ref = ref;
  payload.repository = { ...payload.repository, name, full_name, clone_url: `https://github.com/${full_name}.git` };
  return { payload, full_name };
}

async function deliver(
  event: string, payload: unknown, options: { secret?: string; legacy?: boolean; delivery?: string; headers?: Record<string, string> } = {},
): Promise<Response> {
  const body = typeof payload === 'string' ? payload : JSON.stringify(payload);
  const secret = options.secret ?? SECRET;
  const signature: Record<string, string> = options.legacy
    ? { 'X-Hub-Signature': `sha1=${createHmac('sha1', secret).update(body).digest('hex')}` }
    : { 'X-Hub-Signature-256': await sign(secret, body) };
  return post('/callback', body, {
    'X-GitHub-Event': event,
    'X-GitHub-Delivery': options.delivery ?? randomUUID(),
    'User-Agent': 'GitHub-Hookshot/e2e',
    ...signature,
    ...options.headers,
  });
}

async function repositoryOf(full_name: string) {
  const [namespace, name] = full_name.split('/');
  return store.getRepository({ namespace, name });
}

describe('POST /callback', () => {
  it('answers a signed ping with pong and queues nothing', async () => {
    expect(await envelope(await deliver('ping', example('ping')), 200)).toBe('pong');
    expect(queue.ids).toEqual([]);
  });

  it('queues a created tag for the default release, mailing the commit author', async () => {
    const { payload, full_name } = tagCreated('v1.0.0');
    const answer = (await envelope(await deliver('create', payload), 200)) as Answer;
    expect(answer).toMatchObject({ full_name, clone_url: `github.com/${full_name}`, notify_email: true });
    expect(answer.versions.map((v) => [v.ref, v.erl_version, v.builds[0].status])).toEqual([['v1.0.0', '25', 'queued']]);
    const id = answer.versions[0].builds[0].build_id;
    expect(await store.getBuildJob(id)).toMatchObject({
      status: 'queued', ref: 'v1.0.0', erlVersion: '25', cloneUrl: `https://github.com/${full_name}.git`, notify: true, notifyEmail: null,
    });
    expect(queue.ids).toEqual([id]);
  });

  it('handles a delivery once: the same X-GitHub-Delivery again queues nothing', async () => {
    const { payload } = tagCreated();
    const delivery = randomUUID();
    await envelope(await deliver('create', payload, { delivery }), 200);
    expect(queue.ids).toHaveLength(1);
    expect(await envelope(await deliver('create', payload, { delivery }), 200)).toBe(`delivery ${delivery} was already handled`);
    expect(queue.ids).toHaveLength(1);
  });

  it('accepts the legacy sha1 signature', async () => {
    const { payload, full_name } = tagCreated('v0.9');
    const answer = (await envelope(await deliver('create', payload, { legacy: true }), 200)) as Answer;
    expect(answer.full_name).toBe(full_name);
    expect(queue.ids).toHaveLength(1);
  });

  it('verifies the exact bytes sent, non-ASCII included', async () => {
    const { payload } = tagCreated('v1.1');
    payload.description = 'Ünïcödé ✓ 漢字';
    const body = JSON.stringify(payload, null, 1);
    await envelope(await deliver('create', body), 200);
    expect(queue.ids).toHaveLength(1);
  });

  it('accepts GitHub\'s form encoding (payload=<json>)', async () => {
    const body = `payload=${encodeURIComponent(JSON.stringify(example('ping')))}`;
    expect(await envelope(await deliver('ping', body, { headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 200)).toBe('pong');
  });

  it('refuses a forged signature, a missing one and one under another secret with 401, recording nothing', async () => {
    const { payload, full_name } = tagCreated();
    const body = JSON.stringify(payload);
    const good = await sign(SECRET, body);
    const forged = good.slice(0, -1) + (good.endsWith('0') ? '1' : '0');
    const unsigned = { 'content-type': 'application/json', 'X-GitHub-Event': 'create', 'X-GitHub-Delivery': randomUUID() };
    expect(await failure(await fetch(`${server.url}/callback`, {
      method: 'POST', headers: { ...unsigned, 'X-Hub-Signature-256': forged }, body,
    }), 401)).toBe('Webhook refused: X-Hub-Signature-256 does not match the body');
    expect(await failure(await fetch(`${server.url}/callback`, { method: 'POST', headers: unsigned, body }), 401))
      .toBe('Webhook refused: no X-Hub-Signature-256 (or X-Hub-Signature) header');
    expect(await failure(await deliver('create', payload, { secret: 'not the secret' }), 401))
      .toBe('Webhook refused: X-Hub-Signature-256 does not match the body');
    expect(await failure(await deliver('create', payload, { secret: 'not the secret', legacy: true }), 401))
      .toBe('Webhook refused: X-Hub-Signature does not match the body');
    // Signed, but then changed on the way.
    const tampered = body.replace('"ref":"simple-tag"', '"ref":"other-tag"');
    expect(tampered).not.toBe(body);
    expect(await failure(await fetch(`${server.url}/callback`, {
      method: 'POST', headers: { ...unsigned, 'X-Hub-Signature-256': good }, body: tampered,
    }), 401)).toBe('Webhook refused: X-Hub-Signature-256 does not match the body');
    expect(await repositoryOf(full_name)).toBeNull();
    expect(queue.ids).toEqual([]);
  });

  it('refuses every delivery when no secret is configured', async () => {
    const config = { ...deps.config, gitSecret: undefined };
    useDeps({ ...deps, config, webhookSecret: webhookSecretFor(config) });
    try {
      expect(await failure(await deliver('ping', example('ping')), 401))
        .toBe('Webhook refused: no webhook secret is configured on this service');
    } finally {
      useDeps(deps);
    }
    expect(await envelope(await deliver('ping', example('ping')), 200)).toBe('pong');
  });

  it('ignores branch creation and pushes, saying why', async () => {
    const branch = tagCreated();
    branch.payload.ref_type = 'branch';
    branch.payload.ref = 'feature/x';
    expect(await envelope(await deliver('create', branch.payload), 200)).toBe('ignored: create event for a branch (only tags are built)');
    expect(await envelope(await deliver('push', example('push')), 200))
      .toBe('ignored: push events are not built (only the creation of a tag is)');
    expect(await repositoryOf(branch.full_name)).toBeNull();
    expect(queue.ids).toEqual([]);
  });

  it('refuses a tag whose clone URL is not the repository on GitHub, or whose fields are malformed', async () => {
    const { payload, full_name } = tagCreated();
    payload.repository = { ...payload.repository, clone_url: 'https://evil.example/x.git' };
    expect(await failure(await deliver('create', payload), 400))
      .toBe(`Validation failed: repository.clone_url must be https://github.com/${full_name} or https://github.com/${full_name}.git`);
    const badRef = tagCreated('$(id)');
    expect(await failure(await deliver('create', badRef.payload), 400)).toMatch(/^Validation failed: ref must be a git tag/);
    expect(await failure(await deliver('create', '{"ref_type":'), 400)).toMatch(/^Malformed JSON body: /);
    expect(await repositoryOf(full_name)).toBeNull();
    expect(queue.ids).toEqual([]);
  });
});

// --- the same handler as Lambda runs it, on a recorded API Gateway event ---

describe('POST /callback invoked as Lambda', () => {
  const resultOf = async (event: Awaited<ReturnType<typeof loadApigwEvent>>) => {
    const { result } = await invokeLambda(event);
    const r = result as { statusCode: number; body: string };
    return { status: r.statusCode, body: JSON.parse(r.body) as { result: boolean; response: unknown } };
  };

  it('verifies the body API Gateway hands over, as text or base64, whatever the case of the header names', async () => {
    const recorded = await loadApigwEvent('callback-create-tag');
    const first = await resultOf(recorded);
    expect(first.status).toBe(200);
    const answer = first.body.response as Answer;
    expect(answer.full_name).toBe('octo-fixture/hello-erlang');
    expect(answer.versions[0]).toMatchObject({ ref: 'v1.0.0', erl_version: '25' });
    expect(queue.ids).toEqual([answer.versions[0].builds[0].build_id]);

    const again = await resultOf(await loadApigwEvent('callback-create-tag'));
    expect(again).toEqual({ status: 200, body: { result: true, response: 'delivery 7f1c2a90-5b3e-11ef-8a4c-2d9e0b6a3c11 was already handled' } });

    // Binary media types make API Gateway hand the body over in base64; names may arrive in any case.
    const base64 = await loadApigwEvent('callback-create-tag');
    base64.body = Buffer.from(base64.body!, 'utf8').toString('base64');
    base64.isBase64Encoded = true;
    base64.headers = Object.fromEntries(Object.entries(base64.headers).map(([k, v]) => [k.toLowerCase(), v]));
    base64.headers['x-github-delivery'] = randomUUID();
    const other = await resultOf(base64);
    expect(other.status).toBe(200);
    // A new delivery of a tag already queued finds its build (build once).
    expect((other.body.response as Answer).versions[0].builds[0].build_id).toBe(answer.versions[0].builds[0].build_id);
    expect(queue.ids).toHaveLength(1);
  });

  it('refuses the recorded event once its body is changed', async () => {
    const tampered = await loadApigwEvent('callback-create-tag');
    tampered.body = tampered.body!.replace('v1.0.0', 'v6.6.6');
    tampered.headers['X-GitHub-Delivery'] = randomUUID();
    expect(await resultOf(tampered)).toEqual({
      status: 401, body: { result: false, response: 'Webhook refused: X-Hub-Signature-256 does not match the body' },
    });
    expect(queue.ids).toEqual([]);
  });
});
