// The metrics port's adapters (in memory, Powertools EMF), the flush at the end of every invocation,
// and the download use cases counting what they serve.
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { InMemoryMetrics } from '#adapters/metrics/memory-metrics.js';
import { PowertoolsMetricsRecorder, sharedPowertoolsMetrics } from '#adapters/metrics/powertools-metrics.js';
import { METRICS_NAMESPACE, SERVICE_NAME, type MetricsRecorder } from '#core/metrics.js';
import type { BuildView, Erts } from '#core/model.js';
import type { BlobStore, DownloadResponse, Store } from '#core/ports.js';
import { downloadBuildArtifact, downloadErts, downloadLatestPackage } from '#core/read-artifacts.js';
import { loadConfig } from '#functions/config.js';
import { openMetrics, useDeps } from '#functions/wiring.js';
import { endpoint } from '#functions/service-endpoint.js';
import { ok } from '#http/envelope.js';
import { idlePipeline } from '#support/pipeline-deps.js';

afterEach(() => vi.restoreAllMocks());

/** Captures what is written to stdout while `fn` runs. */
async function stdoutOf(fn: () => unknown): Promise<string[]> {
  const writes: string[] = [];
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    writes.push(String(chunk));
    return true;
  });
  try {
    await fn();
  } finally {
    spy.mockRestore();
  }
  return writes;
}

describe('InMemoryMetrics', () => {
  it('adds up counts and durations, starting every metric at zero', () => {
    const m = new InMemoryMetrics();
    expect(m.snapshot().counters.Downloads).toBe(0);
    m.count('Downloads');
    m.count('Downloads', 2);
    m.count('ErtsDownloads');
    m.count('BuildsFailed', Number.NaN);
    m.duration('BuildDuration', 1500);
    m.duration('BuildDuration', 500);
    m.duration('BuildDuration', Number.POSITIVE_INFINITY);
    const s = m.snapshot();
    expect(s.counters).toEqual({
      BuildsQueued: 0, BuildsSucceeded: 0, BuildsFailed: 0, Downloads: 3, ErtsDownloads: 1, WebhookDeliveries: 0, StuckBuilds: 0, ArtifactChecksumMismatch: 0,
    });
    expect(s.durations.BuildDuration).toEqual({ count: 2, sumMs: 2000 });
  });

  it('hands out copies, and prints nothing when flushed', async () => {
    const m = new InMemoryMetrics();
    const before = m.snapshot();
    m.count('Downloads');
    m.duration('BuildDuration', 1);
    expect(before.counters.Downloads).toBe(0);
    expect(before.durations.BuildDuration.count).toBe(0);
    expect(await stdoutOf(() => m.flush())).toEqual([]);
  });
});

describe('PowertoolsMetricsRecorder', () => {
  const fresh = () => new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE_NAME });

  it('records what it is told under the namespace, with the service dimension and units', () => {
    const metrics = fresh();
    const recorder = new PowertoolsMetricsRecorder(metrics);
    recorder.count('Downloads');
    recorder.count('Downloads', 2);
    recorder.count('WebhookDeliveries');
    recorder.duration('BuildDuration', 1234);
    const emf = metrics.serializeMetrics() as unknown as Record<string, unknown> & {
      _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] };
    };
    const [directive] = emf._aws.CloudWatchMetrics;
    expect(directive.Namespace).toBe('EnotBuilder');
    expect(directive.Dimensions).toEqual([['service']]);
    expect(emf.service).toBe('enot-builder');
    expect(directive.Metrics).toEqual(expect.arrayContaining([
      expect.objectContaining({ Name: 'Downloads', Unit: 'Count' }),
      expect.objectContaining({ Name: 'WebhookDeliveries', Unit: 'Count' }),
      expect.objectContaining({ Name: 'BuildDuration', Unit: 'Milliseconds' }),
    ]));
    expect(emf.Downloads).toEqual([1, 2]);
    expect(emf.WebhookDeliveries).toBe(1);
    expect(emf.BuildDuration).toBe(1234);
  });

  it('flushes one EMF line with the values, then nothing until more is recorded', async () => {
    const metrics = fresh();
    const recorder = new PowertoolsMetricsRecorder(metrics);
    expect(await stdoutOf(() => recorder.flush())).toEqual([]);
    recorder.count('ErtsDownloads', 3);
    const lines = await stdoutOf(() => recorder.flush());
    expect(lines).toHaveLength(1);
    const emf = JSON.parse(lines[0]) as Record<string, unknown>;
    expect(emf.ErtsDownloads).toBe(3);
    expect(emf.service).toBe('enot-builder');
    expect(await stdoutOf(() => recorder.flush())).toEqual([]);
  });

  it('shares one Metrics per process', () => {
    expect(sharedPowertoolsMetrics()).toBe(sharedPowertoolsMetrics());
  });
});

