// The local builder's runner, with small buildspecs of its own (no Erlang): CodeBuild's phase transitions, the
// scrubbed environment, the time limit killing everything the build started, the log cap, the uploads, and no
// scratch directory or process left behind, even when the service itself is killed. And the local worker over a
// real Store, with a builder the test drives.
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FsBlobStore } from '#adapters/blob/fs-blob-store.js';
import { parseBuildspec, phaseScript } from '#adapters/builder/buildspec-phases.js';
import { LocalBuilder, NO_ERLANG_MESSAGE, withNotes, type LocalBuilderOptions } from '#adapters/builder/local-builder.js';
import { buildBlobKeys, type BuildEnded } from '#core/build-contract.js';
import { InMemoryMetrics } from '#adapters/metrics/memory-metrics.js';
import { LocalBuildQueue } from '#adapters/queue/local-build-queue.js';
import type { BlobStore, BuildJob, Store } from '#core/ports.js';
import { loadConfig } from '#functions/config.js';
import { REQUEUED_ON_STOP, startBuildWorker, type LocalBuilderLike } from '#functions/local/build-worker.js';
import type { Deps } from '#functions/wiring.js';
import { openTestStore } from '#support/databases.js';

const projectRoot = fileURLToPath(new URL('../../', import.meta.url));

let root: string;
let blobs: FsBlobStore;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'enot-local-builder-'));
  blobs = new FsBlobStore(join(root, 'blobs'));
});

afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

function job(overrides: Partial<BuildJob> = {}): BuildJob {
  return {
    buildId: randomUUID(), namespace: 'acme', name: 'lib', cloneUrl: 'file:///nowhere/lib', ref: '1.0.0',
    erlVersion: '25', timeoutS: 60, ...overrides,
  };
}

interface Harness {
  builder: LocalBuilder;
  buildsDir: string;
  /** The end the builder reported for a build. */
  ended(buildId: string): Promise<BuildEnded>;
  reported: BuildEnded[];
}

/** A builder replaying `yaml` (written to a fresh scripts dir), reporting ends into `reported`. */
async function harness(yaml: string, options: Partial<LocalBuilderOptions> = {}): Promise<Harness> {
  const dir = await mkdtemp(join(root, 'case-'));
  const scriptsDir = join(dir, 'scripts');
  await mkdir(scriptsDir);
  await writeFile(join(scriptsDir, 'buildspec.yml'), yaml);
  const buildsDir = join(dir, 'builds');
  const waiting = new Map<string, (e: BuildEnded) => void>();
  const reported: BuildEnded[] = [];
  const early = new Map<string, BuildEnded>();
  const builder = new LocalBuilder({
    blobs, buildsDir, scriptsDir, otp: { release: '25', root: '/usr/lib/erlang' }, sandbox: 'off',
    logMaxBytes: 64 * 1024, killGraceMs: 1000,
    onEnded: (e) => {
      reported.push(e);
      const w = waiting.get(e.buildId);
      if (w) w(e);
      else early.set(e.buildId, e);
    },
    ...options,
  });
  return {
    builder, buildsDir, reported,
    ended: (buildId) => {
      const already = early.get(buildId);
      if (already) return Promise.resolve(already);
      return new Promise((resolve) => waiting.set(buildId, resolve));
    },
  };
}

async function logOf(buildId: string): Promise<string> {
  return (await blobs.get(buildBlobKeys(buildId).log))?.toString('utf8') ?? '';
}

