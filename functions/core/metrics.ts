// The metrics port: what the service counts and times, named once, with no SDK behind it.

/** Namespace and service dimension of the CloudWatch metrics (infra's alarms and dashboard use these names). */
export const METRICS_NAMESPACE = 'EnotBuilder';
export const SERVICE_NAME = 'enot-builder';

/** Things that happen, counted. */
export const COUNTER_NAMES = [
  'BuildsQueued',
  'BuildsSucceeded',
  'BuildsFailed',
  'Downloads',
  'ErtsDownloads',
  'WebhookDeliveries',
  'StuckBuilds',
  'ArtifactChecksumMismatch',
] as const;

/** Things that take time, in milliseconds. */
export const DURATION_NAMES = ['BuildDuration'] as const;

export type CounterName = (typeof COUNTER_NAMES)[number];
export type DurationName = (typeof DURATION_NAMES)[number];
export type MetricName = CounterName | DurationName;

/** One line per metric: what it means (README, Prometheus HELP). */
export const METRIC_HELP: Record<MetricName, string> = {
  BuildsQueued: 'Builds queued (a new build row, not a returned existing one)',
  BuildsSucceeded: 'Builds that finished successfully',
  BuildsFailed: 'Builds that finished with a failure (compile error, timeout, infrastructure)',
  Downloads: 'Packages served by /download and /get (a stream or a presigned redirect)',
  ErtsDownloads: 'ERTS tarballs served by /download_erts',
  WebhookDeliveries: 'GitHub webhook deliveries accepted by /callback',
  StuckBuilds: 'Builds the reaper found in flight past the build timeout (and failed)',
  ArtifactChecksumMismatch: 'Downloads refused because the stored package or ERTS does not match its recorded sha256',
  BuildDuration: 'Time from a build starting to its end, in milliseconds',
};

/** What a recorder has counted since the process started (only where one process sees everything). */
export interface MetricsSnapshot {
  counters: Record<CounterName, number>;
  durations: Record<DurationName, { count: number; sumMs: number }>;
}

/**
 * Records metrics. Use cases call count/duration; entry points call flush at the end of each
 * invocation (on AWS that writes them out as CloudWatch EMF; locally it does nothing).
 */
export interface MetricsRecorder {
  count(name: CounterName, n?: number): void;
  duration(name: DurationName, ms: number): void;
  flush(): void;
  /** Totals since start, when this recorder keeps them (the local runtime); absent on AWS. */
  snapshot?(): MetricsSnapshot;
}