describe('openMetrics', () => {
  it('keeps totals in memory locally and writes EMF on aws', () => {
    const local = openMetrics(loadConfig({ ENOT_RUNTIME: 'local' }));
    const aws = openMetrics(loadConfig({ ENOT_RUNTIME: 'aws', ENOT_LOG_LEVEL: 'silent' }));
    expect(local).toBeInstanceOf(InMemoryMetrics);
    expect(local.snapshot).toBeTypeOf('function');
    expect(aws).toBeInstanceOf(PowertoolsMetricsRecorder);
    expect(aws.snapshot).toBeUndefined();
  });
});

describe('the endpoint stack', () => {
  function spyRecorder() {
    return { count: vi.fn(), duration: vi.fn(), flush: vi.fn() } satisfies MetricsRecorder;
  }

  function install(metrics: MetricsRecorder) {
    useDeps({
      config: loadConfig({ ENOT_LOG_LEVEL: 'silent' }),
      store: {} as Store,
      blobs: {} as BlobStore,
      ...idlePipeline(),
      metrics,
    });
  }

  const event = {
    httpMethod: 'GET', path: '/x', resource: '/x', headers: {}, body: null, isBase64Encoded: false,
    requestContext: { requestId: 'gw' },
  } as unknown as APIGatewayProxyEvent;
  const context = { awsRequestId: 'r' } as Context;

  it('flushes the metrics once, after the endpoint recorded them', async () => {
    const metrics = spyRecorder();
    install(metrics);
    const h = endpoint({}, async ({ deps }) => {
      deps.metrics.count('Downloads');
      expect(metrics.flush).not.toHaveBeenCalled();
      return ok(true);
    });
    expect((await h(event, context)).statusCode).toBe(200);
    expect(metrics.count).toHaveBeenCalledWith('Downloads');
    expect(metrics.flush).toHaveBeenCalledTimes(1);
  });

  it('flushes on failure too, and a failing flush does not change the answer', async () => {
    const metrics = spyRecorder();
    install(metrics);
    const failing = endpoint({}, async () => { throw new Error('boom'); });
    expect((await failing(event, context)).statusCode).toBe(500);
    expect(metrics.flush).toHaveBeenCalledTimes(1);

    metrics.flush.mockImplementation(() => { throw new Error('EMF too large'); });
    const fine = endpoint({}, async () => ok('fine'));
    const r = await fine(event, context);
    expect(r.statusCode).toBe(200);
    expect(JSON.parse(r.body)).toEqual({ result: true, response: 'fine' });
  });
});

describe('download use cases', () => {
  const sha256 = 'ab'.repeat(32);
  const build = {
    id: 'b', status: 'succeeded', artifactKey: 'artifacts/b.ep', artifactSha256: sha256, name: 'pkg',
  } as unknown as BuildView;
  const erts = { release: '25', ertsVersion: '13.2', key: 'erts/25.tar', sha256 } as unknown as Erts;
  const served: DownloadResponse = { kind: 'redirect', status: 302, location: 'https://example.test/x', version: 'v1' };
  const log = { info() {}, warn() {}, error() {} };

  function ports(found: boolean) {
    const metrics = new InMemoryMetrics();
    const store = {
      getBuild: async () => build,
      findLatestSuccessfulBuild: async () => build,
      getErts: async () => erts,
    } as unknown as Store;
    const blobs = {
      download: async () => (found ? served : null),
      digest: async () => ({ sha256, size: 0, version: 'v1' }),
    } as unknown as BlobStore;
    return { store, blobs, metrics, log };
  }

  it('count a Download for /download and /get and an ErtsDownload for /download_erts when served', async () => {
    const p = ports(true);
    expect(await downloadBuildArtifact(p, 'b')).toBe(served);
    expect(await downloadLatestPackage(p, { namespace: 'a', name: 'pkg' }, {})).toBe(served);
    expect(await downloadErts(p, '25')).toBe(served);
    expect(p.metrics.snapshot().counters).toMatchObject({ Downloads: 2, ErtsDownloads: 1 });
  });

  it('count nothing when the blob is missing', async () => {
    const p = ports(false);
    expect(await downloadBuildArtifact(p, 'b')).toBeNull();
    expect(await downloadLatestPackage(p, { namespace: 'a', name: 'pkg' }, {})).toBeNull();
    expect(await downloadErts(p, '25')).toBeNull();
    expect(p.metrics.snapshot().counters).toMatchObject({ Downloads: 0, ErtsDownloads: 0 });
    // A stream counts like a redirect.
    const q = ports(true);
    (q.blobs as unknown as { download: () => Promise<DownloadResponse> }).download = async () => ({
      kind: 'stream', body: Readable.from([]), size: 0, contentType: 'application/x-tar', version: 'v1',
    });
    await downloadBuildArtifact(q, 'b');
    expect(q.metrics.snapshot().counters.Downloads).toBe(1);
  });
});
