// Builds the adapters behind every port from the config (AWS or local). Handlers ask `deps()`;
// the local server and tests install their own with `useDeps()`. Nothing here loads an AWS SDK client
// at import: the S3 adapter loads its SDK on first use, so functions that never touch blobs never pay for it.
import { join } from 'node:path';
import { loadConfig, type Config } from './config.js';
import type { BlobStore, Store } from './core/ports.js';
import type { MetricsRecorder } from './core/metrics.js';
import { openStore } from './adapters/postgres/open-store.js';
import { FsBlobStore } from './adapters/blob/fs-blob-store.js';
import { S3BlobStore } from './adapters/blob/s3-blob-store.js';
import { InMemoryMetrics } from './adapters/metrics/memory-metrics.js';
import { PowertoolsMetricsRecorder, sharedPowertoolsMetrics } from './adapters/metrics/powertools-metrics.js';
import { processLogger } from './http/log.js';

export interface Deps {
  config: Config;
  store: Store;
  blobs: BlobStore;
  metrics: MetricsRecorder;
}

let current: Promise<Deps> | undefined;
let ready: Deps | undefined;

/**
 * The process-wide dependencies, built once per container on first use. A build that fails is
 * forgotten, so the next invocation tries again instead of failing for the container's lifetime.
 */
export function deps(): Promise<Deps> {
  if (!current) {
    const building: Promise<Deps> = buildDeps(loadConfig()).then(
      (d) => {
        if (current === building) ready = d;
        return d;
      },
      (error: unknown) => {
        if (current === building) current = undefined;
        throw error;
      },
    );
    current = building;
  }
  return current;
}

/** The dependencies when they are built already, else undefined: the per-request path without a wait. */
export function readyDeps(): Deps | undefined {
  return ready;
}

/** Installs ready-made dependencies (local server, tests). */
export function useDeps(d: Deps): void {
  current = Promise.resolve(d);
  ready = d;
}

export async function buildDeps(config: Config): Promise<Deps> {
  const store = await openStore(config);
  return { config, store, blobs: openBlobStore(config), metrics: openMetrics(config) };
}

/** CloudWatch EMF through Powertools in AWS; locally, totals in memory (shown by GET /metrics), nothing printed. */
export function openMetrics(config: Config): MetricsRecorder {
  if (config.runtime === 'aws') {
    return new PowertoolsMetricsRecorder(sharedPowertoolsMetrics(processLogger(config.logLevel)));
  }
  return new InMemoryMetrics();
}

export function openBlobStore(config: Config): BlobStore {
  if (config.runtime === 'aws') {
    if (!config.aws.bucket) throw new Error('ENOT_BUCKET is required in the aws runtime');
    return new S3BlobStore({
      clientConfig: {
        region: config.aws.region,
        ...(config.aws.s3Endpoint ? { endpoint: config.aws.s3Endpoint, forcePathStyle: true } : {}),
      },
      bucket: config.aws.bucket,
      presignTtlS: config.presignTtlS,
    });
  }
  return new FsBlobStore(join(config.dataDir, 'blobs'));
}
