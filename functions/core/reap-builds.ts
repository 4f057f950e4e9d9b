// The reaper: nothing stays in flight forever. Builds in flight long past the timeout lost their
// completion (a crashed worker, a missed event) and are failed; builds queued too long are sent again
// (the dispatcher's claim makes a duplicate harmless), and failed after a day.
import { BUILDER_QUEUE_LIMIT_S } from './build-contract.js';
import type { MetricsRecorder } from './metrics.js';
import type { BuildQueue, BuildRecords } from './ports.js';

export interface ReapDeps {
  store: Pick<BuildRecords, 'listBuildsOlderThan' | 'transitionBuild'>;
  queue: BuildQueue;
  metrics: MetricsRecorder;
  config: { buildTimeoutS: number };
}

/**
 * How long past its timeout a started build may still be waiting for a machine or reporting its end
 * (the builder's queue limit, then finalizing and event delivery) before it counts as lost.
 */
export const COMPLETION_GRACE_S = BUILDER_QUEUE_LIMIT_S + 300;
/** A queued build older than this is sent to the queue again. */
export const RESEND_AFTER_S = 900;
/** A queued build older than this is given up on. */
export const GIVE_UP_AFTER_S = 86_400;
const BATCH = 100;

export interface ReapReport {
  failed: string[];
  resent: string[];
  abandoned: string[];
}

export interface ReapOptions {
  now?: Date;
  /**
   * Fail builds queued for over GIVE_UP_AFTER_S (default true). The local worker says false: there a
   * build waits only while the service is stopped, and the next start builds it.
   */
  giveUpOnQueued?: boolean;
}

export async function reapBuilds(deps: ReapDeps, options: ReapOptions | Date = {}): Promise<ReapReport> {
  const { now = new Date(), giveUpOnQueued = true } = options instanceof Date ? { now: options } : options;
  const { store } = deps;
  const ago = (s: number) => new Date(now.getTime() - s * 1000);
  const limitS = deps.config.buildTimeoutS + COMPLETION_GRACE_S;

  const failed: string[] = [];
  for (const build of await store.listBuildsOlderThan(['starting', 'running'], ago(limitS), BATCH)) {
    const done = await store.transitionBuild(build.id, ['starting', 'running'], 'failed', {
      message: `no result ${limitS} s after it started (limit ${deps.config.buildTimeoutS} s); the builder lost it, ask for a rebuild`,
    });
    if (done) failed.push(build.id);
  }
  deps.metrics.count('StuckBuilds', failed.length);
  if (failed.length > 0) deps.metrics.count('BuildsFailed', failed.length);

  const abandoned: string[] = [];
  const overdue = giveUpOnQueued ? await store.listBuildsOlderThan(['queued'], ago(GIVE_UP_AFTER_S), BATCH) : [];
  for (const build of overdue) {
    const done = await store.transitionBuild(build.id, ['queued'], 'failed', {
      message: `not started within ${GIVE_UP_AFTER_S / 3600} h of the request; ask for a rebuild`,
    });
    if (done) abandoned.push(build.id);
  }
  if (abandoned.length > 0) deps.metrics.count('BuildsFailed', abandoned.length);

  const resent = (await store.listBuildsOlderThan(['queued'], ago(RESEND_AFTER_S), BATCH)).map((b) => b.id);
  if (resent.length > 0) await deps.queue.enqueue(resent);
  return { failed, resent, abandoned };
}