/** True while `pid` runs (a zombie waiting for its parent to reap it has ended). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}

function eventually(check: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  return vi.waitFor(async () => {
    if (!(await check())) throw new Error(`not within ${ms} ms: ${what}`);
  }, { timeout: ms, interval: 50 });
}

const LOG = '"$ENOT_OUT_DIR/build.log"';
const resultCommand = (status: 'succeeded' | 'failed') =>
  `printf '{"buildId":"%s","status":"${status}","message":"done by the test"}' "$ENOT_BUILD_ID" > "$ENOT_OUT_DIR/result.json"`;

describe('buildspec phases', () => {
  it('parses phases, finally, on-failure and env.variables, and refuses what it does not know', () => {
    const spec = parseBuildspec([
      'version: 0.2',
      'env:',
      '  variables:',
      '    A: 1',
      'phases:',
      '  install:',
      '    on-failure: CONTINUE',
      '    commands: [echo a, 42]',
      '  build:',
      '    commands:',
      '      - |',
      '        echo one',
      '        echo two',
      '    finally:',
      '      - echo f',
    ].join('\n'));
    expect(spec.variables).toEqual({ A: '1' });
    expect(spec.phases.install).toEqual({ commands: ['echo a', '42'], finally: [], onFailure: 'CONTINUE' });
    expect(spec.phases.build).toEqual({ commands: ['echo one\necho two\n'], finally: ['echo f'], onFailure: 'ABORT' });
    expect(() => parseBuildspec('version: 0.2\n')).toThrow(/phases is required/);
    expect(() => parseBuildspec('phases:\n  deploy:\n    commands: [x]\n')).toThrow(/unknown phase deploy/);
    expect(() => parseBuildspec('phases:\n  build:\n    commands: echo\n')).toThrow(/list of commands/);
  });

  it('quotes commands so that bash runs them as written', () => {
    const spec = parseBuildspec([
      'phases:',
      '  build:',
      '    commands:',
      `      - printf '%s|' "it's" 'a "b"' \\$HOME $((1+1)) '\\n'`,
    ].join('\n'));
    const out = execFileSync('bash', ['-c', phaseScript(spec)], { env: { PATH: '/usr/bin:/bin', HOME: '/h' }, encoding: 'utf8' });
    expect(out).toContain(`it's|a "b"|$HOME|2|\\n|`);
  });

  it('ends its watchdog with the script: nothing of the build\'s process group is left once it exits, exit status kept', async () => {
    for (const [command, status] of [['echo done', 0], ['exit 3', 3]] as const) {
      const spec = parseBuildspec(`phases:\n  build:\n    commands:\n      - ${command}\n`);
      const script = join(root, `watchdog-${randomUUID()}.sh`);
      await writeFile(script, phaseScript(spec, { watchdogParentPid: process.pid }));
      const child = spawn('bash', [script], { detached: true, stdio: 'ignore' });
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      expect(code).toBe(status);
      // Looked at the moment the script is gone: the watchdog (and its nap) went first, nobody had to kill them.
      expect(groupMembers(child.pid!), command).toEqual([]);
    }
  });
});

/** The live processes of process group `pgid`. */
function groupMembers(pgid: number): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid && !/^[ZX]/.test(fields[0])) found.push(Number(entry));
    } catch {
      // gone
    }
  }
  return found;
}

