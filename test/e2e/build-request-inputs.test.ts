// What a build request is refused for at request time, over real HTTP against the local server and a real Store:
// clone URLs that git would read otherwise than they are judged (escapes, links, hosts git ignores), refs that are
// not tags, releases in a second spelling; each a 400 in the envelope with nothing written. And a webhook body
// replayed with fresh delivery ids against a failed tag: the failed build is answered, not built again.
import { webhookSecretFor } from '#adapters/secrets/webhook-secret.js';
import { createHmac, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FsBlobStore } from '#adapters/blob/fs-blob-store.js';
import { realPathOnThisMachine } from '#adapters/paths/real-path.js';
import { InMemoryMetrics } from '#adapters/metrics/memory-metrics.js';
import type { BuildQueue, Store } from '#core/ports.js';
import { loadConfig } from '#functions/config.js';
import { startLocalServer, type LocalServer } from '#functions/local/server.js';
import type { Deps } from '#functions/wiring.js';
import { openTestStore } from '#support/databases.js';
import { envelope } from '#support/envelope-assertions.js';

const SECRET = 'enot-inputs-webhook-secret';

class RecordingQueue implements BuildQueue {
  readonly ids: string[] = [];
  async enqueue(buildIds: readonly string[]): Promise<void> {
    this.ids.push(...buildIds);
  }
}

let root: string;
let allowed: string;
let closeStore: (() => Promise<void>) | undefined;
let store: Store;
let queue: RecordingQueue;
let server: LocalServer;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'enot-request-inputs-'));
  allowed = join(root, 'allowed');
  mkdirSync(join(allowed, 'repo'), { recursive: true });
  mkdirSync(join(root, 'outside', 'secret'), { recursive: true });
  symlinkSync(join(root, 'outside'), join(allowed, 'link'));
  ({ store, close: closeStore } = await openTestStore());
  const config = loadConfig({
    ENOT_DATA_DIR: join(root, 'data'),
    ENOT_LOG_LEVEL: 'silent',
    PORT: '0',
    ENOT_ALLOWED_CLONE_URLS: `https://github.com/,file://${allowed}/`,
    ENOT_DEFAULT_ERL_VERSION: '25',
    GIT_SECRET: SECRET,
  });
  queue = new RecordingQueue();
  const deps: Deps = {
    config, store, blobs: new FsBlobStore(join(root, 'data', 'blobs')), metrics: new InMemoryMetrics(), queue,
    mailer: { send: () => Promise.reject(new Error('this suite sends no mail')) },
    webhookSecret: webhookSecretFor(config), realPath: realPathOnThisMachine,
  };
  server = await startLocalServer({ deps, port: 0 });
}, 60_000);

afterAll(async () => {
  await server?.close();
  await closeStore?.();
  if (root) rmSync(root, { recursive: true, force: true });
});

beforeEach(() => {
  queue.ids.length = 0;
});

function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(server.url + path, {
    method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body),
  });
}

const failure = async (res: Response, status: number) => (await envelope(res, status)) as string;

let seq = 0;
function fresh(): { namespace: string; name: string; full_name: string } {
  seq += 1;
  const name = `inputs-${seq}-${randomUUID().slice(0, 8)}`;
  return { namespace: 'e2e', name, full_name: `e2e/${name}` };
}

interface Answer {
  clone_url: string;
  versions: { ref: string; erl_version: string; builds: { build_id: string; status: string }[] }[];
  message?: string;
}

