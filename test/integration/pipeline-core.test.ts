// The pipeline's use cases on a real store and real files: completion (verdict, facts, email, idempotence),
// dispatch (claim, busy builder, failure policy) and the reaper (stuck, re-sent and abandoned builds).
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FsBlobStore } from '#adapters/blob/fs-blob-store.js';
import { InMemoryMetrics } from '#adapters/metrics/memory-metrics.js';
import { buildBlobKeys, type BuildEnded, type BuildResult } from '#core/build-contract.js';
import { completeBuild, type CompletionDeps } from '#core/complete-build.js';
import { LocalKeySigner } from '#adapters/signing/local-key-signer.js';
import { dispatchBuild, type DispatchDeps } from '#core/dispatch-build.js';
import type { Build } from '#core/model.js';
import { BuilderBusyError } from '#core/errors.js';
import type { BuildJob, Builder, BuildQueue, Mail, Mailer, Store } from '#core/ports.js';
import { COMPLETION_GRACE_S, GIVE_UP_AFTER_S, RESEND_AFTER_S, reapBuilds } from '#core/reap-builds.js';
import { openTestStore } from '#support/databases.js';

const PUBLIC_URL = 'https://enot.example.org';
const TIMEOUT_S = 600;

/** A Mailer that keeps what it is given. */
class RecordingMailer implements Mailer {
  readonly sent: Mail[] = [];
  async send(mail: Mail): Promise<void> {
    this.sent.push(mail);
  }
}

/** A Builder that records the jobs it is given and answers with `next` (our own port, so our own stand-in). */
class RecordingBuilder implements Builder {
  readonly jobs: BuildJob[] = [];
  next: () => Promise<{ builderId: string }> = async () => ({ builderId: `local-${this.jobs.length}` });
  async start(job: BuildJob): Promise<{ builderId: string }> {
    this.jobs.push(job);
    return this.next();
  }
}

class RecordingQueue implements BuildQueue {
  readonly sent: string[][] = [];
  async enqueue(buildIds: readonly string[]): Promise<void> {
    this.sent.push([...buildIds]);
  }
}

let refs = 0;

/** A new version of a package and a queued build of it. */
async function queuedBuild(
  store: Store,
  options: { notify?: boolean; notifyEmail?: string | null; createdAt?: Date } = {},
): Promise<Build> {
  const repo = await store.upsertRepository({ namespace: 'alice', name: 'cowboy_utils', cloneUrl: 'https://github.com/alice/cowboy_utils' });
  const version = await store.upsertVersion({ repositoryId: repo.id, ref: `1.0.${refs++}`, erlVersion: '25' });
  return store.createBuild({ versionId: version.id, ...options });
}

/** A build that is running (claimed and started), as completeBuild expects to find it. */
async function runningBuild(store: Store, options: { notify?: boolean; notifyEmail?: string | null } = {}): Promise<Build> {
  const build = await queuedBuild(store, options);
  const running = await store.transitionBuild(build.id, ['queued'], 'running', { builderId: 'local-1' });
  if (!running) throw new Error('the build did not start');
  return running;
}

