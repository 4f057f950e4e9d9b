// Dispatch: a queued build becomes a started one. The SQS dispatcher (workers/start-build) claims the
// build itself; the local worker claims a batch from the Store first. Both then start it the same way.
import type { Builder, BuildRecords } from './ports.js';
import type { MetricsRecorder } from './metrics.js';

export interface DispatchDeps {
  store: Pick<BuildRecords, 'getBuildJob' | 'transitionBuild'>;
  builder: Builder;
  metrics: MetricsRecorder;
  config: { buildTimeoutS: number };
}

export type DispatchOutcome =
  /** Started on the builder; its end arrives through completeBuild. */
  | 'started'
  /** Not queued any more (a duplicate delivery, or a build already taken): nothing done. */
  | 'not-queued'
  /** Could not be started and was failed with the reason. */
  | 'failed';

/**
 * What to do when the builder refuses: `retry` puts the build back in the queue and rethrows, so the
 * queue delivers it again (SQS; after its receive limit the message goes to the DLQ and the reaper
 * fails the build); `fail` fails the build with the builder's reason (the local worker, whose builder
 * only fails to start when the machine cannot run it).
 */
export type StartErrorPolicy = 'retry' | 'fail';

/** The SQS path: claims the build (queued -> starting, conditional) and starts it. */
export async function dispatchBuild(deps: DispatchDeps, buildId: string, onError: StartErrorPolicy = 'retry'): Promise<DispatchOutcome> {
  const claimed = await deps.store.transitionBuild(buildId, ['queued'], 'starting');
  if (!claimed) return 'not-queued';
  return startClaimedBuild(deps, buildId, onError);
}

/** Starts a build already claimed (status `starting`) and records the builder's id (-> running). */
export async function startClaimedBuild(deps: DispatchDeps, buildId: string, onError: StartErrorPolicy = 'retry'): Promise<DispatchOutcome> {
  const job = await deps.store.getBuildJob(buildId);
  if (!job) return 'not-queued';
  let builderId: string;
  try {
    ({ builderId } = await deps.builder.start({
      buildId,
      namespace: job.namespace,
      name: job.name,
      cloneUrl: job.cloneUrl,
      ref: job.ref,
      erlVersion: job.erlVersion,
      timeoutS: deps.config.buildTimeoutS,
    }));
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    if (onError === 'retry') {
      await deps.store.transitionBuild(buildId, ['starting'], 'queued', { message: `waiting to start: ${reason}` });
      throw error;
    }
    const failed = await deps.store.transitionBuild(buildId, ['starting'], 'failed', {
      message: `the build could not be started: ${reason}`,
    });
    if (failed) deps.metrics.count('BuildsFailed');
    return 'failed';
  }
  // A fast local build may have finished already; then it is no longer `starting` and this does nothing.
  await deps.store.transitionBuild(buildId, ['starting'], 'running', { builderId });
  return 'started';
}