describe('POST /buildAsync refuses at request time', () => {
  it('clone URLs whose escapes, links or hosts git reads otherwise, writing nothing', async () => {
    const cases: [string, string][] = [
      [`file://${allowed}/..%2Foutside%2Fsecret`, 'must not contain .. path segments (also percent-encoded)'],
      [`file://${allowed}/..%252Foutside%252Fsecret`, 'must not contain .. path segments (also percent-encoded)'],
      [`file://${allowed}/%2e%2e/outside/secret`, 'must not contain .. path segments (also percent-encoded)'],
      [`file://${allowed}/repo%2Fx`, 'must not contain percent-escapes (%XX): git decodes them, so it would clone another path than the one allowed'],
      [`file://${allowed}/./repo/../../outside`, 'must not contain .. path segments'],
      [`file://${allowed}/repo\\..\\..\\outside`, 'must not contain backslashes'],
      [`file://${allowed}/link/secret`, `leads through a symbolic link to ${join(root, 'outside', 'secret')}, outside the allowed prefixes`],
      [`file://evil.example${allowed}/repo`, 'must be file:///path: git ignores the host of a file:// URL'],
      [`file:${allowed}/repo`, 'must be an https:// or file:// URL (git would run another transport)'],
      ['ext::sh -c id', 'must be an https:// or file:// URL (git would run another transport)'],
      ['ext::id', 'must be an https:// or file:// URL (git would run another transport)'],
      ['git+ssh://github.com/e2e/x', 'must be an https:// or file:// URL (git would run another transport)'],
      ['https://github.com/e2e/x?ref=main', 'must not carry a query or a fragment (? or #)'],
      ['https://github.com@evil.example/e2e/x', 'must not carry credentials (user@host)'],
    ];
    for (const [clone_url, problem] of cases) {
      const p = fresh();
      const res = await post('/buildAsync', { full_name: p.full_name, clone_url, versions: { ref: '1.0.0' } });
      expect(await failure(res, 400), clone_url).toBe(`Validation failed: clone_url ${problem}`);
      expect(await store.getRepository(p)).toBeNull();
    }
    expect(queue.ids).toEqual([]);
  });

  it('stores and echoes the URL in its canonical spelling: scheme and host in lower case, no default port', async () => {
    const p = fresh();
    const answer = (await envelope(await post('/buildAsync', {
      full_name: p.full_name, clone_url: `HTTPS://GitHub.COM:443/e2e/${p.name}.git`, versions: { ref: '1.0.0' },
    }), 200)) as Answer;
    expect(answer.clone_url).toBe(`github.com/e2e/${p.name}`);
    expect((await store.getRepository(p))?.cloneUrl).toBe(`https://github.com/e2e/${p.name}.git`);
    // The same repository spelled another way is the same repository, not a 409.
    const again = (await envelope(await post('/buildAsync', {
      full_name: p.full_name, clone_url: `https://github.com/e2e/${p.name}`, versions: { ref: '1.0.0' },
    }), 200)) as Answer;
    expect(again.versions[0].builds[0].build_id).toBe(answer.versions[0].builds[0].build_id);
  });

  it('HEAD and names git refuses as tags; a branch name such as master is left to the build', async () => {
    for (const [ref, problem] of [
      ['HEAD', 'must be a git tag, not HEAD'],
      ['a.lock', 'must be a git tag: git refuses a tag name that ends with .lock'],
      ['1.0.', 'must be a git tag: git refuses a tag name that ends with .'],
      ['a@{1}', 'must be a git tag: git refuses a tag name that contains @{'],
    ]) {
      const p = fresh();
      const res = await post('/buildAsync', { full_name: p.full_name, clone_url: `https://github.com/${p.full_name}`, versions: { ref } });
      expect(await failure(res, 400), ref).toBe(`Validation failed: versions[0].ref ${problem}`);
      expect(await store.getRepository(p)).toBeNull();
    }
    const p = fresh();
    const master = (await envelope(await post('/buildAsync', {
      full_name: p.full_name, clone_url: `https://github.com/${p.full_name}`, versions: { ref: 'master' },
    }), 200)) as Answer;
    expect(master.versions[0].builds[0].status).toBe('queued');
  });

  it('releases in a second spelling, on every route that takes one', async () => {
    const message = 'must be an OTP release such as 25 or 26.2';
    for (const erl_version of ['25.0.0.0', '00000000000000000025', '025', '25.03']) {
      const p = fresh();
      const res = await post('/buildAsync', {
        full_name: p.full_name, clone_url: `https://github.com/${p.full_name}`, versions: { ref: '1.0.0', erl_version },
      });
      expect(await failure(res, 400), erl_version).toBe(`Validation failed: versions[0].erl_version ${message}`);
      expect(await store.getRepository(p)).toBeNull();
      expect(await failure(await post('/versions', { full_name: p.full_name, versions: { erl_version } }), 400))
        .toBe(`Validation failed: versions[0].erl_version ${message}`);
      expect(await failure(await post('/get', { full_name: p.full_name, versions: { erl_version } }), 400))
        .toBe(`Validation failed: versions[0].erl_version ${message}`);
      expect(await failure(await fetch(`${server.url}/download_erts/${erl_version}`), 400))
        .toBe(`Validation failed: path parameter version ${message}`);
      expect(await failure(await fetch(`${server.url}/search?name=x&erl_version=${erl_version}`), 400))
        .toMatch(/^Validation failed: query parameter erl_version must be an OTP release/);
    }
    // The forms the enot client sends still answer as the contract says.
    const erts = await fetch(`${server.url}/download_erts/25`);
    expect(erts.status).toBe(200);
    expect(await erts.text()).toBe('No such erlang');
    expect(queue.ids).toEqual([]);
  });
});

describe('POST /callback', () => {
  function deliver(payload: unknown, delivery = randomUUID()): Promise<Response> {
    const body = JSON.stringify(payload);
    return fetch(`${server.url}/callback`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'X-GitHub-Event': 'create',
        'X-GitHub-Delivery': delivery,
        'X-Hub-Signature-256': `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`,
      },
      body,
    });
  }
  const tag = (full_name: string, ref: string) => ({
    ref, ref_type: 'tag', repository: { full_name, clone_url: `https://github.com/${full_name}.git` },
  });

  it('refuses HEAD and names git refuses as tags', async () => {
    const p = fresh();
    expect(await failure(await deliver(tag(p.full_name, 'HEAD')), 400)).toBe('Validation failed: ref must be a git tag, not HEAD');
    expect(await failure(await deliver(tag(p.full_name, 'a.lock')), 400))
      .toBe('Validation failed: ref must be a git tag: git refuses a tag name that ends with .lock');
    expect(await store.getRepository(p)).toBeNull();
  });

  it('answers a replayed delivery of a failed tag with the failed build, saying so, and queues nothing', async () => {
    const p = fresh();
    const payload = tag(p.full_name, 'v1.0.0');
    const first = (await envelope(await deliver(payload), 200)) as Answer;
    const failed = first.versions[0].builds[0].build_id;
    await store.transitionBuild(failed, ['queued'], 'starting');
    await store.transitionBuild(failed, ['starting'], 'running');
    await store.transitionBuild(failed, ['running'], 'failed', { message: 'compile failed' });
    queue.ids.length = 0;
    for (let i = 0; i < 3; i += 1) {
      const replay = (await envelope(await deliver(payload), 200)) as Answer;
      expect(replay.versions[0].builds[0]).toMatchObject({ build_id: failed, status: 'failed' });
      expect(replay.message).toMatch(/^not built again: v1\.0\.0 \(OTP 25\) failed in build .*at most once an hour/);
    }
    expect(queue.ids).toEqual([]);
  });
});
