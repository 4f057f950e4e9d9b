// The build request use cases (buildAsync, rebuild, the webhook's tag) against a real Store: pg with DATABASE_URL,
// else PGlite. The queue records what it is handed; no builder runs, so builds stay queued.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { InMemoryMetrics } from '#adapters/metrics/memory-metrics.js';
import type { SqlStore } from '#adapters/postgres/open-store.js';
import { ConflictError, ValidationError } from '#core/errors.js';
import type { Build, PackageName } from '#core/model.js';
import type { BuildQueue, Store } from '#core/ports.js';
import {
  classifyWebhook, cloneUrlProblem, displayCloneUrl, normalizeCloneUrl, rebuild, requestBuilds, requestTagBuild,
  NO_SUCH_BUILD, type BuildRequestDeps, type BuildRequestConfig,
} from '#core/request-builds.js';
import { useCaseDriver, type Harness } from '#support/store-drivers.js';

/** A queue that records every hand-over, and can be told to fail. */
class RecordingQueue implements BuildQueue {
  readonly batches: string[][] = [];
  failing = false;

  async enqueue(buildIds: readonly string[]): Promise<void> {
    if (this.failing) throw new Error('queue unavailable');
    this.batches.push([...buildIds]);
  }

  get ids(): string[] {
    return this.batches.flat();
  }
}

interface LoggedError {
  message: string;
  error: unknown;
  attributes?: Record<string, unknown>;
}

const SETTINGS: BuildRequestConfig = {
  allowedCloneUrls: ['https://github.com/', 'file:///srv/repos/'],
  defaultErlVersion: '25',
  maxVersionsPerRequest: 5,
};

const UNKNOWN_ID = '00000000-0000-4000-8000-00000000abcd';

describe('clone URLs', () => {
  const allowed = ['https://github.com/', 'file:///srv/repos', 'https://git.example.org/team/'];

  it('accepts URLs under an allowed prefix', () => {
    for (const url of [
      'https://github.com/a/b', 'https://github.com/a/b.git', 'file:///srv/repos/x', 'file:///srv/repos',
      'https://git.example.org/team/x.git',
    ]) expect(cloneUrlProblem(url, allowed), url).toBeUndefined();
  });

  it('refuses URLs outside the prefixes, at a path boundary, or naming nothing after a prefix ending in /', () => {
    for (const url of [
      'https://gitlab.com/a/b', 'file:///srv/repos-evil/x', 'https://github.com/', 'https://git.example.org/other/x',
    ]) expect(cloneUrlProblem(url, allowed), url).toMatch(/^must start with one of: /);
    // Transports other than https:// and file:// are refused whatever the prefixes; the scheme's case is not a difference.
    for (const url of ['http://github.com/a/b', 'ssh://git@github.com/a/b']) {
      expect(cloneUrlProblem(url, allowed), url).toMatch(/^must be an https:\/\/ or file:\/\/ URL/);
    }
    expect(cloneUrlProblem('HTTPS://github.com/a/b', allowed)).toBeUndefined();
    expect(cloneUrlProblem('https://github.com.evil.example/a/b', ['https://github.com'])).toMatch(/^must start with one of/);
    expect(cloneUrlProblem('https://github.com/a/b', ['https://github.com'])).toBeUndefined();
    expect(cloneUrlProblem('https://github.com/a/b', [])).toBe('is not allowed: no clone URL prefix is configured');
  });

  it('refuses spaces, control characters, a leading dash, .. segments and credentials', () => {
    const cases: [string, RegExp][] = [
      ['https://github.com/a/b c', /spaces or control/],
      ['https://github.com/a/b\n', /spaces or control/],
      ['https://github.com/a/b\u0000', /spaces or control/],
      ['https://github.com/a/\u00a0b', /spaces or control/],
      ['https://github.com/a/\u200bb', /spaces or control/],
      ['-uhttps://github.com/a/b', /must not start with -/],
      ['--upload-pack=touch /tmp/x', /spaces or control|must not start with -/],
      ['https://github.com/a/../../etc', /\.\. path segments/],
      ['https://github.com/a/%2e%2E/b', /\.\. path segments/],
      ['file:///srv/repos/../secret', /\.\. path segments/],
      ['https://user@github.com/a/b', /credentials/],
      ['https://user:token@github.com/a/b', /credentials/],
      ['', /must not be empty/],
      [`https://github.com/${'a'.repeat(1000)}`, /at most 1000/],
    ];
    for (const [url, problem] of cases) expect(cloneUrlProblem(url, ['https://github.com/', 'file:///srv/repos/']), url).toMatch(problem);
    // A dotted name is not a dot segment.
    expect(cloneUrlProblem('https://github.com/a/b..c', ['https://github.com/'])).toBeUndefined();
  });

  it('compares without protocol, .git, trailing slash and host case; echoes without protocol and .git', () => {
    const same = ['https://github.com/A/b.git', 'http://GitHub.com/A/b', 'https://github.com/A/b/', 'github.com/A/b.git/'];
    for (const url of same) expect(normalizeCloneUrl(url), url).toBe('github.com/A/b');
    expect(normalizeCloneUrl('https://github.com/a/b')).not.toBe(normalizeCloneUrl('https://github.com/A/b'));
    expect(displayCloneUrl('https://github.com/comtihon/enot.git')).toBe('github.com/comtihon/enot');
    expect(displayCloneUrl('file:///srv/repos/x')).toBe('/srv/repos/x');
  });
});