describe('LocalBuilder', () => {
  it('stops a phase at its first failure, skips build, and always runs finally and post_build in one shell', async () => {
    const h = await harness([
      'version: 0.2',
      'phases:',
      '  install:',
      '    commands:',
      `      - echo install >> ${LOG}`,
      '      - export SHARED=from-install; mkdir -p sub && cd sub',
      '  pre_build:',
      '    commands:',
      `      - echo pre1 >> ${LOG}`,
      `      - echo pre2 >> ${LOG}; false`,
      `      - echo pre3 >> ${LOG}`,
      '    finally:',
      `      - echo pre-finally >> ${LOG}`,
      '  build:',
      '    commands:',
      `      - echo build >> ${LOG}`,
      '    finally:',
      `      - echo build-finally >> ${LOG}`,
      '  post_build:',
      '    commands:',
      `      - echo "post $SHARED $(basename "$PWD") succeeding=$CODEBUILD_BUILD_SUCCEEDING" >> ${LOG}`,
      `      - ${resultCommand('failed')}`,
    ].join('\n'));
    const j = job();
    const { builderId } = await h.builder.start(j);
    expect(builderId).toMatch(/^local:\d+$/);
    expect(h.builder.active()).toBe(1);
    const ended = await h.ended(j.buildId);
    expect(ended).toEqual({ buildId: j.buildId, builderId, state: 'FAILED' });
    expect((await logOf(j.buildId)).split('\n')).toEqual([
      'install', 'pre1', 'pre2', 'pre-finally', 'post from-install sub succeeding=0', '',
    ]);
    expect(h.builder.active()).toBe(0);
    expect(await readdir(h.buildsDir)).toEqual([]);
  });

  it('uploads the package, log and result of a success and reports SUCCEEDED', async () => {
    const h = await harness([
      'phases:',
      '  build:',
      '    commands:',
      `      - echo compiled >> ${LOG}`,
      '      - printf package-bytes > "$ENOT_OUT_DIR/package.ep"',
      `      - ${resultCommand('succeeded')}`,
    ].join('\n'));
    const j = job();
    await h.builder.start(j);
    expect((await h.ended(j.buildId)).state).toBe('SUCCEEDED');
    const keys = buildBlobKeys(j.buildId);
    expect((await blobs.get(keys.artifact))?.toString()).toBe('package-bytes');
    expect(await logOf(j.buildId)).toBe('compiled\n');
    expect(JSON.parse((await blobs.get(keys.result))!.toString())).toMatchObject({ buildId: j.buildId, status: 'succeeded' });
    expect(await readdir(h.buildsDir)).toEqual([]);
  });

  it('reports FAULT for a build that left no result, with the runner output as its log', async () => {
    const h = await harness('phases:\n  build:\n    commands:\n      - echo crashing on purpose\n      - exit 3\n');
    const j = job();
    await h.builder.start(j);
    expect(await h.ended(j.buildId)).toMatchObject({ state: 'FAULT' });
    const log = await logOf(j.buildId);
    expect(log).toContain('crashing on purpose');
    expect(log).toContain('[the build ended (exit status 3) without a result.json]');
    expect(await blobs.stat(buildBlobKeys(j.buildId).artifact)).toBeNull();
  });

  it('gives the build only its own variables: no database URL, AWS credentials or webhook secret', async () => {
    const h = await harness([
      'env:',
      '  variables:',
      '    FROM_BUILDSPEC: yes',
      'phases:',
      '  build:',
      '    commands:',
      `      - env > ${LOG}`,
      `      - ${resultCommand('succeeded')}`,
    ].join('\n'), {
      cloneRewrite: { prefix: 'https://github.com/', replacement: 'file:///mirror/' },
      otp: { release: '25', root: '/usr/lib/erlang', version: '25.2.3' },
    });
    const planted = {
      DATABASE_URL: 'postgres://secret@db/enot', AWS_SECRET_ACCESS_KEY: 'planted-key', AWS_ACCESS_KEY_ID: 'AKIAPLANTED',
      GIT_SECRET: 'planted-secret', ENOT_S3_ENDPOINT: 'http://planted',
    };
    const saved = Object.fromEntries(Object.keys(planted).map((k) => [k, process.env[k]]));
    Object.assign(process.env, planted);
    const j = job({ ref: 'v1.2.3' });
    try {
      await h.builder.start(j);
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
    await h.ended(j.buildId);
    const log = await logOf(j.buildId);
    for (const value of Object.values(planted)) expect(log).not.toContain(value);
    const env = Object.fromEntries(log.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    const shellOwn = ['PWD', 'OLDPWD', 'SHLVL', '_', 'CODEBUILD_BUILD_SUCCEEDING'];
    expect(Object.keys(env).filter((k) => !shellOwn.includes(k)).sort()).toEqual([
      'ENOT_BUILD_DISK_MB', 'ENOT_BUILD_ID', 'ENOT_BUILD_LOG_LINE_MAX_BYTES', 'ENOT_BUILD_MAX_PROCESSES', 'ENOT_BUILD_MEMORY_MB',
      'ENOT_BUILD_TIMEOUT_S', 'ENOT_CLONE_REWRITE', 'ENOT_CLONE_URL', 'ENOT_ERL_VERSION', 'ENOT_FULL_NAME',
      'ENOT_LOG_MAX_BYTES', 'ENOT_NAME', 'ENOT_NAMESPACE', 'ENOT_OTP_ROOT', 'ENOT_OTP_VERSION', 'ENOT_OUT_DIR', 'ENOT_REF',
      'ENOT_SANDBOX', 'ENOT_SCRIPTS', 'ENOT_WORK_DIR', 'FROM_BUILDSPEC', 'HOME', 'LANG', 'PATH',
    ]);
    expect(env).toMatchObject({
      ENOT_BUILD_ID: j.buildId, ENOT_REF: 'v1.2.3', ENOT_FULL_NAME: 'acme/lib', ENOT_SANDBOX: 'off', LANG: 'C.UTF-8',
      ENOT_OTP_ROOT: '/usr/lib/erlang', ENOT_OTP_VERSION: '25.2.3',
      ENOT_LOG_MAX_BYTES: String(64 * 1024), ENOT_CLONE_REWRITE: 'https://github.com/=file:///mirror/', FROM_BUILDSPEC: 'yes',
    });
    expect(env.HOME.startsWith(h.buildsDir)).toBe(true);
    expect(env.PATH.split(':')[0]).toBe('/usr/lib/erlang/bin');
  });

  it('kills the whole build at its time limit, daemons that left its process group included', async () => {
    const pids = join(root, `pids-${randomUUID()}`);
    const h = await harness([
      'phases:',
      '  build:',
      '    commands:',
      `      - echo started >> ${LOG}`,
      // One child in the group, one in a session of its own, and the shell itself waits.
      `      - sleep 300 & echo $! >> '${pids}'`,
      `      - setsid sleep 301 & echo $! >> '${pids}'`,
      '      - sleep 302',
      '  post_build:',
      '    commands:',
      `      - ${resultCommand('succeeded')}`,
    ].join('\n'));
    const j = job({ timeoutS: 2 });
    await h.builder.start(j);
    const ended = await h.ended(j.buildId);
    expect(ended).toMatchObject({ buildId: j.buildId, state: 'TIMED_OUT', timeoutS: 2 });
    const started = (await readFile(pids, 'utf8')).trim().split('\n').map(Number);
    expect(started).toHaveLength(2);
    for (const pid of started) expect(alive(pid), `pid ${pid}`).toBe(false);
    const log = await logOf(j.buildId);
    expect(log).toMatch(/^started\n/);
    expect(log.endsWith('[timed out after 2 s]\n')).toBe(true);
    expect(await readdir(h.buildsDir)).toEqual([]);
  });

  it('keeps the log within its cap, the runner notes included', async () => {
    const h = await harness('phases:\n  build:\n    commands:\n      - head -c 20000 /dev/zero | tr "\\0" x\n', { logMaxBytes: 2000 });
    const j = job();
    await h.builder.start(j);
    await h.ended(j.buildId);
    const log = await logOf(j.buildId);
    expect(Buffer.byteLength(log)).toBeLessThanOrEqual(2000);
    expect(log).toContain('xxxxxxxx');
    expect(log).toMatch(/\[log truncated at 2000 bytes\]\n\[the build ended \(exit status 0\) without a result.json\]\n$/);
    // A short log keeps all of itself; a log the build cut already is not cut twice.
    expect(withNotes(Buffer.from('abc'), ['[n]'], 100).toString()).toBe('abc\n[n]\n');
    expect(withNotes(Buffer.from('x'.repeat(90) + '\n[log truncated at 100 bytes]\n'), ['[n]'], 100).toString())
      .toBe(`${'x'.repeat(66)}\n[log truncated at 100 bytes]\n[n]\n`);
  });

  it('stopAll kills running builds and reports nothing for them', async () => {
    const pids = join(root, `pids-${randomUUID()}`);
    const h = await harness(`phases:\n  build:\n    commands:\n      - sleep 300 & echo $! > '${pids}'; wait\n`);
    const j = job();
    await h.builder.start(j);
    await eventually(async () => (await readFile(pids, 'utf8').catch(() => '')).trim() !== '', 10_000, 'the build started');
    const pid = Number((await readFile(pids, 'utf8')).trim());
    await h.builder.stopAll();
    expect(alive(pid)).toBe(false);
    expect(h.builder.active()).toBe(0);
    expect(h.reported).toEqual([]);
    expect(await readdir(h.buildsDir)).toEqual([]);
    await expect(h.builder.start(job())).rejects.toThrow(/shutting down/);
  });

  it('fails every build at once, with a log saying why, when no Erlang/OTP is installed', async () => {
    const h = await harness('phases:\n  build:\n    commands: [true]\n', { otp: null });
    const j = job();
    await h.builder.start(j);
    expect(await h.ended(j.buildId)).toMatchObject({ buildId: j.buildId, state: 'FAILED' });
    expect(await logOf(j.buildId)).toBe(`${NO_ERLANG_MESSAGE}\n`);
    const result = JSON.parse((await blobs.get(buildBlobKeys(j.buildId).result))!.toString());
    expect(result).toMatchObject({ buildId: j.buildId, status: 'failed', message: NO_ERLANG_MESSAGE, failure: 'release' });
    expect(h.builder.active()).toBe(0);
  });

  it('removes the scratch dirs and processes a previous run left behind', async () => {
    const h = await harness('phases:\n  build:\n    commands: [true]\n');
    const leftover = join(h.buildsDir, `${randomUUID()}-abc123`);
    await mkdir(join(leftover, 'work'), { recursive: true });
    const stray = spawn('sleep', ['300'], { cwd: join(leftover, 'work'), detached: true, stdio: 'ignore' });
    stray.unref();
    await eventually(() => alive(stray.pid!), 5000, 'the stray process runs');
    await h.builder.removeLeftovers();
    await eventually(() => !alive(stray.pid!) || stray.exitCode !== null || stray.signalCode !== null, 5000, 'the stray process is killed');
    expect(await readdir(h.buildsDir)).toEqual([]);
  });

  it('takes its builds down when the service process is killed', async () => {
    const dir = await mkdtemp(join(root, 'orphan-'));
    const pids = join(dir, 'pids');
    await mkdir(join(dir, 'scripts'));
    await writeFile(join(dir, 'scripts', 'buildspec.yml'), [
      'phases:',
      '  build:',
      '    commands:',
      `      - sleep 300 & echo $! >> '${pids}'`,
      `      - setsid sleep 301 & echo $! >> '${pids}'`,
      '      - sleep 302',
    ].join('\n'));
    // A service of its own: it starts one build, says so, and waits to be killed.
    const service = join(dir, 'service.mts');
    await writeFile(service, [
      `import { LocalBuilder } from ${JSON.stringify(new URL('../../functions/adapters/builder/local-builder.ts', import.meta.url).href)};`,
      `import { FsBlobStore } from ${JSON.stringify(new URL('../../functions/adapters/blob/fs-blob-store.ts', import.meta.url).href)};`,
      `const builder = new LocalBuilder({ blobs: new FsBlobStore(${JSON.stringify(join(dir, 'blobs'))}),`,
      `  buildsDir: ${JSON.stringify(join(dir, 'builds'))}, scriptsDir: ${JSON.stringify(join(dir, 'scripts'))},`,
      `  otp: { release: '25', root: '/usr/lib/erlang' }, sandbox: 'off', logMaxBytes: 10000, onEnded: () => {} });`,
      `await builder.start({ buildId: ${JSON.stringify(randomUUID())}, namespace: 'a', name: 'b', cloneUrl: 'file:///x', ref: '1', erlVersion: '25', timeoutS: 600 });`,
      `console.log('started');`,
      'setInterval(() => {}, 1000);',
    ].join('\n'));
    const child = spawn(process.execPath, ['--import', 'tsx', service], { cwd: projectRoot, stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', (c: Buffer) => { if (c.toString().includes('started')) resolve(); });
        child.once('exit', (code) => reject(new Error(`the service exited with ${code}`)));
      });
      await eventually(async () => (await readFile(pids, 'utf8').catch(() => '')).trim().split('\n').length === 2, 10_000, 'both sleeps started');
      const started = (await readFile(pids, 'utf8')).trim().split('\n').map(Number);
      for (const pid of started) expect(alive(pid)).toBe(true);
      child.kill('SIGKILL');
      await eventually(() => started.every((pid) => !alive(pid)), 10_000, 'the orphaned build is killed');
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('the local build worker', () => {
  /** A builder whose builds run until the test ends them. */
  class HeldBuilder implements LocalBuilderLike {
    readonly started: BuildJob[] = [];
    readonly running = new Set<string>();
    stoppedAll = false;
    async start(j: BuildJob) {
      this.started.push(j);
      this.running.add(j.buildId);
      return { builderId: `held:${j.buildId}` };
    }
    active() {
      return this.running.size;
    }
    async stopAll() {
      this.stoppedAll = true;
      this.running.clear();
    }
  }

  let store: Store;
  let closeStore: () => Promise<void>;
  let repositoryId: number;
  let seq = 0;

  beforeAll(async () => {
    ({ store, close: closeStore } = await openTestStore());
    repositoryId = (await store.upsertRepository({ namespace: 'acme', name: 'worker_lib', cloneUrl: 'file:///nowhere/worker_lib' })).id;
  });

  afterAll(async () => {
    await closeStore?.();
  });

  async function queued(n: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      seq += 1;
      const version = await store.upsertVersion({ repositoryId, ref: `0.${seq}.0`, erlVersion: '25' });
      ids.push((await store.createBuild({ versionId: version.id })).id);
    }
    return ids;
  }

  function workerDeps(blobStore: BlobStore = blobs): Deps {
    return {
      config: loadConfig({ ENOT_DATA_DIR: join(root, 'worker-data'), ENOT_LOG_LEVEL: 'silent', ENOT_BUILD_TIMEOUT_S: '77' }),
      store, blobs: blobStore, metrics: new InMemoryMetrics(), queue: new LocalBuildQueue(),
      mailer: { send: () => Promise.reject(new Error('no mail in this suite')) },
      webhookSecret: () => Promise.resolve(undefined),
    };
  }

  const quiet = { info() {}, warn() {}, error() {} };

  async function statusOf(id: string): Promise<{ status: string; message: string }> {
    const b = (await store.getBuild(id))!;
    return { status: b.status, message: b.message };
  }

  it('runs at most `concurrency` builds, starts the next when one ends, and requeues the running ones on stop', async () => {
    const ids = await queued(4);
    const builder = new HeldBuilder();
    const deps = workerDeps();
    const queue = new LocalBuildQueue();
    const worker = await startBuildWorker({ deps, builder, queue, concurrency: 2, log: quiet, pollMs: 50 });
    try {
      await eventually(() => builder.started.length === 2, 10_000, 'two builds started');
      expect(builder.started.map((j) => j.buildId)).toEqual(ids.slice(0, 2));
      expect(builder.started[0]).toMatchObject({ namespace: 'acme', name: 'worker_lib', erlVersion: '25', timeoutS: 77 });
      expect(await statusOf(ids[0])).toMatchObject({ status: 'running' });
      // Polls come and go (every 50 ms); nobody ended, so nothing more starts. Asserting an absence takes time:
      // six polls' worth, not a wait for something to happen.
      await new Promise((r) => setTimeout(r, 300));
      expect(builder.started).toHaveLength(2);

      // The first ends (a failure its result explains): recorded, and the third starts.
      const first = ids[0];
      await blobs.put(buildBlobKeys(first).result, JSON.stringify({ buildId: first, status: 'failed', message: 'compile error in x.erl' }), 'application/json');
      builder.running.delete(first);
      await worker.ended({ buildId: first, builderId: `held:${first}`, state: 'FAILED' });
      expect(await statusOf(first)).toEqual({ status: 'failed', message: 'compile error in x.erl' });
      await eventually(() => builder.started.length === 3, 10_000, 'a third build started');
      expect(builder.started[2].buildId).toBe(ids[2]);
    } finally {
      await worker.stop();
    }
    expect(builder.stoppedAll).toBe(true);
    expect(await statusOf(ids[1])).toEqual({ status: 'queued', message: REQUEUED_ON_STOP });
    expect(await statusOf(ids[2])).toEqual({ status: 'queued', message: REQUEUED_ON_STOP });
    expect((await statusOf(ids[3])).status).toBe('queued');
    // Drain what this case queued, so the next case starts from an empty queue.
    for (const id of ids.slice(1)) await store.transitionBuild(id, ['queued'], 'failed', { message: 'test cleanup' });
  });

  it('queues again at start what a previous run left in flight, and fails a build whose end cannot be recorded', async () => {
    const [left] = await queued(1);
    await store.transitionBuild(left, ['queued'], 'starting');
    await store.transitionBuild(left, ['starting'], 'running', { builderId: 'local:1' });
    const builder = new HeldBuilder();
    const failing: BlobStore = {
      put: (k, b, t) => blobs.put(k, b, t), putFile: (k, p, t) => blobs.putFile(k, p, t), stat: (k) => blobs.stat(k),
      download: (k, o) => blobs.download(k, o), digest: (k) => blobs.digest(k), get: () => Promise.reject(new Error('disk on fire')),
      delete: (k) => blobs.delete(k),
    };
    const worker = await startBuildWorker({ deps: workerDeps(failing), builder, queue: new LocalBuildQueue(), concurrency: 1, log: quiet, pollMs: 50 });
    try {
      await eventually(() => builder.started.length === 1, 10_000, 'the left-over build started again');
      expect(builder.started[0].buildId).toBe(left);
      builder.running.delete(left);
      await worker.ended({ buildId: left, builderId: `held:${left}`, state: 'SUCCEEDED' });
      expect(await statusOf(left)).toEqual({ status: 'failed', message: 'the build result could not be recorded: disk on fire' });
    } finally {
      await worker.stop();
    }
  });
});
