// The /metrics use case: the service's state as gauges (builds per status, queue depth) plus in-process totals.
import { BUILD_STATUSES, type BuildStatus } from './model.js';
import type { MetricsRecorder, MetricsSnapshot } from './metrics.js';
import type { StoreProbes } from './ports.js';

/** Where the number of builds waiting to start comes from; the SQS queue's depth can stand in later. */
export interface QueueDepthSource {
  queueDepth(): Promise<number>;
}

export interface ServiceMetrics {
  buildsByStatus: Record<BuildStatus, number>;
  /** Builds waiting to start. */
  queueDepth: number;
  /** Totals since the process started, where one process sees every request (local runtime). */
  totals?: MetricsSnapshot;
}

/** Until the queue can be asked: builds the store holds as queued or starting. */
export function queueDepthFromCounts(counts: Record<BuildStatus, number>): number {
  return counts.queued + counts.starting;
}

/**
 * Collects the service metrics.
 * Input: the store, optionally a queue depth source, and the metrics recorder.
 * Output: the count of builds in each status (all five, zero included), the queue depth and, when
 * the recorder keeps them, its totals.
 * Primary course: one grouped count from the store; the queue depth is asked of the source in
 * parallel, else derived from those counts.
 */
/** What collectServiceMetrics reads. */
export interface ServiceMetricsDeps {
  store: Pick<StoreProbes, 'countBuildsByStatus'>;
  metrics?: MetricsRecorder;
  queue?: QueueDepthSource;
}

export async function collectServiceMetrics(deps: ServiceMetricsDeps): Promise<ServiceMetrics> {
  const [counts, depth] = await Promise.all([deps.store.countBuildsByStatus(), deps.queue?.queueDepth()]);
  const buildsByStatus = Object.fromEntries(BUILD_STATUSES.map((s) => [s, counts[s] ?? 0])) as Record<BuildStatus, number>;
  return {
    buildsByStatus,
    queueDepth: depth ?? queueDepthFromCounts(buildsByStatus),
    totals: deps.metrics?.snapshot?.(),
  };
}
