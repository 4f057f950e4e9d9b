// The process dependencies: ready synchronously once built, built again after a failure, and blobs wired
// without making an S3 client until one is needed.
import { afterEach, describe, expect, it } from 'vitest';
import { FsBlobStore } from '#adapters/blob/fs-blob-store.js';
import { S3BlobStore } from '#adapters/blob/s3-blob-store.js';
import { InMemoryMetrics } from '#adapters/metrics/memory-metrics.js';
import type { BlobStore, Store } from '#core/ports.js';
import { loadConfig } from '#functions/config.js';
import { deps, openBlobStore, readyDeps, useDeps, type Deps } from '#functions/wiring.js';
import { idlePipeline } from '#support/pipeline-deps.js';

const saved = { ...process.env };
afterEach(() => {
  for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
  Object.assign(process.env, saved);
});

describe('deps', () => {
  it('forgets a build that failed, so the next request builds again', async () => {
    // The aws runtime without a database: buildDeps refuses, before opening anything.
    process.env.ENOT_RUNTIME = 'aws';
    delete process.env.ENOT_DB_CLUSTER_ARN;
    delete process.env.ENOT_DB_SECRET_ARN;
    const first = deps();
    await expect(first).rejects.toThrow(/ENOT_DB_CLUSTER_ARN/);
    expect(readyDeps()).toBeUndefined();
    const second = deps();
    expect(second).not.toBe(first);
    await expect(second).rejects.toThrow(/ENOT_DB_CLUSTER_ARN/);
  });

  it('hands installed dependencies out at once, and as the promise', async () => {
    const installed: Deps = {
      config: loadConfig({ ENOT_LOG_LEVEL: 'silent' }),
      store: {} as Store,
      blobs: {} as BlobStore,
      ...idlePipeline(),
      metrics: new InMemoryMetrics(),
    };
    useDeps(installed);
    expect(readyDeps()).toBe(installed);
    expect(await deps()).toBe(installed);
  });
});

describe('openBlobStore', () => {
  it('wires S3 on aws, files locally', () => {
    const aws = openBlobStore(loadConfig({ ENOT_RUNTIME: 'aws', ENOT_BUCKET: 'b', AWS_REGION: 'eu-west-1' }));
    expect(aws).toBeInstanceOf(S3BlobStore);
    // No client yet: it is made from the config on first use, after the SDK is loaded.
    expect((aws as unknown as { client?: unknown }).client).toBeUndefined();
    expect(openBlobStore(loadConfig({ ENOT_RUNTIME: 'local' }))).toBeInstanceOf(FsBlobStore);
    expect(() => openBlobStore(loadConfig({ ENOT_RUNTIME: 'aws' }))).toThrow(/ENOT_BUCKET/);
  });
});