describe('the build pipeline core on a real store and files', () => {
  let store: Store;
  let closeStore: () => Promise<void>;
  let dir: string;
  let blobs: FsBlobStore;
  let signer: LocalKeySigner;
  let mailer: RecordingMailer;
  let metrics: InMemoryMetrics;
  let warnings: { message: string; detail: Record<string, unknown> }[];

  beforeAll(async () => {
    ({ store, close: closeStore } = await openTestStore());
    dir = await mkdtemp(join(tmpdir(), 'enot-pipeline-core-'));
    blobs = new FsBlobStore(dir);
    signer = await LocalKeySigner.open(join(dir, 'signing'));
  });

  afterAll(async () => {
    await closeStore?.();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    mailer = new RecordingMailer();
    metrics = new InMemoryMetrics();
    warnings = [];
  });

  function completion(overrides: Partial<CompletionDeps> = {}): CompletionDeps {
    return {
      store, blobs, mailer, metrics,
      signer,
      config: { publicUrl: PUBLIC_URL, buildTimeoutS: TIMEOUT_S, arch: 'amd64' },
      log: {
        info: () => {},
        warn: (message, detail) => warnings.push({ message, detail: detail ?? {} }),
        error: (message, error) => { throw new Error(`unexpected error log: ${message} ${String(error)}`); },
      },
      ...overrides,
    };
  }

  /** What a build leaves behind: result.json (when given), the log and the package (when asked). */
  async function leave(buildId: string, result: Partial<BuildResult> | null, files: { artifact?: Buffer; log?: string } = {}) {
    const keys = buildBlobKeys(buildId);
    if (result) {
      const full: BuildResult = { buildId, status: 'succeeded', message: 'compiled with rebar3', ...result };
      await blobs.put(keys.result, JSON.stringify(full), 'application/json');
    }
    if (files.artifact) await blobs.put(keys.artifact, files.artifact, 'application/octet-stream');
    if (files.log !== undefined) await blobs.put(keys.log, files.log, 'text/plain; charset=utf-8');
  }

  const ended = (build: Build, state: BuildEnded['state'] = 'SUCCEEDED', more: Partial<BuildEnded> = {}): BuildEnded => ({
    buildId: build.id, builderId: 'project:42', state, ...more,
  });

  describe('completeBuild', () => {
    it('marks a build with a success result, its package and log succeeded, with its facts, once', async () => {
      const build = await runningBuild(store);
      const artifact = randomBytes(3210);
      const sha = createHash('sha256').update(artifact).digest('hex');
      await leave(build.id, {
        commitSha: 'a'.repeat(40), otpRelease: '25.3.2', tool: 'rebar3', artifactSize: artifact.length, artifactSha256: sha,
      }, { artifact, log: '==> compiling\n' });

      const finished = await completeBuild(completion(), ended(build));
      expect(finished?.status).toBe('succeeded');
      const view = await store.getBuild(build.id);
      const keys = buildBlobKeys(build.id);
      expect(view).toMatchObject({
        status: 'succeeded',
        message: 'compiled with rebar3',
        artifactKey: keys.artifact,
        artifactSize: artifact.length,
        artifactSha256: sha,
        commitSha: 'a'.repeat(40),
        otpRelease: '25.3.2',
        logKey: keys.log,
        builderId: 'project:42',
      });
      expect(view?.finishedAt).toBeInstanceOf(Date);
      expect(metrics.snapshot().counters.BuildsSucceeded).toBe(1);
      expect(metrics.snapshot().durations.BuildDuration.count).toBe(1);

      // EventBridge delivers at least once: the same report again changes nothing and counts nothing.
      expect(await completeBuild(completion(), ended(build))).toBeNull();
      expect(await store.getBuild(build.id)).toEqual(view);
      expect(metrics.snapshot().counters.BuildsSucceeded).toBe(1);
      expect(metrics.snapshot().counters.BuildsFailed).toBe(0);
    });

    it('fails a build whose result says it failed, with the result\'s message and the log', async () => {
      const build = await runningBuild(store);
      await leave(build.id, { status: 'failed', message: 'unknown ref 9.9.9', failure: 'ref' }, { log: 'fatal: no such ref\n' });

      const finished = await completeBuild(completion(), ended(build));
      expect(finished).toMatchObject({
        status: 'failed', message: 'unknown ref 9.9.9', artifactKey: null, logKey: buildBlobKeys(build.id).log,
      });
      expect(metrics.snapshot().counters.BuildsFailed).toBe(1);
    });

    it('fails a timed-out build with the limit it hit, even when it left a success result', async () => {
      const build = await runningBuild(store);
      await leave(build.id, { status: 'succeeded' }, { artifact: randomBytes(100), log: 'still compiling\n' });
      const finished = await completeBuild(completion(), ended(build, 'TIMED_OUT', { timeoutS: 900 }));
      expect(finished).toMatchObject({ status: 'failed', message: 'timed out after 900 s', artifactKey: null });

      // Without the builder's figure, the configured limit is the one named.
      const other = await runningBuild(store);
      await leave(other.id, { status: 'succeeded' }, { artifact: randomBytes(100) });
      expect(await completeBuild(completion(), ended(other, 'TIMED_OUT'))).toMatchObject({
        status: 'failed', message: `timed out after ${TIMEOUT_S} s`,
      });
    });

    it('fails a build that left no result, pointing to the log', async () => {
      const build = await runningBuild(store);
      await leave(build.id, null, { log: 'node: command not found\n' });
      const finished = await completeBuild(completion(), ended(build, 'FAULT'));
      expect(finished?.status).toBe('failed');
      expect(finished?.message).toMatch(/FAULT/);
      expect(finished?.message).toMatch(/see the build log/);
      expect(finished?.logKey).toBe(buildBlobKeys(build.id).log);

      // No log either: the build still ends, with no log key to point a reader at nothing.
      const bare = await runningBuild(store);
      expect(await completeBuild(completion(), ended(bare, 'FAILED'))).toMatchObject({ status: 'failed', logKey: null });
    });

    it('does not trust a result written for another build', async () => {
      const build = await runningBuild(store);
      await leave(build.id, { buildId: randomUUID(), status: 'succeeded' }, { artifact: randomBytes(100) });
      const finished = await completeBuild(completion(), ended(build));
      expect(finished?.status).toBe('failed');
      expect(finished?.message).toMatch(/without a result/);
      expect(finished?.artifactKey).toBeNull();
    });

    it('fails a success that left no package', async () => {
      const build = await runningBuild(store);
      await leave(build.id, { status: 'succeeded' }, { log: 'packaged\n' });
      expect(await completeBuild(completion(), ended(build))).toMatchObject({
        status: 'failed', message: 'the build reported success but left no package', artifactKey: null,
      });
    });

    it('does nothing for a build that is not in flight', async () => {
      const build = await queuedBuild(store);
      await leave(build.id, { status: 'succeeded' }, { artifact: randomBytes(10) });
      expect(await completeBuild(completion(), ended(build))).toBeNull();
      expect((await store.getBuild(build.id))?.status).toBe('queued');
    });
  });

  describe('the result email', () => {
    it('goes to the address the request named', async () => {
      const build = await runningBuild(store, { notify: true, notifyEmail: 'bob@example.com' });
      await leave(build.id, { status: 'succeeded', authorEmail: 'alice@example.com' }, { artifact: randomBytes(50) });
      await completeBuild(completion(), ended(build));
      expect(mailer.sent).toHaveLength(1);
      const [mail] = mailer.sent;
      expect(mail.to).toBe('bob@example.com');
      expect(mail.subject).toMatch(/^alice\/cowboy_utils 1\.0\.\d+ \(OTP 25\): build succeeded$/);
      expect(mail.text).toContain(`${PUBLIC_URL}/download/${build.id}`);
      expect(mail.text).toContain(`${PUBLIC_URL}/build_log?build_id=${build.id}`);
    });

    it('goes to the tagged commit\'s author when the request asked for mail without an address', async () => {
      const build = await runningBuild(store, { notify: true });
      await leave(build.id, { status: 'failed', message: 'compile error in src/a.erl', authorEmail: 'alice@example.com' });
      await completeBuild(completion(), ended(build));
      expect(mailer.sent.map((m) => m.to)).toEqual(['alice@example.com']);
      expect(mailer.sent[0].subject).toMatch(/build failed$/);
      expect(mailer.sent[0].text).toContain('compile error in src/a.erl');
    });

    it('is not sent when the request did not ask for it', async () => {
      const build = await runningBuild(store, { notify: false });
      await leave(build.id, { status: 'succeeded', authorEmail: 'alice@example.com' }, { artifact: randomBytes(50) });
      expect((await completeBuild(completion(), ended(build)))?.status).toBe('succeeded');
      expect(mailer.sent).toEqual([]);
    });

    it('is not sent to an address that is unsafe in a header, and says so', async () => {
      const build = await runningBuild(store, { notify: true });
      await leave(build.id, { status: 'succeeded', authorEmail: 'alice@example.com\r\nBcc: all@example.com' }, { artifact: randomBytes(50) });
      expect((await completeBuild(completion(), ended(build)))?.status).toBe('succeeded');
      expect(mailer.sent).toEqual([]);
      expect(warnings.map((w) => w.message)).toEqual(['no address to send the build result to']);
    });

    it('that cannot be sent does not fail the completion', async () => {
      const build = await runningBuild(store, { notify: true, notifyEmail: 'bob@example.com' });
      await leave(build.id, { status: 'succeeded' }, { artifact: randomBytes(50) });
      const broken: Mailer = { send: () => Promise.reject(new Error('SES says no')) };
      const finished = await completeBuild(completion({ mailer: broken }), ended(build));
      expect(finished?.status).toBe('succeeded');
      expect((await store.getBuild(build.id))?.status).toBe('succeeded');
      expect(warnings).toEqual([{ message: 'the build result email was not sent', detail: { buildId: build.id, error: 'SES says no' } }]);
    });
  });

  describe('dispatchBuild', () => {
    let builder: RecordingBuilder;
    const dispatch = (): DispatchDeps => ({ store, builder, metrics, config: { buildTimeoutS: TIMEOUT_S } });

    beforeEach(() => {
      builder = new RecordingBuilder();
    });

    it('starts a queued build once with its job, and records the builder\'s id; a duplicate does nothing', async () => {
      const build = await queuedBuild(store);
      builder.next = async () => ({ builderId: 'enot-builds:7d1c' });
      expect(await dispatchBuild(dispatch(), build.id)).toBe('started');
      const view = await store.getBuild(build.id);
      expect(view).toMatchObject({ status: 'running', builderId: 'enot-builds:7d1c' });
      expect(view?.startedAt).toBeInstanceOf(Date);
      expect(builder.jobs).toEqual([{
        buildId: build.id, namespace: 'alice', name: 'cowboy_utils', cloneUrl: 'https://github.com/alice/cowboy_utils',
        ref: view?.ref, erlVersion: '25', timeoutS: TIMEOUT_S,
      }]);

      expect(await dispatchBuild(dispatch(), build.id)).toBe('not-queued');
      expect(builder.jobs).toHaveLength(1);
      expect(await dispatchBuild(dispatch(), randomUUID())).toBe('not-queued');
      expect(builder.jobs).toHaveLength(1);
    });

    it('puts a build back in the queue and rethrows when the builder is busy, so the queue retries it', async () => {
      const build = await queuedBuild(store);
      builder.next = () => Promise.reject(new BuilderBusyError('CodeBuild is busy (ThrottlingException): Rate exceeded'));
      await expect(dispatchBuild(dispatch(), build.id, 'retry')).rejects.toBeInstanceOf(BuilderBusyError);
      expect(await store.getBuild(build.id)).toMatchObject({
        status: 'queued', message: 'waiting to start: CodeBuild is busy (ThrottlingException): Rate exceeded',
      });
      expect(metrics.snapshot().counters.BuildsFailed).toBe(0);

      // The redelivery finds it queued and starts it.
      builder.next = async () => ({ builderId: 'enot-builds:2' });
      expect(await dispatchBuild(dispatch(), build.id, 'retry')).toBe('started');
      expect(await store.getBuild(build.id)).toMatchObject({ status: 'running', builderId: 'enot-builds:2' });
      expect(builder.jobs).toHaveLength(2);
    });

    it('fails the build with the builder\'s reason under the fail policy', async () => {
      const build = await queuedBuild(store);
      builder.next = () => Promise.reject(new Error('OTP 24 cannot run on this machine'));
      expect(await dispatchBuild(dispatch(), build.id, 'fail')).toBe('failed');
      expect(await store.getBuild(build.id)).toMatchObject({
        status: 'failed', message: 'the build could not be started: OTP 24 cannot run on this machine',
      });
      expect(metrics.snapshot().counters.BuildsFailed).toBe(1);
    });
  });
});

