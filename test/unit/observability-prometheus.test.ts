// The Prometheus text format: HELP/TYPE lines, label escaping, special values, and GET /metrics' families.
import { describe, expect, it } from 'vitest';
import { COUNTER_NAMES } from '#core/metrics.js';
import type { ServiceMetrics } from '#core/service-metrics.js';
import { renderPrometheus, serviceMetricFamilies } from '#http/prometheus.js';

describe('renderPrometheus', () => {
  it('writes HELP and TYPE before the samples and ends with a newline', () => {
    const text = renderPrometheus([
      { name: 'a_total', help: 'A things', type: 'counter', samples: [{ value: 3 }] },
      { name: 'b', help: 'B', type: 'gauge', samples: [{ labels: { x: '1', y: 'two' }, value: 0.5 }] },
    ]);
    expect(text).toBe(
      '# HELP a_total A things\n# TYPE a_total counter\na_total 3\n'
      + '# HELP b B\n# TYPE b gauge\nb{x="1",y="two"} 0.5\n',
    );
  });

  it('escapes label values and help text', () => {
    const text = renderPrometheus([
      { name: 'm', help: 'back\\slash\nnewline', type: 'gauge', samples: [{ labels: { l: 'q"uo\\te\nx' }, value: 1 }] },
    ]);
    expect(text.split('\n')[0]).toBe('# HELP m back\\\\slash\\nnewline');
    expect(text).toContain('m{l="q\\"uo\\\\te\\nx"} 1\n');
  });

  it('spells NaN and infinities the Prometheus way, and suffixes summary samples', () => {
    const text = renderPrometheus([
      { name: 's', help: 'h', type: 'summary', samples: [{ suffix: '_sum', value: Infinity }, { suffix: '_count', value: NaN }] },
      { name: 'n', help: 'h', type: 'gauge', samples: [{ value: -Infinity }] },
    ]);
    expect(text).toContain('s_sum +Inf\ns_count NaN\n');
    expect(text).toContain('n -Inf\n');
  });

  it('refuses names that would make the output unparsable', () => {
    expect(() => renderPrometheus([{ name: 'bad name', help: '', type: 'gauge', samples: [] }])).toThrow(/metric name/);
    expect(() => renderPrometheus([{ name: 'ok', help: '', type: 'gauge', samples: [{ labels: { 'a-b': 'x' }, value: 1 }] }]))
      .toThrow(/label name/);
    expect(renderPrometheus([])).toBe('');
  });
});

describe('serviceMetricFamilies', () => {
  const metrics: ServiceMetrics = {
    buildsByStatus: { queued: 4, starting: 1, running: 2, succeeded: 17, failed: 3 },
    queueDepth: 5,
  };

  it('shows up, every build status and the queue depth', () => {
    const text = renderPrometheus(serviceMetricFamilies(metrics));
    expect(text).toContain('# TYPE enot_up gauge\nenot_up 1\n');
    expect(text).toContain('# HELP enot_builds ');
    expect(text).toContain(
      '# TYPE enot_builds gauge\n'
      + 'enot_builds{status="queued"} 4\nenot_builds{status="starting"} 1\nenot_builds{status="running"} 2\n'
      + 'enot_builds{status="succeeded"} 17\nenot_builds{status="failed"} 3\n',
    );
    expect(text).toContain('# TYPE enot_queue_depth gauge\nenot_queue_depth 5\n');
    // Totals are shown only where the process keeps them.
    expect(text).not.toContain('_total');
  });

  it('adds the process totals as counters and the build duration as a summary in seconds', () => {
    const counters = Object.fromEntries(COUNTER_NAMES.map((n, i) => [n, i + 1])) as Record<(typeof COUNTER_NAMES)[number], number>;
    const text = renderPrometheus(serviceMetricFamilies({
      ...metrics,
      totals: { counters, durations: { BuildDuration: { count: 2, sumMs: 3500 } } },
    }));
    expect(text).toContain('# TYPE enot_builds_queued_total counter\nenot_builds_queued_total 1\n');
    expect(text).toContain('enot_downloads_total 4\n');
    expect(text).toContain('enot_erts_downloads_total 5\n');
    expect(text).toContain('enot_webhook_deliveries_total 6\n');
    expect(text).toContain('# TYPE enot_build_duration_seconds summary\nenot_build_duration_seconds_sum 3.5\nenot_build_duration_seconds_count 2\n');
    // Every sample line is `name{labels} value`; every family has exactly one HELP and one TYPE.
    const lines = text.trimEnd().split('\n');
    for (const line of lines.filter((l) => !l.startsWith('#'))) expect(line).toMatch(/^[a-z_]+(\{[^}]*\})? [-+0-9.e]+$/);
    const helps = lines.filter((l) => l.startsWith('# HELP')).map((l) => l.split(' ')[2]);
    const types = lines.filter((l) => l.startsWith('# TYPE')).map((l) => l.split(' ')[2]);
    expect(new Set(helps).size).toBe(helps.length);
    expect(types).toEqual(helps);
  });
});
