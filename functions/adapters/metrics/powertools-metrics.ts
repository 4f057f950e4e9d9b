// MetricsRecorder on AWS: Powertools Metrics, buffered per invocation and flushed as CloudWatch EMF to stdout.
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import {
  METRICS_NAMESPACE, SERVICE_NAME, type CounterName, type DurationName, type MetricsRecorder,
} from '#core/metrics.js';

/** What Powertools needs to report its own problems (an invalid metric, a full buffer). */
type GenericLogger = NonNullable<ConstructorParameters<typeof Metrics>[0]>['logger'];

let shared: Metrics | undefined;

/** The process's one Metrics instance (namespace EnotBuilder, dimension service=enot-builder). */
export function sharedPowertoolsMetrics(logger?: GenericLogger): Metrics {
  shared ??= new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE_NAME, ...(logger ? { logger } : {}) });
  return shared;
}

export class PowertoolsMetricsRecorder implements MetricsRecorder {
  constructor(private readonly metrics: Metrics) {}

  count(name: CounterName, n = 1): void {
    if (Number.isFinite(n)) this.metrics.addMetric(name, MetricUnit.Count, n);
  }

  duration(name: DurationName, ms: number): void {
    if (Number.isFinite(ms)) this.metrics.addMetric(name, MetricUnit.Milliseconds, ms);
  }

  /**
   * Writes the invocation's metrics as one EMF line. Skipped when nothing was recorded: most
   * requests record nothing, and Powertools would warn about every empty flush.
   */
  flush(): void {
    if (this.metrics.hasStoredMetrics()) this.metrics.publishStoredMetrics();
  }
}
