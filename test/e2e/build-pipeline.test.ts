// The build pipeline end to end, as `npm start` runs it: build requests over HTTP, the local worker and builder
// running buildspec/buildspec.yml on real git repositories with the Erlang installed here, and the results read back
// through the API (packages loaded in `erl`, logs, mails, ERTS). The suite waits on the API only.
import { webhookSecretFor } from '#adapters/secrets/webhook-secret.js';
import { sign } from '@octokit/webhooks-methods';
import type { WebhookDefinition } from '@octokit/webhooks-examples';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FsBlobStore } from '#adapters/blob/fs-blob-store.js';
import { EmlMailer } from '#adapters/mail/eml-mailer.js';
import { InMemoryMetrics } from '#adapters/metrics/memory-metrics.js';
import { LocalBuildQueue } from '#adapters/queue/local-build-queue.js';
import { loadConfig, type Config } from '#functions/config.js';
import type { Log } from '#core/ports.js';
import { startLocalBuilds, type LocalBuilds } from '#functions/local/build-worker.js';
import { detectLocalOtp, registerLocalErts, type LocalOtp } from '#functions/local/local-erlang.js';
import { startLocalServer, type LocalServer } from '#functions/local/server.js';
import type { Deps } from '#functions/wiring.js';
import { openTestStore } from '#support/databases.js';
import {
  FIXTURE_AUTHOR_EMAIL, brokenRepo, includePrivRepo, loadBeamsInErl, plainLibRepo, readEnotConfig, readEpEntries,
  rebar3LibRepo, slowRepo, type ErlangRepo,
} from '#support/erlang-repos.js';
import { buildProcesses } from '#support/build-processes.js';

const run = promisify(execFile);
const webhookExamples = createRequire(import.meta.url)('@octokit/webhooks-examples') as WebhookDefinition[];

const SECRET = 'the e2e webhook secret';
const PUBLIC_URL = 'http://builder.example.test';
const TIMEOUT_S = 3;
const OPS_MAIL = 'ops@example.org';

const silent: Log = { info() {}, warn() {}, error() {} };

let root: string;
let dataDir: string;
let otp: LocalOtp;
let config: Config;
let deps: Deps;
let queue: LocalBuildQueue;
let server: LocalServer;
let builds: LocalBuilds | undefined;
let closeStore: (() => Promise<void>) | undefined;
const repos: ErlangRepo[] = [];

// --- HTTP helpers ---

interface RequestedBuild { build_id: string; status: string; message: string }
interface BuildAnswer { versions: { ref: string; erl_version: string; builds: RequestedBuild[] }[] }
interface SearchEntry { build_id: string; name: string; success: boolean; path: string; version: string; erl_version: string }

