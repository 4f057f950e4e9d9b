// MetricsRecorder for the local runtime: totals kept in memory (GET /metrics shows them), nothing printed.
import {
  COUNTER_NAMES, DURATION_NAMES, type CounterName, type DurationName, type MetricsRecorder, type MetricsSnapshot,
} from '#core/metrics.js';

export class InMemoryMetrics implements MetricsRecorder {
  private readonly counters = new Map<CounterName, number>(COUNTER_NAMES.map((n) => [n, 0]));
  private readonly durations = new Map<DurationName, { count: number; sumMs: number }>(
    DURATION_NAMES.map((n) => [n, { count: 0, sumMs: 0 }]),
  );

  count(name: CounterName, n = 1): void {
    if (!Number.isFinite(n)) return;
    this.counters.set(name, (this.counters.get(name) ?? 0) + n);
  }

  duration(name: DurationName, ms: number): void {
    if (!Number.isFinite(ms)) return;
    const d = this.durations.get(name) ?? { count: 0, sumMs: 0 };
    this.durations.set(name, { count: d.count + 1, sumMs: d.sumMs + ms });
  }

  /** Nothing is buffered: the totals are the output. */
  flush(): void {}

  snapshot(): MetricsSnapshot {
    return {
      counters: Object.fromEntries(this.counters) as Record<CounterName, number>,
      durations: Object.fromEntries(
        [...this.durations].map(([name, d]) => [name, { ...d }]),
      ) as Record<DurationName, { count: number; sumMs: number }>,
    };
  }
}
