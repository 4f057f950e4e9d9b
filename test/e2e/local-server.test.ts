// The local server's lifecycle: close() waits for requests in flight, then refuses new ones.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FsBlobStore } from '#adapters/blob/fs-blob-store.js';
import { InMemoryMetrics } from '#adapters/metrics/memory-metrics.js';
import { openPgliteStore } from '#adapters/postgres/open-store.js';
import type { Store } from '#core/ports.js';
import { loadConfig } from '#functions/config.js';
import { startLocalServer } from '#functions/local/server.js';
import { idlePipeline } from '#support/pipeline-deps.js';

describe('local server shutdown', () => {
  let dataDir: string;
  let store: Store;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'enot-local-server-'));
    store = await openPgliteStore();
  });

  afterAll(async () => {
    await store?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('lets a request in flight finish, then stops accepting', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => { release = resolve; });
    const slow = new Proxy(store, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (prop !== 'searchPackages') return typeof value === 'function' ? value.bind(target) : value;
        return async (...args: Parameters<Store['searchPackages']>) => {
          await gate;
          return target.searchPackages(...args);
        };
      },
    }) as Store;
    const server = await startLocalServer({
      deps: { config: loadConfig({ ENOT_LOG_LEVEL: 'silent', ENOT_DATA_DIR: dataDir }), store: slow, blobs: new FsBlobStore(dataDir), metrics: new InMemoryMetrics(), ...idlePipeline() },
      port: 0,
    });

    const pending = fetch(`${server.url}/search?name=x`);
    await vi.waitFor(() => expect(server.inFlight()).toBeGreaterThan(0), { timeout: 5000, interval: 10 });
    let closed = false;
    const closing = server.close().then(() => { closed = true; });
    // Asserting that close() waits takes time: a tenth of a second in which it would have resolved.
    await new Promise((r) => setTimeout(r, 100));
    expect(closed).toBe(false);

    release();
    const res = await pending;
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('{"result":true,"response":[]}');
    await closing;
    expect(server.inFlight()).toBe(0);
    await expect(fetch(`${server.url}/search?name=x`)).rejects.toThrow();
  });
});
