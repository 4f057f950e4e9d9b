// The local build worker (`npm start`): claims queued builds from the Store (the local queue), starts them on the
// local builder, records their ends, and reaps what got stuck. The Store is the queue, so a restart loses nothing.
// Several workers may share one database: each build in flight carries this worker's lease (its id and a heartbeat
// renewed while it builds), and only builds whose lease expired are taken over, from their stored outputs when they
// had finished, else by queueing them again. An end that cannot be recorded (the database is down) is retried.
import { randomUUID } from 'node:crypto';
import { readdir, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { buildBlobKeys, parseBuildResult, type BuildEnded } from '#core/build-contract.js';
import { completeBuild } from '#core/complete-build.js';
import { startClaimedBuild } from '#core/dispatch-build.js';
import { DatabaseUnavailableError } from '#core/errors.js';
import { reapBuilds } from '#core/reap-builds.js';
import type { Builder, Log } from '#core/ports.js';
import type { LocalBuildQueue } from '#adapters/queue/local-build-queue.js';
import { LocalBuilder } from '#adapters/builder/local-builder.js';
import { endProcessTree } from '#adapters/builder/process-tree.js';
import type { Deps } from '#functions/wiring.js';
import type { LocalOtp } from './local-erlang.js';

/** What the worker needs of a builder beyond the port: how busy it is, and a way to stop everything. */
export interface LocalBuilderLike extends Builder {
  active(): number;
  stopAll(): Promise<void>;
  /** Removes what a previous run left behind (scratch dirs, processes); called once before the first build. */
  removeLeftovers?(): Promise<void>;
}

export interface BuildWorkerOptions {
  deps: Deps;
  builder: LocalBuilderLike;
  queue: Pick<LocalBuildQueue, 'onEnqueue'>;
  concurrency: number;
  log: Log;
  /** How often the Store is looked at without a wake-up (a build queued by another process). */
  pollMs?: number;
  /** How often stuck builds are reaped. */
  reapEveryMs?: number;
  /**
   * True when no other process can use this database (PGlite, whose directory takes one owner): at start every
   * build in flight is then a previous run's, taken over at once instead of after its lease.
   */
  exclusive?: boolean;
  /** This worker's id in the leases it writes; default: host, pid and a random part. */
  workerId?: string;
  /** First and longest wait between attempts to record an end while the database is unavailable. */
  recordRetryMs?: { first: number; max: number };
  /** Where the builds' scratch dirs are (`<dataDir>/builds`): a build whose lease was lost is ended through them. */
  buildsDir?: string;
}

export interface BuildWorker {
  /** Records the end of a build (the builder's onEnded calls this) and makes room for the next. */
  ended(ended: BuildEnded): Promise<void>;
  /** Stops claiming, kills the running builds and queues them again for the next start. */
  stop(): Promise<void>;
}

export const REQUEUED_ON_RESTART = 'requeued: the local service restarted while it was building';
export const REQUEUED_ON_STOP = 'requeued: the local service stopped while it was building';
export const REQUEUED_ON_LEASE_EXPIRY = 'requeued: the worker building it stopped renewing its lease';

/** How an end that could not be recorded is retried: 0.5 s, doubling, at most 15 s apart, until it is recorded. */
const RECORD_RETRY_MS = { first: 500, max: 15_000 };
/** Builds taken over in one look. */
const TAKEOVER_BATCH = 50;

/** This process's worker id: readable in the database (host and pid), unique across restarts. */
export function newWorkerId(): string {
  return `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
}

/**
 * How a build that lost its worker had ended, read from the outputs the local builder stores before it reports
 * an end (result.json, the log): null when it left none (it had not finished, so it is built again).
 */
async function endFromOutputs(blobs: Deps['blobs'], buildId: string): Promise<BuildEnded | null> {
  const keys = buildBlobKeys(buildId);
  const [resultText, log] = await Promise.all([blobs.get(keys.result), blobs.get(keys.log)]);
  if (!resultText && !log) return null;
  const result = resultText ? parseBuildResult(resultText.toString('utf8')) : null;
  if (result) return { buildId, state: result.status === 'succeeded' ? 'SUCCEEDED' : 'FAILED' };
  // The runner ends the log of a build it cut off with this note (see local-builder.ts).
  const timedOut = log ? /\[timed out after (\d+) s\]\n?$/.exec(log.subarray(-200).toString('utf8')) : null;
  return timedOut ? { buildId, state: 'TIMED_OUT', timeoutS: Number(timedOut[1]) } : { buildId, state: 'FAULT' };
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Starts the worker: first takes over what a previous run (or a dead worker) left in flight, recording the builds
 * that had finished and queueing the others again, then claims up to `concurrency` builds at a time. It looks for
 * work when a build is enqueued, when a build ends, and every `pollMs`; it renews its leases every third of
 * `config.buildLeaseS` and looks for expired ones every half.
 */
export async function startBuildWorker(options: BuildWorkerOptions): Promise<BuildWorker> {
  const { deps, builder, log } = options;
  const { store } = deps;
  const pollMs = options.pollMs ?? 2000;
  const reapEveryMs = options.reapEveryMs ?? 60_000;
  const leaseS = deps.config.buildLeaseS;
  const workerId = options.workerId ?? newWorkerId();
  const retry = options.recordRetryMs ?? RECORD_RETRY_MS;
  const dispatchDeps = { ...deps, builder };

  /** Builds this worker holds the lease of and whose end has not been recorded yet. */
  const inFlight = new Set<string>();
  const completions = new Set<Promise<void>>();
  let stopped = false;
  /** Wakes the record retries' waits at stop. */
  const stopWaiters = new Set<() => void>();
  let pumping: Promise<void> | undefined;
  let again = false;

  /** Waits `ms`, or less when the worker stops. */
  function pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        stopWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      stopWaiters.add(done);
    });
  }

  /** Fails a build that this worker could not start or finish, so that it never stays in flight. */
  async function failBuild(buildId: string, message: string): Promise<void> {
    try {
      const failed = await store.transitionBuild(buildId, ['starting', 'running'], 'failed', { message });
      if (failed) deps.metrics.count('BuildsFailed');
    } catch (error) {
      log.error('a build could not be marked failed', error, { buildId });
    }
  }

  /**
   * Records an end in one transaction that first checks, and locks, this worker's lease: a build another worker
   * took over meanwhile is left to that worker ('lost').
   */
  function record(end: BuildEnded): Promise<'recorded' | 'not-in-flight' | 'lost'> {
    return store.transaction(async (tx) => {
      if (!(await tx.holdsLease(end.buildId, workerId))) return 'lost';
      const finished = await completeBuild({ ...deps, store: tx, log }, end);
      if (!finished) return 'not-in-flight';
      log.info('build finished', { buildId: end.buildId, status: finished.status, message: finished.message });
      return 'recorded';
    });
  }

  /**
   * Records an end, retrying with backoff while the database is unavailable, so a build that finished during an
   * outage is recorded once it is back (its outputs are stored already). At stop the retries end and the build
   * stays in flight: the next start (or another worker, after the lease) records it from its outputs.
   */
  async function recordWithRetry(end: BuildEnded): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        const outcome = await record(end);
        if (outcome === 'lost') log.warn('another worker took this build over; its end here is not recorded', { buildId: end.buildId });
        if (attempt > 0) log.info('recorded a build end after the database came back', { buildId: end.buildId, attempts: attempt + 1 });
        return;
      } catch (error) {
        if (!(error instanceof DatabaseUnavailableError)) {
          log.error('a build result could not be recorded', error, { buildId: end.buildId });
          await failBuild(end.buildId, `the build result could not be recorded: ${errorText(error)}`);
          return;
        }
        if (stopped) {
          log.warn('stopping with a build end unrecorded (the database is unavailable); the next start records it', { buildId: end.buildId });
          return;
        }
        const waitMs = Math.min(retry.max, retry.first * 2 ** Math.min(attempt, 20));
        if (attempt === 0 || waitMs === retry.max) {
          log.warn('a build end could not be recorded: the database is unavailable; retrying', {
            buildId: end.buildId, attempt: attempt + 1, retryInMs: waitMs, error: errorText(error),
          });
        }
        await pause(waitMs);
      }
    }
  }

  /** Whether `error` says only that the database is away (worth a warning, not an error with a stack). */
  const isOutage = (error: unknown) => error instanceof DatabaseUnavailableError;

  /** Takes over builds whose lease expired: records those that had finished, queues the others again. */
  async function takeOver(expiredAfterS: number, message: string): Promise<void> {
    for (;;) {
      const ids = await store.takeOverExpiredLeases(workerId, expiredAfterS, TAKEOVER_BATCH);
      if (ids.length === 0) return;
      const requeue: string[] = [];
      for (const buildId of ids) {
        await removeRemainsOf(buildId);
        let end: BuildEnded | null = null;
        try {
          end = await endFromOutputs(deps.blobs, buildId);
        } catch (error) {
          log.warn('the outputs of a build taken over could not be read; it is built again', { buildId, error: errorText(error) });
        }
        if (!end) {
          requeue.push(buildId);
          continue;
        }
        inFlight.add(buildId);
        try {
          await recordWithRetry(end);
          log.info('recorded a build that had finished without being recorded, from its stored outputs', { buildId, state: end.state });
        } finally {
          inFlight.delete(buildId);
        }
      }
      const requeued = await store.requeueLeasedBuilds(workerId, requeue, message);
      if (requeued.length > 0) log.info('queued again builds whose worker had gone', { builds: requeued });
      if (ids.length < TAKEOVER_BATCH) return;
    }
  }

  /**
   * Renews the leases of this worker's builds. A build whose lease is gone (another worker took it over while this
   * one could not renew, say through a long outage) is no longer this worker's: its processes are ended, so it is
   * never built twice at once, and its end is not recorded here.
   */
  async function heartbeat(): Promise<void> {
    const mine = [...inFlight];
    if (mine.length === 0) return;
    const held = new Set(await store.renewLeases(workerId, mine));
    for (const buildId of mine) {
      if (held.has(buildId) || !inFlight.has(buildId)) continue;
      // Not held: taken over, or already recorded by this worker between the read and the renewal.
      const stillOurs = await store.holdsLease(buildId, workerId);
      if (stillOurs) continue;
      const job = await store.getBuildJob(buildId);
      if (job && (job.status === 'succeeded' || job.status === 'failed')) continue;
      inFlight.delete(buildId);
      log.error('lost the lease of a running build to another worker; ending it here', undefined, { buildId });
      await endLostBuild(buildId);
    }
  }

  /** The scratch dirs of a build under buildsDir (`<build id>-XXXXXX`). */
  async function scratchDirsOf(buildId: string): Promise<string[]> {
    if (!options.buildsDir) return [];
    const names = await readdir(options.buildsDir).catch(() => [] as string[]);
    return names.filter((n) => n.startsWith(`${buildId}-`)).map((n) => join(options.buildsDir!, n));
  }

  /** Ends the processes of a build this worker no longer holds; its own run removes its scratch dir. */
  async function endLostBuild(buildId: string): Promise<void> {
    for (const dir of await scratchDirsOf(buildId)) await endProcessTree({ dir }, 3000).catch(() => {});
  }

  /**
   * Removes what the dead worker of a build taken over left in a shared data directory (its scratch dir, and any
   * process still in it), before the build is queued again and gets a new one.
   */
  async function removeRemainsOf(buildId: string): Promise<void> {
    for (const dir of await scratchDirsOf(buildId)) {
      await endProcessTree({ dir }, 0).catch(() => {});
      await rm(dir, { recursive: true, force: true, maxRetries: 3 }).catch((error: unknown) => {
        log.warn('the scratch dir of a build taken over could not be removed', { buildId, dir, error: errorText(error) });
      });
    }
  }

  async function claimAndStart(): Promise<void> {
    while (!stopped) {
      const free = options.concurrency - builder.active();
      if (free <= 0) return;
      const ids = await store.claimQueuedBuilds(free, workerId);
      if (ids.length === 0) return;
      for (const id of ids) {
        inFlight.add(id);
        try {
          const outcome = await startClaimedBuild(dispatchDeps, id, 'fail');
          if (outcome !== 'started') inFlight.delete(id);
          if (outcome === 'failed') log.warn('a build could not be started', { buildId: id });
        } catch (error) {
          log.error('a build could not be started', error, { buildId: id });
          inFlight.delete(id);
          await failBuild(id, `the build could not be started: ${errorText(error)}`);
        }
      }
    }
  }

  /** Looks for work, one look at a time; a wake-up during a look asks for one more. */
  function wake(): void {
    if (stopped) return;
    if (pumping) {
      again = true;
      return;
    }
    pumping = (async () => {
      do {
        again = false;
        try {
          await claimAndStart();
        } catch (error) {
          if (isOutage(error)) log.warn('claiming queued builds failed: the database is unavailable', { error: errorText(error) });
          else log.error('claiming queued builds failed', error);
        }
      } while (again && !stopped);
    })().finally(() => {
      pumping = undefined;
    });
  }

  async function ended(end: BuildEnded): Promise<void> {
    const completion = (async () => {
      try {
        // A build whose lease this worker lost is another worker's now.
        if (!inFlight.has(end.buildId)) {
          log.warn('the end of a build this worker no longer holds is not recorded', { buildId: end.buildId });
          return;
        }
        await recordWithRetry(end);
      } finally {
        inFlight.delete(end.buildId);
      }
    })();
    completions.add(completion);
    try {
      await completion;
    } finally {
      completions.delete(completion);
      wake();
    }
  }

  async function reap(): Promise<void> {
    try {
      const report = await reapBuilds(deps, { giveUpOnQueued: false });
      if (report.failed.length + report.abandoned.length > 0) log.warn('reaped stuck builds', { ...report });
    } catch (error) {
      if (isOutage(error)) log.warn('reaping stuck builds failed: the database is unavailable', { error: errorText(error) });
      else log.error('reaping stuck builds failed', error);
    }
  }

  /** One lease pass: renew this worker's, then take over expired ones (in that order, so its own never lapse first). */
  let leasing: Promise<void> | undefined;
  function leasePass(renew: boolean, takeOverToo: boolean): void {
    if (stopped || leasing || !(renew || takeOverToo)) return;
    leasing = (async () => {
      try {
        if (renew) await heartbeat();
        if (takeOverToo && !stopped) await takeOver(leaseS, REQUEUED_ON_LEASE_EXPIRY);
      } catch (error) {
        if (isOutage(error)) log.warn('renewing or taking over build leases failed: the database is unavailable', { error: errorText(error) });
        else log.error('renewing or taking over build leases failed', error);
      }
    })().finally(() => {
      leasing = undefined;
      wake();
    });
  }

  // At start: scratch dirs and processes a previous run left are removed unless another live worker may be using
  // the same data directory (a shared database); then what lost its worker is taken over.
  const exclusive = options.exclusive ?? false;
  if (exclusive || !(await store.hasLiveLeasesOfOthers(workerId, leaseS))) await builder.removeLeftovers?.();
  await takeOver(exclusive ? 0 : leaseS, REQUEUED_ON_RESTART);

  const unsubscribe = options.queue.onEnqueue(wake);
  const poll = setInterval(wake, pollMs);
  const reaper = setInterval(() => void reap(), reapEveryMs);
  // A tick is a sixth of the lease: renew every third of it (two ticks), take over every half (three ticks).
  let ticks = 0;
  const leases = setInterval(() => {
    ticks += 1;
    leasePass(ticks % 2 === 0, ticks % 3 === 0);
  }, (leaseS * 1000) / 6);
  poll.unref();
  reaper.unref();
  leases.unref();
  wake();

  return {
    ended,
    async stop() {
      if (stopped) return;
      stopped = true;
      unsubscribe();
      clearInterval(poll);
      clearInterval(reaper);
      clearInterval(leases);
      for (const wakeUp of [...stopWaiters]) wakeUp();
      await pumping;
      await leasing;
      await builder.stopAll();
      await Promise.all([...completions]);
      try {
        await store.requeueLeasedBuilds(workerId, [...inFlight], REQUEUED_ON_STOP);
      } catch (error) {
        log.error('the running builds could not be queued again', error, { builds: [...inFlight] });
      }
      inFlight.clear();
    },
  };
}

export interface LocalBuildsOptions {
  deps: Deps;
  queue: Pick<LocalBuildQueue, 'onEnqueue'>;
  /** The installed OTP; null: builds are failed with a message saying there is none. */
  otp: LocalOtp | null;
  log: Log;
  /** Overrides for tests: another buildspec and its scripts. */
  scriptsDir?: string;
  buildspecPath?: string;
  pollMs?: number;
}

export interface LocalBuilds {
  builder: LocalBuilder;
  worker: BuildWorker;
  stop(): Promise<void>;
}

/**
 * The local build pipeline as `npm start` runs it: a LocalBuilder (scratch dirs under `<dataDir>/builds`) whose
 * ends go to the worker, and the worker, `config.buildConcurrency` builds at a time.
 */
export async function startLocalBuilds(options: LocalBuildsOptions): Promise<LocalBuilds> {
  const { deps, log } = options;
  const { config } = deps;
  const buildsDir = join(config.dataDir, 'builds');
  let worker: BuildWorker | undefined;
  const builder = new LocalBuilder({
    blobs: deps.blobs,
    buildsDir,
    otp: options.otp,
    sandbox: config.sandbox,
    logMaxBytes: config.buildLogMaxBytes,
    limits: config.buildLimits,
    cloneRewrite: config.cloneRewrite,
    dependencies: config.dependencies,
    scriptsDir: options.scriptsDir,
    buildspecPath: options.buildspecPath,
    // The worker exists before any build can start (it is what starts them).
    onEnded: (end) => worker?.ended(end),
    log,
  });
  worker = await startBuildWorker({
    deps, builder, queue: options.queue, concurrency: config.buildConcurrency, log, pollMs: options.pollMs,
    // PGlite's directory takes one owner (its lock), so nobody else can be building from this database.
    exclusive: config.runtime === 'local' && !config.databaseUrl,
    buildsDir,
  });
  const started = worker;
  return { builder, worker: started, stop: () => started.stop() };
}