describe('reapBuilds on a real store', () => {
  let store: Store;
  let closeStore: () => Promise<void>;
  let queue: RecordingQueue;
  let metrics: InMemoryMetrics;
  const now = new Date();
  const ago = (s: number) => new Date(now.getTime() - s * 1000);

  beforeAll(async () => {
    // A store of its own: the reaper looks at every build, so no other case's builds may be in it.
    ({ store, close: closeStore } = await openTestStore());
  });

  afterAll(async () => {
    await closeStore?.();
  });

  beforeEach(() => {
    queue = new RecordingQueue();
    metrics = new InMemoryMetrics();
  });

  it('fails builds in flight past the timeout and its grace, counts them stuck, and leaves younger ones', async () => {
    const limitS = TIMEOUT_S + COMPLETION_GRACE_S;
    const stuck = await queuedBuild(store, { createdAt: ago(limitS + 120) });
    await store.transitionBuild(stuck.id, ['queued'], 'running', { at: ago(limitS + 60), builderId: 'enot-builds:1' });
    const stuckStarting = await queuedBuild(store, { createdAt: ago(limitS + 120) });
    await store.transitionBuild(stuckStarting.id, ['queued'], 'starting', { at: ago(limitS + 30) });
    const young = await queuedBuild(store, { createdAt: ago(limitS) });
    await store.transitionBuild(young.id, ['queued'], 'running', { at: ago(limitS - 60) });

    const report = await reapBuilds({ store, queue, metrics, config: { buildTimeoutS: TIMEOUT_S } }, now);
    expect(report.failed).toEqual([stuck.id, stuckStarting.id]);
    expect(report.resent).toEqual([]);
    expect(report.abandoned).toEqual([]);
    const failed = await store.getBuild(stuck.id);
    expect(failed?.status).toBe('failed');
    expect(failed?.message).toContain(`no result ${limitS} s after it started`);
    expect((await store.getBuild(stuckStarting.id))?.status).toBe('failed');
    expect((await store.getBuild(young.id))?.status).toBe('running');
    expect(metrics.snapshot().counters.StuckBuilds).toBe(2);
    expect(metrics.snapshot().counters.BuildsFailed).toBe(2);
    expect(queue.sent).toEqual([]);

    // Run again: nothing left to reap.
    const again = await reapBuilds({ store, queue, metrics: new InMemoryMetrics(), config: { buildTimeoutS: TIMEOUT_S } }, now);
    expect(again.failed).toEqual([]);
  });

  it('re-sends builds queued too long, and gives up on builds queued for a day', async () => {
    const lingering = await queuedBuild(store, { createdAt: ago(RESEND_AFTER_S + 60) });
    const fresh = await queuedBuild(store, { createdAt: ago(RESEND_AFTER_S - 60) });
    const forgotten = await queuedBuild(store, { createdAt: ago(GIVE_UP_AFTER_S + 60) });

    const report = await reapBuilds({ store, queue, metrics, config: { buildTimeoutS: TIMEOUT_S } }, now);
    expect(report.abandoned).toEqual([forgotten.id]);
    expect(report.resent).toEqual([lingering.id]);
    expect(queue.sent).toEqual([[lingering.id]]);
    expect((await store.getBuild(lingering.id))?.status).toBe('queued');
    expect((await store.getBuild(fresh.id))?.status).toBe('queued');
    const abandoned = await store.getBuild(forgotten.id);
    expect(abandoned?.status).toBe('failed');
    expect(abandoned?.message).toBe('not started within 24 h of the request; ask for a rebuild');
    expect(metrics.snapshot().counters.BuildsFailed).toBe(1);
    expect(metrics.snapshot().counters.StuckBuilds).toBe(0);
  });

  it('never gives up on a queued build for the local worker, where it waits only while the service is stopped', async () => {
    const waiting = await queuedBuild(store, { createdAt: ago(GIVE_UP_AFTER_S * 3) });
    const report = await reapBuilds({ store, queue, metrics: new InMemoryMetrics(), config: { buildTimeoutS: TIMEOUT_S } }, { now, giveUpOnQueued: false });
    expect(report.abandoned).toEqual([]);
    expect(report.resent).toContain(waiting.id);
    expect((await store.getBuild(waiting.id))?.status).toBe('queued');
  });
});
