// The local build worker (`npm start`): claims queued builds from the Store (the local queue), starts them on the
// local builder, records their ends, and reaps what got stuck. The Store is the queue, so a restart loses nothing:
// builds that were running when the service went away are queued again at the next start.
import { join } from 'node:path';
import type { BuildEnded } from '#core/build-contract.js';
import { completeBuild } from '#core/complete-build.js';
import { startClaimedBuild } from '#core/dispatch-build.js';
import { reapBuilds } from '#core/reap-builds.js';
import type { Builder, Log } from '#core/ports.js';
import type { LocalBuildQueue } from '#adapters/queue/local-build-queue.js';
import { LocalBuilder } from '#adapters/builder/local-builder.js';
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
}

export interface BuildWorker {
  /** Records the end of a build (the builder's onEnded calls this) and makes room for the next. */
  ended(ended: BuildEnded): Promise<void>;
  /** Stops claiming, kills the running builds and queues them again for the next start. */
  stop(): Promise<void>;
}

export const REQUEUED_ON_RESTART = 'requeued: the local service restarted while it was building';
export const REQUEUED_ON_STOP = 'requeued: the local service stopped while it was building';

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Starts the worker: first queues again whatever a previous run left in flight (and lets the builder clean up
 * after it), then claims up to `concurrency` builds at a time. It looks for work when a build is enqueued, when
 * a build ends, and every `pollMs`.
 */
export async function startBuildWorker(options: BuildWorkerOptions): Promise<BuildWorker> {
  const { deps, builder, log } = options;
  const { store } = deps;
  const pollMs = options.pollMs ?? 2000;
  const reapEveryMs = options.reapEveryMs ?? 60_000;
  const dispatchDeps = { ...deps, builder };

  await builder.removeLeftovers?.();
  const requeued = await store.requeueInFlightBuilds(REQUEUED_ON_RESTART);
  if (requeued.length > 0) log.info('queued again the builds a previous run left in flight', { builds: requeued });

  /** Builds claimed by this worker whose end has not been recorded yet. */
  const inFlight = new Set<string>();
  const completions = new Set<Promise<void>>();
  let stopped = false;
  let pumping: Promise<void> | undefined;
  let again = false;

  /** Fails a build that this worker could not start or finish, so that it never stays in flight. */
  async function failBuild(buildId: string, message: string): Promise<void> {
    try {
      const failed = await store.transitionBuild(buildId, ['starting', 'running'], 'failed', { message });
      if (failed) deps.metrics.count('BuildsFailed');
    } catch (error) {
      log.error('a build could not be marked failed', error, { buildId });
    }
  }

  async function claimAndStart(): Promise<void> {
    while (!stopped) {
      const free = options.concurrency - builder.active();
      if (free <= 0) return;
      const ids = await store.claimQueuedBuilds(free);
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
          log.error('claiming queued builds failed', error);
        }
      } while (again && !stopped);
    })().finally(() => {
      pumping = undefined;
    });
  }

  async function ended(end: BuildEnded): Promise<void> {
    const completion = (async () => {
      try {
        const finished = await completeBuild({ ...deps, log }, end);
        if (finished) log.info('build finished', { buildId: end.buildId, status: finished.status, message: finished.message });
      } catch (error) {
        log.error('a build result could not be recorded', error, { buildId: end.buildId });
        await failBuild(end.buildId, `the build result could not be recorded: ${errorText(error)}`);
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
      log.error('reaping stuck builds failed', error);
    }
  }

  const unsubscribe = options.queue.onEnqueue(wake);
  const poll = setInterval(wake, pollMs);
  const reaper = setInterval(() => void reap(), reapEveryMs);
  poll.unref();
  reaper.unref();
  wake();

  return {
    ended,
    async stop() {
      if (stopped) return;
      stopped = true;
      unsubscribe();
      clearInterval(poll);
      clearInterval(reaper);
      await pumping;
      await builder.stopAll();
      await Promise.all([...completions]);
      for (const id of inFlight) {
        try {
          await store.transitionBuild(id, ['starting', 'running'], 'queued', { message: REQUEUED_ON_STOP });
        } catch (error) {
          log.error('a running build could not be queued again', error, { buildId: id });
        }
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
  let worker: BuildWorker | undefined;
  const builder = new LocalBuilder({
    blobs: deps.blobs,
    buildsDir: join(config.dataDir, 'builds'),
    otp: options.otp,
    sandbox: config.sandbox,
    logMaxBytes: config.buildLogMaxBytes,
    cloneRewrite: config.cloneRewrite,
    scriptsDir: options.scriptsDir,
    buildspecPath: options.buildspecPath,
    // The worker exists before any build can start (it is what starts them).
    onEnded: (end) => worker?.ended(end),
    log,
  });
  worker = await startBuildWorker({
    deps, builder, queue: options.queue, concurrency: config.buildConcurrency, log, pollMs: options.pollMs,
  });
  const started = worker;
  return { builder, worker: started, stop: () => started.stop() };
}