async function api<T>(method: 'GET' | 'POST', path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
  const res = await fetch(server.url + path, {
    method, headers: { 'content-type': 'application/json', ...headers }, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  expect(res.status, `${method} ${path}: ${text}`).toBe(200);
  return (JSON.parse(text) as { response: T }).response;
}

async function buildAsync(
  repo: ErlangRepo, ref: string, options: { erlVersion?: string; notify?: boolean | string } = {},
): Promise<RequestedBuild> {
  const answer = await api<BuildAnswer>('POST', '/buildAsync', {
    full_name: repo.fullName,
    clone_url: repo.cloneUrl,
    versions: [{ ref, ...(options.erlVersion ? { erl_version: options.erlVersion } : {}) }],
    notify_email: options.notify ?? false,
  });
  return answer.versions[0].builds[0];
}

/** Waits until /search shows the build as finished; returns its entry. */
function finished(name: string, buildId: string, ms = 90_000): Promise<SearchEntry> {
  return vi.waitFor(async () => {
    const entries = await api<SearchEntry[]>('GET', `/search?name=${encodeURIComponent(name)}`);
    const entry = entries.find((e) => e.build_id === buildId);
    if (!entry) throw new Error(`build ${buildId} of ${name} did not finish within ${ms} ms`);
    return entry;
  }, { timeout: ms, interval: 100 });
}

async function buildLog(buildId: string): Promise<string> {
  const res = await fetch(`${server.url}/build_log?build_id=${buildId}`);
  expect(res.status).toBe(200);
  return res.text();
}

async function download(buildId: string): Promise<string> {
  const res = await fetch(`${server.url}/download/${buildId}`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('application/x-tar');
  const file = join(root, `${buildId}.ep`);
  await writeFile(file, Buffer.from(await res.arrayBuffer()));
  return file;
}

/** Checks a successful build the way the enot client uses it: download, unpack, load, read its config. */
async function expectGoodPackage(repo: ErlangRepo, ref: string, buildId: string, modules: string[]): Promise<string[]> {
  const ep = await download(buildId);
  const loaded = await loadBeamsInErl(ep);
  expect(loaded.loaded.sort()).toEqual([...modules].sort());
  expect(loaded.appName).toBe(repo.name);
  const enotConfig = await readEnotConfig(ep);
  expect(enotConfig).toMatchObject({ name: repo.name, fullname: repo.fullName, tag: ref, app_vsn: expect.any(String) });
  expect(Array.isArray(enotConfig.deps)).toBe(true);
  expect(Array.isArray(enotConfig.erlang)).toBe(true);
  expect(typeof enotConfig.with_source).toBe('boolean');
  // POST /get in the client's body form gives the same bytes.
  const got = await fetch(`${server.url}/get`, {
    method: 'POST', body: JSON.stringify({ full_name: repo.fullName, versions: { ref, erl_version: otp.release } }),
  });
  expect(got.status).toBe(200);
  expect(Buffer.from(await got.arrayBuffer())).toEqual(await readFile(ep));
  return readEpEntries(ep);
}

/** The .eml files the local mailer wrote, as text. */
async function mails(): Promise<string[]> {
  const dir = join(dataDir, 'mail');
  const names = await readdir(dir).catch(() => [] as string[]);
  return Promise.all(names.filter((n) => n.endsWith('.eml')).map((n) => readFile(join(dir, n), 'utf8')));
}

function mailAbout(buildId: string, ms = 10_000): Promise<string> {
  return vi.waitFor(async () => {
    const found = (await mails()).find((m) => m.includes(buildId));
    if (!found) throw new Error(`no mail about ${buildId}`);
    return found;
  }, { timeout: ms, interval: 100 });
}


// --- the suite ---

let slow: ErlangRepo;
let plain: ErlangRepo;
let rebar: ErlangRepo;
let inc: ErlangRepo;
let broken: ErlangRepo;
let hook: ErlangRepo;
const ids: Record<string, string> = {};

beforeAll(async () => {
  const detected = await detectLocalOtp();
  if (!detected) throw new Error('this suite needs Erlang/OTP (erl on PATH)');
  otp = detected;
  root = await mkdtemp(join(tmpdir(), 'enot-build-pipeline-'));
  dataDir = join(root, 'data');
  [slow, plain, rebar, inc, broken, hook] = await Promise.all([
    slowRepo(), plainLibRepo(), rebar3LibRepo(), includePrivRepo(), brokenRepo(), plainLibRepo({ name: 'hook_lib', tag: 'v2.0.0' }),
  ]);
  repos.push(slow, plain, rebar, inc, broken, hook);
  // GitHub, as far as the builds can tell: https://github.com/<namespace>/<name> is cloned from a bare copy on disk.
  const github = join(root, 'github');
  await mkdir(join(github, hook.namespace), { recursive: true });
  await run('git', ['clone', '-q', '--bare', hook.dir, join(github, hook.namespace, `${hook.name}.git`)]);

  config = loadConfig({
    ENOT_DATA_DIR: dataDir,
    ENOT_LOG_LEVEL: 'silent',
    PORT: '0',
    ENOT_PUBLIC_URL: PUBLIC_URL,
    ENOT_ALLOWED_CLONE_URLS: `https://github.com/,${pathToFileURL(tmpdir()).href}/`,
    ENOT_CLONE_REWRITE: `https://github.com/=${pathToFileURL(github).href}/`,
    ENOT_BUILD_CONCURRENCY: '3',
    // More builds than a client's hour allows, and polls every 100 ms: counted, never refused.
    ENOT_BUILD_REQUESTS_PER_HOUR: '1000', ENOT_READ_REQUESTS_PER_MINUTE: '1000000',
    ENOT_BUILD_TIMEOUT_S: '120',
    ENOT_DEFAULT_ERL_VERSION: otp.release,
    GIT_SECRET: SECRET,
  });
  const opened = await openTestStore();
  closeStore = opened.close;
  queue = new LocalBuildQueue();
  deps = {
    config, store: opened.store, blobs: new FsBlobStore(join(dataDir, 'blobs')), metrics: new InMemoryMetrics(), queue,
    mailer: new EmlMailer(join(dataDir, 'mail')), webhookSecret: webhookSecretFor(config),
  };
  await registerLocalErts({ store: deps.store, blobs: deps.blobs, otp, scratchDir: join(dataDir, 'tmp') });
  server = await startLocalServer({ deps, port: 0 });

  // First the build that hits its time limit, on a worker whose limit is short; then everything else, in parallel.
  builds = await startLocalBuilds({ deps: { ...deps, config: { ...config, buildTimeoutS: TIMEOUT_S } }, queue, otp, log: silent, pollMs: 250 });
  ids.slow = (await buildAsync(slow, slow.tag, { notify: OPS_MAIL })).build_id;
  await finished(slow.name, ids.slow);
  await builds.stop();

  builds = await startLocalBuilds({ deps, queue, otp, log: silent, pollMs: 250 });
  ids.plain = (await buildAsync(plain, plain.tag, { notify: true })).build_id;
  ids.plainAgain = (await buildAsync(plain, plain.tag)).build_id;
  ids.rebar = (await buildAsync(rebar, rebar.tag)).build_id;
  ids.inc = (await buildAsync(inc, inc.tag)).build_id;
  ids.broken = (await buildAsync(broken, broken.tag)).build_id;
  ids.unknownRef = (await buildAsync(plain, '9.9.9', { notify: OPS_MAIL })).build_id;
  ids.otp24 = (await buildAsync(inc, inc.tag, { erlVersion: '24' })).build_id;
}, 180_000);

afterAll(async () => {
  await builds?.stop();
  await server?.close();
  await closeStore?.();
  await Promise.all(repos.map((r) => r.cleanup()));
  if (root) await rm(root, { recursive: true, force: true });
});

describe('builds of real repositories', () => {
  it('builds a plain erlc library, and mails its author the download link', async () => {
    const entry = await finished(plain.name, ids.plain);
    expect(entry).toMatchObject({ success: true, path: `/download/${ids.plain}`, version: plain.tag, erl_version: otp.release });
    await expectGoodPackage(plain, plain.tag, ids.plain, ['plain_lib', 'plain_lib_util']);
    const mail = await mailAbout(ids.plain);
    expect(mail).toContain(`To: ${FIXTURE_AUTHOR_EMAIL}\r\n`);
    expect(mail).toContain(`${PUBLIC_URL}/download/${ids.plain}`);
    expect(mail).toContain('build succeeded');
  });

  it('answers a duplicate request with the same build, and builds it once', async () => {
    expect(ids.plainAgain).toBe(ids.plain);
    await finished(plain.name, ids.plain);
    const again = await buildAsync(plain, plain.tag);
    expect(again).toMatchObject({ build_id: ids.plain, status: 'succeeded' });
    const listed = await api<{ build_id: string }[]>('POST', '/builds', { full_name: plain.fullName, versions: { ref: plain.tag } });
    expect(listed.map((b) => b.build_id)).toEqual([ids.plain]);
  });

  it('builds a rebar3 library, and sends no mail when asked not to', async () => {
    expect(await finished(rebar.name, ids.rebar)).toMatchObject({ success: true });
    await expectGoodPackage(rebar, rebar.tag, ids.rebar, ['rebar_lib']);
    expect(await buildLog(ids.rebar)).toMatch(/rebar3/);
    expect((await mails()).filter((m) => m.includes(ids.rebar))).toEqual([]);
  });

  it('builds a library with include/ and priv/, and packs both', async () => {
    expect(await finished(inc.name, ids.inc)).toMatchObject({ success: true });
    const entries = await expectGoodPackage(inc, inc.tag, ids.inc, ['inc_lib']);
    const files = entries.map((e) => e.replace(/^\.\//, ''));
    expect(files).toEqual(expect.arrayContaining(['include/inc_lib.hrl', 'include/inc_lib_lib.hrl', 'priv/inc_lib.txt']));
  });

  it('fails a compile error, and the log shows the compiler', async () => {
    const entry = await finished(broken.name, ids.broken);
    expect(entry).toMatchObject({ success: false, path: `/build_log?build_id=${ids.broken}` });
    expect(await buildLog(ids.broken)).toMatch(/broken_lib\.erl:4(:\d+)?: syntax error before/);
    const res = await fetch(`${server.url}/download/${ids.broken}`);
    expect(res.status).toBe(404);
  });

  it('fails an unknown ref, and says so in the log and the result mail', async () => {
    expect(await finished(plain.name, ids.unknownRef)).toMatchObject({ success: false, version: '9.9.9' });
    expect(await buildLog(ids.unknownRef)).toContain('unknown ref 9.9.9');
    const mail = await mailAbout(ids.unknownRef);
    expect(mail).toContain(`To: ${OPS_MAIL}\r\n`);
    expect(mail).toMatch(/Message: +unknown ref 9\.9\.9/);
  });

  it('fails an OTP release this machine does not have, naming the ones it has', async () => {
    expect(await finished(inc.name, ids.otp24)).toMatchObject({ success: false, erl_version: '24' });
    const log = await buildLog(ids.otp24);
    expect(log).toContain('OTP 24 is not available');
    expect(log).toMatch(new RegExp(`available: [^\\n]*${otp.release}`));
  });

  it('fails a build past its time limit, leaving no process behind', async () => {
    expect(await finished(slow.name, ids.slow)).toMatchObject({ success: false });
    expect(await buildLog(ids.slow)).toContain(`[timed out after ${TIMEOUT_S} s]`);
    const mail = await mailAbout(ids.slow);
    expect(mail).toMatch(new RegExp(`Message: +timed out after ${TIMEOUT_S} s`));
    expect(await buildProcesses(dataDir)).toEqual([]);
    expect(await readdir(join(dataDir, 'builds'))).toEqual([]);
  });

  it('rebuilds a build under a new id that becomes the latest', async () => {
    await finished(plain.name, ids.plain);
    const rebuilt = await api<RequestedBuild>('POST', '/rebuild', { build_id: ids.plain });
    expect(rebuilt.build_id).not.toBe(ids.plain);
    const entry = await finished(plain.name, rebuilt.build_id);
    expect(entry).toMatchObject({ success: true, version: plain.tag });
    await expectGoodPackage(plain, plain.tag, rebuilt.build_id, ['plain_lib', 'plain_lib_util']);
    const listed = await api<{ build_id: string }[]>('POST', '/builds', { full_name: plain.fullName, versions: { ref: plain.tag } });
    expect(listed.map((b) => b.build_id)).toEqual([rebuilt.build_id, ids.plain]);
  });

  it('serves the ERTS of the installed release', async () => {
    const res = await fetch(`${server.url}/download_erts/${otp.release}`);
    expect(res.status).toBe(200);
    const tar = join(root, 'erts.tar');
    await writeFile(tar, Buffer.from(await res.arrayBuffer()));
    const { stdout } = await run('tar', ['-tf', tar], { maxBuffer: 16 * 1024 * 1024 });
    expect(stdout.split('\n')).toContain(`erts-${otp.ertsVersion}/bin/erl`);
  });
});

describe('the GitHub webhook', () => {
  function tagCreated(repo: ErlangRepo, ref: string): string {
    const example = webhookExamples.find((d) => d.name === 'create')!.examples
      .find((e) => (e as { ref_type?: string }).ref_type === 'tag') as Record<string, unknown>;
    const payload = structuredClone(example) as Record<string, unknown> & { repository: Record<string, unknown> };
    payload.ref = ref;
    payload.repository = {
      ...payload.repository,
      name: repo.name,
      full_name: repo.fullName,
      clone_url: `https://github.com/${repo.fullName}.git`,
      html_url: `https://github.com/${repo.fullName}`,
    };
    return JSON.stringify(payload);
  }

  async function deliver(body: string, signature: string): Promise<Response> {
    return fetch(`${server.url}/callback`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json', 'X-GitHub-Event': 'create', 'X-GitHub-Delivery': randomUUID(),
        'X-Hub-Signature-256': signature, 'User-Agent': 'GitHub-Hookshot/e2e',
      },
      body,
    });
  }

  async function queuedTotal(): Promise<number> {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    return Number(/^enot_builds_queued_total (\d+)$/m.exec(text)?.[1] ?? NaN);
  }

  it('builds a signed tag event from GitHub, and mails the commit author', async () => {
    const body = tagCreated(hook, hook.tag);
    const res = await deliver(body, await sign(SECRET, body));
    const text = await res.text();
    expect(res.status, text).toBe(200);
    const buildId = (JSON.parse(text) as { response: BuildAnswer }).response.versions[0].builds[0].build_id;
    expect(await finished(hook.name, buildId)).toMatchObject({ success: true, version: hook.tag, erl_version: otp.release });
    await expectGoodPackage(hook, hook.tag, buildId, ['hook_lib', 'hook_lib_util']);
    const mail = await mailAbout(buildId);
    expect(mail).toContain(`To: ${FIXTURE_AUTHOR_EMAIL}\r\n`);
    expect(mail).toContain(`${PUBLIC_URL}/download/${buildId}`);
  });

  it('refuses a forged signature with 401 and queues nothing', async () => {
    const before = await queuedTotal();
    expect(Number.isFinite(before)).toBe(true);
    const body = tagCreated(hook, 'v9.0.0');
    const good = await sign(SECRET, body);
    const res = await deliver(body, `${good.slice(0, -4)}${good.endsWith('0000') ? 'ffff' : '0000'}`);
    expect(res.status).toBe(401);
    expect(await queuedTotal()).toBe(before);
    expect(await api<SearchEntry[]>('GET', `/search?name=${hook.name}&version=v9.0.0`)).toEqual([]);
  });
});