describe('webhook classification', () => {
  it('builds only created tags, answers pings and names what it ignores', () => {
    expect(classifyWebhook('create', { ref_type: 'tag' })).toEqual({ kind: 'tag' });
    expect(classifyWebhook('ping', {})).toEqual({ kind: 'ping' });
    expect(classifyWebhook('create', { ref_type: 'branch' })).toEqual({
      kind: 'ignored', reason: 'ignored: create event for a branch (only tags are built)',
    });
    expect(classifyWebhook('push', { ref: 'refs/tags/v1' })).toEqual({
      kind: 'ignored', reason: 'ignored: push events are not built (only the creation of a tag is)',
    });
    expect(classifyWebhook(undefined, {})).toEqual({ kind: 'ignored', reason: 'ignored: no X-GitHub-Event header' });
    expect(classifyWebhook('create', null).kind).toBe('ignored');
  });
});

describe(`build requests on ${useCaseDriver.driver}`, () => {
  let h: Harness;
  let store: SqlStore;
  let queue: RecordingQueue;
  let metrics: InMemoryMetrics;
  let logged: LoggedError[];
  let seq = 0;

  beforeAll(async () => {
    h = await useCaseDriver.open();
    store = h.store;
  });

  afterAll(async () => {
    await h?.close();
  });

  beforeEach(() => {
    queue = new RecordingQueue();
    metrics = new InMemoryMetrics();
    logged = [];
  });

  function ports(over: Partial<BuildRequestConfig> = {}, storeOver?: Store): BuildRequestDeps {
    return {
      store: storeOver ?? store,
      queue,
      metrics,
      config: { ...SETTINGS, ...over },
      log: { info: () => {}, warn: () => {}, error: (message, error, attributes) => logged.push({ message, error, attributes }) },
    };
  }

  /** A package no other test uses. */
  function pkg(): PackageName {
    seq += 1;
    return { namespace: 'req', name: `pkg${seq}` };
  }

  const urlOf = (p: PackageName) => `https://github.com/${p.namespace}/${p.name}.git`;
  const counted = (name: 'BuildsQueued' | 'WebhookDeliveries') => metrics.snapshot().counters[name];

  async function versionCount(p: PackageName): Promise<number> {
    const rows = await store.client.query(
      `SELECT count(*) AS n FROM versions v JOIN repositories r ON r.id = v.repository_id
       WHERE r.namespace = $1::text AND r.name = $2::text`,
      [p.namespace, p.name],
    );
    return Number(rows[0].n);
  }

  async function buildCount(p: PackageName): Promise<number> {
    const rows = await store.client.query(
      `SELECT count(*) AS n FROM builds b JOIN versions v ON v.id = b.version_id JOIN repositories r ON r.id = v.repository_id
       WHERE r.namespace = $1::text AND r.name = $2::text`,
      [p.namespace, p.name],
    );
    return Number(rows[0].n);
  }

  async function succeed(id: string): Promise<Build> {
    await store.transitionBuild(id, ['queued'], 'starting');
    await store.transitionBuild(id, ['starting'], 'running');
    const done = await store.transitionBuild(id, ['running'], 'succeeded', { artifactKey: `artifacts/${id}.ep` });
    expect(done?.status).toBe('succeeded');
    return done!;
  }

  async function fail(id: string): Promise<void> {
    await store.transitionBuild(id, ['queued'], 'starting');
    expect((await store.transitionBuild(id, ['starting'], 'failed', { message: 'compile error' }))?.status).toBe('failed');
  }

  describe('requestBuilds (POST /buildAsync)', () => {
    it('queues one build per version, the default release where none is named, and answers as the original', async () => {
      const p = pkg();
      const answer = await requestBuilds(ports(), {
        pkg: p, cloneUrl: urlOf(p), versions: [{ ref: '1.0.0' }, { ref: '1.0.0', erlVersion: '26' }],
      });
      expect(answer.full_name).toBe(`${p.namespace}/${p.name}`);
      expect(answer.clone_url).toBe(`github.com/${p.namespace}/${p.name}`);
      expect(answer.notify_email).toBe(true);
      expect(answer.versions.map((v) => [v.ref, v.erl_version])).toEqual([['1.0.0', '25'], ['1.0.0', '26']]);
      const ids = answer.versions.map((v) => v.builds[0].build_id);
      for (const v of answer.versions) {
        const build = await store.getBuild(v.builds[0].build_id);
        expect(build).toMatchObject({ status: 'queued', versionId: v.version_id, ref: v.ref, erlVersion: v.erl_version });
        expect(v.builds).toEqual([{
          build_id: build!.id, result: true, message: '', artifact_path: `/download/${build!.id}`,
          created_date: build!.createdAt.getTime(), status: 'queued',
        }]);
        // notify_email true: mail the tagged commit's author, whose address the build learns.
        expect(await store.getBuildJob(build!.id)).toMatchObject({ notify: true, notifyEmail: null, cloneUrl: urlOf(p) });
      }
      expect(queue.batches).toEqual([ids]);
      expect(counted('BuildsQueued')).toBe(2);
    });

    it('records an explicit recipient, or no mail at all', async () => {
      const p = pkg();
      const toAddress = await requestBuilds(ports(), {
        pkg: p, cloneUrl: urlOf(p), versions: [{ ref: '1.0' }], notifyEmail: 'dev@example.org',
      });
      expect(toAddress.notify_email).toBe('dev@example.org');
      expect(await store.getBuildJob(toAddress.versions[0].builds[0].build_id))
        .toMatchObject({ notify: true, notifyEmail: 'dev@example.org' });
      const silent = await requestBuilds(ports(), { pkg: p, cloneUrl: urlOf(p), versions: [{ ref: '2.0' }], notifyEmail: false });
      expect(silent.notify_email).toBe(false);
      expect(await store.getBuildJob(silent.versions[0].builds[0].build_id)).toMatchObject({ notify: false, notifyEmail: null });
    });

    it('builds once: a repeated request answers the same build and queues nothing', async () => {
      const p = pkg();
      const request = { pkg: p, cloneUrl: urlOf(p), versions: [{ ref: '1.0' }] };
      const first = await requestBuilds(ports(), request);
      // The same repository spelled another way is the same repository.
      const second = await requestBuilds(ports(), { ...request, cloneUrl: `https://github.com/${p.namespace}/${p.name}/` });
      expect(second.versions[0].builds[0].build_id).toBe(first.versions[0].builds[0].build_id);
      expect(second.versions[0].version_id).toBe(first.versions[0].version_id);
      expect(queue.ids).toEqual([first.versions[0].builds[0].build_id]);
      expect(counted('BuildsQueued')).toBe(1);
      expect(await buildCount(p)).toBe(1);
    });

    it('reuses a success, and builds again after a failure', async () => {
      const p = pkg();
      const request = { pkg: p, cloneUrl: urlOf(p), versions: [{ ref: 'ok' }, { ref: 'broken' }] };
      const first = await requestBuilds(ports(), request);
      const [ok, broken] = first.versions.map((v) => v.builds[0].build_id);
      await succeed(ok);
      await fail(broken);
      queue.batches.length = 0;
      const again = await requestBuilds(ports(), request);
      expect(again.versions[0].builds[0]).toMatchObject({ build_id: ok, status: 'succeeded' });
      const retried = again.versions[1].builds[0];
      expect(retried.build_id).not.toBe(broken);
      expect(retried.status).toBe('queued');
      expect(queue.batches).toEqual([[retried.build_id]]);
    });

    it('collapses duplicate versions, also when one names the default release and the other leaves it out', async () => {
      const p = pkg();
      const answer = await requestBuilds(ports(), {
        pkg: p, cloneUrl: urlOf(p), versions: [{ ref: '1.0' }, { ref: '1.0', erlVersion: '25' }, { ref: '1.0' }],
      });
      expect(answer.versions).toHaveLength(1);
      expect(queue.ids).toHaveLength(1);
    });

    it('refuses (409) a package registered with another clone URL, writing nothing', async () => {
      // Off github.com the first clone URL keeps the name.
      const p = pkg();
      const first = `file:///srv/repos/${p.name}`;
      await requestBuilds(ports(), { pkg: p, cloneUrl: first, versions: [{ ref: '1.0' }] });
      const attempt = requestBuilds(ports(), { pkg: p, cloneUrl: 'file:///srv/repos/evil-fork', versions: [{ ref: '2.0' }] });
      await expect(attempt).rejects.toBeInstanceOf(ConflictError);
      await expect(attempt).rejects.toThrow(
        `Repository ${p.namespace}/${p.name} is registered with clone URL /srv/repos/${p.name}, not /srv/repos/evil-fork`,
      );
      expect(await versionCount(p)).toBe(1);
      expect((await store.getRepository(p))?.cloneUrl).toBe(first);
    });

    it('refuses (400) a github.com clone URL of another repository than the name, writing nothing', async () => {
      const p = pkg();
      const attempt = requestBuilds(ports(), { pkg: p, cloneUrl: 'https://github.com/evil/fork.git', versions: [{ ref: '1.0' }] });
      await expect(attempt).rejects.toBeInstanceOf(ValidationError);
      await expect(attempt).rejects.toThrow(`full_name ${p.namespace}/${p.name} does not match clone_url https://github.com/evil/fork.git`);
      expect(await store.getRepository(p)).toBeNull();
      expect(queue.ids).toEqual([]);
    });

    it('refuses a clone URL outside the allowed prefixes before writing anything', async () => {
      const p = pkg();
      const attempt = requestBuilds(ports(), { pkg: p, cloneUrl: 'https://gitlab.com/a/b.git', versions: [{ ref: '1.0' }] });
      await expect(attempt).rejects.toBeInstanceOf(ValidationError);
      await expect(attempt).rejects.toThrow('Validation failed: clone_url must start with one of: https://github.com/, file:///srv/repos/');
      expect(await store.getRepository(p)).toBeNull();
      expect(queue.ids).toEqual([]);
    });

    it('refuses more versions than configured, and none', async () => {
      const p = pkg();
      const six = ['1', '2', '3', '4', '5', '6'].map((ref) => ({ ref }));
      await expect(requestBuilds(ports(), { pkg: p, cloneUrl: urlOf(p), versions: six }))
        .rejects.toThrow('Validation failed: versions must hold at most 5 entries');
      await expect(requestBuilds(ports(), { pkg: p, cloneUrl: urlOf(p), versions: [] }))
        .rejects.toBeInstanceOf(ValidationError);
      expect(await store.getRepository(p)).toBeNull();
      const five = await requestBuilds(ports(), { pkg: p, cloneUrl: urlOf(p), versions: six.slice(0, 5) });
      expect(five.versions).toHaveLength(5);
    });

    it('asks for erl_version when a version needs the default release and none is configured', async () => {
      const p = pkg();
      const attempt = requestBuilds(ports({ defaultErlVersion: undefined }), { pkg: p, cloneUrl: urlOf(p), versions: [{ ref: '1.0' }] });
      await expect(attempt).rejects.toThrow('Validation failed: erl_version is required: this service has no default OTP release');
      await expect(attempt).rejects.toBeInstanceOf(ValidationError);
      expect(await store.getRepository(p)).toBeNull();
      const named = await requestBuilds(ports({ defaultErlVersion: undefined }), {
        pkg: p, cloneUrl: urlOf(p), versions: [{ ref: '1.0', erlVersion: '26' }],
      });
      expect(named.versions[0].erl_version).toBe('26');
    });

    it('writes nothing when the transaction fails half way', async () => {
      const p = pkg();
      let creates = 0;
      // The second createBuild of the transaction fails, after a repository, versions and a build were written.
      const flaky: Store = new Proxy(store, {
        get(target, prop, receiver) {
          if (prop !== 'transaction') return Reflect.get(target, prop, receiver);
          return <T>(fn: (tx: Store) => Promise<T>) => target.transaction((tx) => fn(new Proxy(tx, {
            get(t, name, r) {
              if (name !== 'createBuild') return Reflect.get(t, name, r);
              return async (input: Parameters<Store['createBuild']>[0]) => {
                creates += 1;
                if (creates === 2) throw new Error('connection lost');
                return t.createBuild(input);
              };
            },
          })));
        },
      });
      await expect(requestBuilds(ports({}, flaky), { pkg: p, cloneUrl: urlOf(p), versions: [{ ref: '1' }, { ref: '2' }] }))
        .rejects.toThrow('connection lost');
      expect(creates).toBe(2);
      expect(await store.getRepository(p)).toBeNull();
      expect(await versionCount(p)).toBe(0);
      expect(queue.ids).toEqual([]);
      expect(counted('BuildsQueued')).toBe(0);
    });

    it('answers the stored builds when the queue refuses them, and logs it', async () => {
      const p = pkg();
      queue.failing = true;
      const answer = await requestBuilds(ports(), { pkg: p, cloneUrl: urlOf(p), versions: [{ ref: '1.0' }] });
      const id = answer.versions[0].builds[0].build_id;
      expect((await store.getBuild(id))?.status).toBe('queued');
      expect(logged).toHaveLength(1);
      expect(logged[0].attributes).toEqual({ build_ids: [id] });
    });

    it('creates one build for many identical requests at once', async () => {
      const p = pkg();
      const request = { pkg: p, cloneUrl: urlOf(p), versions: [{ ref: '1.0' }, { ref: '2.0' }] };
      const answers = await Promise.all(Array.from({ length: 8 }, () => requestBuilds(ports(), request)));
      const idsOf = (a: (typeof answers)[number]) => a.versions.map((v) => v.builds[0].build_id);
      for (const a of answers) expect(idsOf(a)).toEqual(idsOf(answers[0]));
      expect(await buildCount(p)).toBe(2);
      expect(queue.ids.sort()).toEqual(idsOf(answers[0]).sort());
      expect(counted('BuildsQueued')).toBe(2);
    });
  });

  describe('rebuild (POST /rebuild)', () => {
    it('says "No such build!" for an unknown or malformed id', async () => {
      for (const id of [UNKNOWN_ID, 'not-a-uuid', '']) {
        const attempt = rebuild(ports(), id);
        await expect(attempt).rejects.toBeInstanceOf(ValidationError);
        await expect(attempt).rejects.toThrow(NO_SUCH_BUILD);
      }
      expect(NO_SUCH_BUILD).toBe('Validation failed: No such build!');
    });

    it('queues a new build of the same version even when it succeeded, mailing the commit author', async () => {
      const p = pkg();
      const first = await requestBuilds(ports(), { pkg: p, cloneUrl: urlOf(p), versions: [{ ref: '1.0', erlVersion: '26' }], notifyEmail: false });
      const old = first.versions[0].builds[0].build_id;
      await succeed(old);
      queue.batches.length = 0;
      const again = await rebuild(ports(), old);
      expect(again.build_id).not.toBe(old);
      expect(again).toMatchObject({ status: 'queued', result: true, artifact_path: `/download/${again.build_id}` });
      expect(await store.getBuildJob(again.build_id)).toMatchObject({
        versionId: first.versions[0].version_id, ref: '1.0', erlVersion: '26', notify: true, notifyEmail: null,
      });
      expect(queue.batches).toEqual([[again.build_id]]);
      expect((await store.getBuild(old))?.status).toBe('succeeded');
    });

    it('returns the build already queued or running for the version instead of queueing another', async () => {
      const p = pkg();
      const first = await requestBuilds(ports(), { pkg: p, cloneUrl: urlOf(p), versions: [{ ref: '1.0' }] });
      const queued = first.versions[0].builds[0].build_id;
      queue.batches.length = 0;
      expect(await rebuild(ports(), queued)).toMatchObject({ build_id: queued, status: 'queued' });
      await store.transitionBuild(queued, ['queued'], 'starting');
      await store.transitionBuild(queued, ['starting'], 'running');
      expect(await rebuild(ports(), queued)).toMatchObject({ build_id: queued, status: 'running' });
      expect(queue.ids).toEqual([]);
      expect(await buildCount(p)).toBe(1);
    });

    it('queues one rebuild for many at once', async () => {
      const p = pkg();
      const first = await requestBuilds(ports(), { pkg: p, cloneUrl: urlOf(p), versions: [{ ref: '1.0' }] });
      const old = first.versions[0].builds[0].build_id;
      await fail(old);
      queue.batches.length = 0;
      const answers = await Promise.all(Array.from({ length: 6 }, () => rebuild(ports(), old)));
      expect(new Set(answers.map((a) => a.build_id)).size).toBe(1);
      expect(queue.ids).toEqual([answers[0].build_id]);
      expect(await buildCount(p)).toBe(2);
    });

    it('refuses to rebuild from a clone URL the configuration no longer allows', async () => {
      const p = pkg();
      const first = await requestBuilds(ports(), { pkg: p, cloneUrl: urlOf(p), versions: [{ ref: '1.0' }] });
      const old = first.versions[0].builds[0].build_id;
      await fail(old);
      await expect(rebuild(ports({ allowedCloneUrls: ['file:///srv/repos/'] }), old)).rejects.toThrow(
        `Validation failed: the clone URL of ${p.namespace}/${p.name} must start with one of: file:///srv/repos/`,
      );
      expect(await buildCount(p)).toBe(1);
    });
  });

  describe('requestTagBuild (POST /callback, a created tag)', () => {
    async function delivery(deliveryId: string): Promise<string | null> {
      const rows = await store.client.query(
        `SELECT array_to_string(build_ids, ',') AS ids FROM webhook_deliveries WHERE delivery_id = $1::text`, [deliveryId],
      );
      return rows.length === 0 ? null : String(rows[0].ids);
    }

    it('queues the tag for the default release, records the delivery, and never queues a redelivery', async () => {
      const p = pkg();
      const tag = { deliveryId: `d-${p.name}`, pkg: p, ref: 'v1.2.0', cloneUrl: `https://github.com/${p.namespace}/${p.name}.git` };
      const answer = await requestTagBuild(ports(), tag);
      if (typeof answer === 'string') throw new Error(answer);
      const id = answer.versions[0].builds[0].build_id;
      expect(answer).toMatchObject({ full_name: `${p.namespace}/${p.name}`, notify_email: true });
      expect(answer.versions[0]).toMatchObject({ ref: 'v1.2.0', erl_version: '25' });
      expect(await store.getBuildJob(id)).toMatchObject({ status: 'queued', notify: true, notifyEmail: null });
      expect(await delivery(tag.deliveryId)).toBe(id);
      expect(queue.ids).toEqual([id]);
      expect(counted('WebhookDeliveries')).toBe(1);

      expect(await requestTagBuild(ports(), tag)).toBe(`delivery ${tag.deliveryId} was already handled`);
      expect(queue.ids).toEqual([id]);
      expect(counted('WebhookDeliveries')).toBe(1);
      expect(await buildCount(p)).toBe(1);
      // A new delivery of the same tag finds the build (build once) and queues nothing more.
      const other = await requestTagBuild(ports(), { ...tag, deliveryId: `d2-${p.name}` });
      expect(typeof other !== 'string' && other.versions[0].builds[0].build_id).toBe(id);
      expect(await delivery(`d2-${p.name}`)).toBe('');
      expect(queue.ids).toEqual([id]);
    });

    it('accepts the GitHub URL with or without .git, and nothing else', async () => {
      const p = pkg();
      const base = { pkg: p, ref: 'v1' };
      const plain = await requestTagBuild(ports(), { ...base, deliveryId: `a-${p.name}`, cloneUrl: `https://github.com/${p.namespace}/${p.name}` });
      expect(typeof plain).toBe('object');
      for (const cloneUrl of [
        `https://github.com/${p.namespace}/other.git`, `http://github.com/${p.namespace}/${p.name}.git`,
        `https://github.com/${p.namespace}/${p.name}/`, 'https://evil.example/x.git',
      ]) {
        await expect(requestTagBuild(ports(), { ...base, deliveryId: `b-${p.name}`, cloneUrl }), cloneUrl).rejects.toThrow(
          `Validation failed: repository.clone_url must be https://github.com/${p.namespace}/${p.name} or https://github.com/${p.namespace}/${p.name}.git`,
        );
      }
      expect(await delivery(`b-${p.name}`)).toBeNull();
    });

    it('records nothing when the configuration does not allow GitHub, so a later redelivery still builds', async () => {
      const p = pkg();
      const tag = { deliveryId: `c-${p.name}`, pkg: p, ref: 'v1', cloneUrl: `https://github.com/${p.namespace}/${p.name}.git` };
      await expect(requestTagBuild(ports({ allowedCloneUrls: ['file:///srv/repos/'] }), tag))
        .rejects.toThrow('Validation failed: repository.clone_url must start with one of: file:///srv/repos/');
      expect(await delivery(tag.deliveryId)).toBeNull();
      expect(typeof await requestTagBuild(ports(), tag)).toBe('object');
    });

    it('records nothing when the package is registered with another URL (409)', async () => {
      const p = pkg();
      await requestBuilds(ports(), { pkg: p, cloneUrl: `file:///srv/repos/${p.name}`, versions: [{ ref: '1.0' }] });
      const tag = { deliveryId: `e-${p.name}`, pkg: p, ref: 'v2', cloneUrl: `https://github.com/${p.namespace}/${p.name}.git` };
      await expect(requestTagBuild(ports(), tag)).rejects.toBeInstanceOf(ConflictError);
      expect(await delivery(tag.deliveryId)).toBeNull();
    });

    it('needs a delivery id', async () => {
      const p = pkg();
      const tag = { pkg: p, ref: 'v1', cloneUrl: `https://github.com/${p.namespace}/${p.name}.git` };
      for (const deliveryId of [undefined, '', 'has space', 'x'.repeat(101)]) {
        await expect(requestTagBuild(ports(), { ...tag, deliveryId })).rejects.toThrow(/X-GitHub-Delivery header is required/);
      }
      expect(await store.getRepository(p)).toBeNull();
    });

    it('queues once for the same delivery arriving twice at once', async () => {
      const p = pkg();
      const tag = { deliveryId: `f-${p.name}`, pkg: p, ref: 'v1', cloneUrl: `https://github.com/${p.namespace}/${p.name}.git` };
      const answers = await Promise.all([requestTagBuild(ports(), tag), requestTagBuild(ports(), tag), requestTagBuild(ports(), tag)]);
      expect(answers.filter((a) => typeof a === 'string')).toEqual([
        `delivery ${tag.deliveryId} was already handled`, `delivery ${tag.deliveryId} was already handled`,
      ]);
      expect(queue.ids).toHaveLength(1);
      expect(await buildCount(p)).toBe(1);
      expect(counted('WebhookDeliveries')).toBe(1);
    });
  });
});
