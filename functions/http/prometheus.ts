// The Prometheus text exposition format (0.0.4), and the service metrics written in it for GET /metrics.
import { BUILD_STATUSES } from '#core/model.js';
import { COUNTER_NAMES, DURATION_NAMES, METRIC_HELP, type MetricName } from '#core/metrics.js';
import type { ServiceMetrics } from '#core/service-metrics.js';

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export interface Sample {
  /** Appended to the family name (`_sum`, `_count` of a summary); none for plain gauges and counters. */
  suffix?: string;
  labels?: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'summary' | 'untyped';
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function escapeLabelValue(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

/** Renders families as exposition text: HELP and TYPE, then one line per sample; ends with a newline. */
export function renderPrometheus(families: MetricFamily[]): string {
  const lines: string[] = [];
  for (const family of families) {
    if (!METRIC_NAME.test(family.name)) throw new Error(`invalid metric name ${JSON.stringify(family.name)}`);
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`);
    lines.push(`# TYPE ${family.name} ${family.type}`);
    for (const sample of family.samples) {
      const entries = Object.entries(sample.labels ?? {});
      for (const [label] of entries) {
        if (!LABEL_NAME.test(label) || label.startsWith('__')) throw new Error(`invalid label name ${JSON.stringify(label)}`);
      }
      const labels = entries.length === 0
        ? ''
        : `{${entries.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`;
      lines.push(`${family.name}${sample.suffix ?? ''}${labels} ${formatValue(sample.value)}`);
    }
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

/** `ErtsDownloads` -> `erts_downloads`. */
function snakeCase(name: MetricName): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
}

/**
 * The families of GET /metrics: `enot_up`, `enot_builds{status}` for every status, `enot_queue_depth`
 * and, when the process keeps totals (local runtime), `enot_<name>_total` counters and
 * `enot_build_duration_seconds` as a summary (sum and count).
 */
export function serviceMetricFamilies(metrics: ServiceMetrics): MetricFamily[] {
  const families: MetricFamily[] = [
    { name: 'enot_up', help: 'Whether the service answered this scrape (always 1 when it did)', type: 'gauge', samples: [{ value: 1 }] },
    {
      name: 'enot_builds',
      help: 'Builds in the store, by status',
      type: 'gauge',
      samples: BUILD_STATUSES.map((status) => ({ labels: { status }, value: metrics.buildsByStatus[status] ?? 0 })),
    },
    { name: 'enot_queue_depth', help: 'Builds waiting to start (queued or starting)', type: 'gauge', samples: [{ value: metrics.queueDepth }] },
  ];
  const totals = metrics.totals;
  if (!totals) return families;
  for (const name of COUNTER_NAMES) {
    families.push({
      name: `enot_${snakeCase(name)}_total`,
      help: `${METRIC_HELP[name]}, since the process started`,
      type: 'counter',
      samples: [{ value: totals.counters[name] ?? 0 }],
    });
  }
  for (const name of DURATION_NAMES) {
    const d = totals.durations[name] ?? { count: 0, sumMs: 0 };
    families.push({
      name: `enot_${snakeCase(name)}_seconds`,
      help: `${METRIC_HELP[name].replace(/, in milliseconds$/, '')}, in seconds, since the process started`,
      type: 'summary',
      samples: [{ suffix: '_sum', value: d.sumMs / 1000 }, { suffix: '_count', value: d.count }],
    });
  }
  return families;
}
