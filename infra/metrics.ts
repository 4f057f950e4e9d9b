// The custom metrics the alarms and dashboard watch: the names functions/core/metrics.ts publishes, and the
// dimensions Powertools gives them.
import { METRICS_NAMESPACE, SERVICE_NAME, type MetricName } from '#core/metrics.js';

export { METRICS_NAMESPACE, SERVICE_NAME };

/** Powertools adds the service name as the `service` dimension; an alarm must name exactly these to see data. */
export const METRICS_DIMENSIONS = { service: SERVICE_NAME } as const;

/** Published metrics the monitoring reads, checked against functions/core/metrics.ts by the type. */
export const BUILD_METRICS = {
  queued: 'BuildsQueued',
  succeeded: 'BuildsSucceeded',
  failed: 'BuildsFailed',
  duration: 'BuildDuration',
  downloads: 'Downloads',
  ertsDownloads: 'ErtsDownloads',
} as const satisfies Record<string, MetricName>;

/**
 * Builds the reaper found stuck past the build timeout (and failed), per run. Published by the reaper, which
 * comes with the build pipeline and adds the name to functions/core/metrics.ts.
 */
export const STUCK_BUILDS_METRIC = 'StuckBuilds';
