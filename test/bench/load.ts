// One load run: autocannon at a fixed concurrency and duration over a rotating pool of requests,
// with its own sub-millisecond latency record (autocannon's histogram counts whole milliseconds).
import autocannon from 'autocannon';
import { createRequire } from 'node:module';

// autocannon concatenates every response body into a string, for body checks this benchmark does not
// use (the probes check answers instead). At 50 kB answers that costs the load generator about twenty
// times what serving them costs, and every large-body figure would be the client's limit, not the
// server's. So the accumulation is switched off; if autocannon's internals change, say so rather than
// measure the wrong thing.
const PipelinedRequestsQueue = createRequire(import.meta.url)('autocannon/lib/pipelinedRequestsQueue.js') as {
  prototype: { addBody?: unknown };
};
if (typeof PipelinedRequestsQueue.prototype.addBody !== 'function') {
  throw new Error('autocannon internals changed: PipelinedRequestsQueue.prototype.addBody is gone (see test/bench/load.ts)');
}
PipelinedRequestsQueue.prototype.addBody = function discardBody(): void {};

export interface LoadRequest {
  method: 'GET' | 'POST';
  path: string;
  body?: string;
}

export interface LoadSettings {
  connections: number;
  durationS: number;
  /** A run at the same concurrency before the measured one (JIT, connection pools, caches). */
  warmupS: number;
}

export interface LoadResult {
  requests: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  maxMs: number;
  /** Connection errors and timeouts. */
  errors: number;
  non2xx: number;
  statusCodes: Record<string, number>;
  durationS: number;
}

/** Responses recorded per run at most: far above what two cores answer in the longest run. */
const MAX_SAMPLES = 4_000_000;

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index];
}

/**
 * Loads `baseUrl` with `requests`, each connection taking the next request of the pool in turn, so
 * the run spreads over the pool instead of one hot key. Resolves with throughput and latency.
 */
export async function runLoad(baseUrl: string, requests: LoadRequest[], settings: LoadSettings): Promise<LoadResult> {
  if (requests.length === 0) throw new Error('empty request pool');
  let next = 0;
  const headers = { 'content-type': 'application/json' };
  const latencies = new Float64Array(MAX_SAMPLES);
  let recorded = 0;
  let responses = 0;

  const instance = autocannon({
    url: baseUrl,
    connections: settings.connections,
    duration: settings.durationS,
    timeout: 10,
    // autocannon ends a run at the first sample tick after its duration: short ticks keep short runs short.
    sampleInt: 100,
    warmup: settings.warmupS > 0 ? { connections: settings.connections, duration: settings.warmupS } : undefined,
    requests: [{
      setupRequest: (request) => {
        const r = requests[next++ % requests.length];
        return { ...request, method: r.method, path: r.path, body: r.body ?? '', headers: r.body ? headers : {} };
      },
    }],
  });
  // Only the measured run's tracker emits here; the warm-up has its own.
  instance.on('response', (_client: unknown, _status: number, _bytes: number, ms: number) => {
    responses++;
    if (recorded < MAX_SAMPLES) latencies[recorded++] = ms;
  });

  const limitMs = (settings.durationS + settings.warmupS) * 1000 + 30_000;
  let timer: NodeJS.Timeout | undefined;
  const result = await Promise.race([
    Promise.resolve(instance),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        instance.stop();
        reject(new Error(`load run on ${baseUrl} did not finish within ${limitMs} ms`));
      }, limitMs);
    }),
  ]).finally(() => clearTimeout(timer));

  const sorted = latencies.subarray(0, recorded).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  const statusCodes = Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, s]) => [code, s.count]));
  return {
    requests: responses,
    rps: responses / result.duration,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    meanMs: recorded > 0 ? sum / recorded : NaN,
    maxMs: recorded > 0 ? sorted[recorded - 1] : NaN,
    errors: result.errors,
    non2xx: result.non2xx,
    statusCodes,
    durationS: result.duration,
  };
}
