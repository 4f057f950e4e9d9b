// The rate limit counters on a real database (PGlite, and pg when DATABASE_URL is set): the conditional upsert, the
// window, the prune, and reads counted in batches by two processes (two Stores) on one database.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPgliteStore, openPgStore, SqlStore } from '#adapters/postgres/open-store.js';
import { RateLimitedError } from '#core/errors.js';
import { countRead, READ_BATCH, type RateLimitConfig } from '#core/rate-limits.js';
import type { Log } from '#core/ports.js';
import { createTestDatabase, TEST_DATABASE_URL, type TestDatabase } from '#support/databases.js';

const silent: Log = { info() {}, warn() {}, error() {} };
const limits = (reads: number): { rateLimits: RateLimitConfig } => ({
  rateLimits: { buildRequestsPerHour: 10, readRequestsPerMinute: reads, trustedProxies: [] },
});

const drivers: [string, () => Promise<{ store: SqlStore; close(): Promise<void> }>][] = [
  ['PGlite', async () => {
    const store = await openPgliteStore();
    return { store, close: () => store.close() };
  }],
];
if (TEST_DATABASE_URL) {
  drivers.push(['pg', async () => {
    const db: TestDatabase = await createTestDatabase();
    const store = await openPgStore(db.url);
    return { store, close: async () => { await store.close(); await db.drop(); } };
  }]);
}

describe.each(drivers)('rate limit counters (%s)', (_name, open) => {
  let store: SqlStore;
  let close: () => Promise<void>;

  beforeAll(async () => {
    ({ store, close } = await open());
  });
  afterAll(() => close?.());

  it('adds within the limit in one window, and adds nothing past it', async () => {
    expect(await store.rateLimitCount('build:a', 3600)).toMatchObject({ count: 0 });
    const first = await store.addToRateLimit('build:a', 3600, 3, 4);
    expect(first).toMatchObject({ count: 3, opened: true });
    expect(first!.windowStart.getTime() % 3_600_000).toBe(0);
    expect(await store.addToRateLimit('build:a', 3600, 2, 4)).toBeNull();
    expect(await store.addToRateLimit('build:a', 3600, 1, 4)).toMatchObject({ count: 4, opened: false });
    expect(await store.addToRateLimit('build:a', 3600, 1, 4)).toBeNull();
    // More than the limit at once never opens a window.
    expect(await store.addToRateLimit('build:b', 3600, 5, 4)).toBeNull();
    expect(await store.rateLimitCount('build:b', 3600)).toMatchObject({ count: 0 });
    expect(await store.rateLimitCount('build:a', 3600)).toMatchObject({ count: 4, windowStart: first!.windowStart });
  });

  it('prunes the windows that ended, and only those', async () => {
    await store.client.query(
      `INSERT INTO rate_limits (bucket, window_start, count) VALUES ('read:old', now() - interval '2 hours', 7)`,
    );
    await store.addToRateLimit('read:new', 60, 1, 10);
    expect(await store.pruneRateLimits(3600)).toBeGreaterThanOrEqual(1);
    const left = await store.client.query(`SELECT bucket FROM rate_limits WHERE bucket IN ('read:old', 'read:new')`);
    expect(left.map((r) => r.bucket)).toEqual(['read:new']);
  });

  it('counts reads in batches: two processes on one database pass the limit by at most a batch each', async () => {
    // Two Stores over one connection stand for two processes: each keeps its own tally.
    const processes = [new SqlStore(store.client), new SqlStore(store.client)];
    const limit = 3 * READ_BATCH;
    let allowed = 0;
    let refusedAt: number | undefined;
    for (let i = 0; i < 4 * limit && refusedAt === undefined; i++) {
      try {
        const status = await countRead({ store: processes[i % 2], config: limits(limit), log: silent }, 'batched');
        allowed += 1;
        expect(status!.remaining).toBeGreaterThanOrEqual(0);
      } catch (error) {
        expect(error).toBeInstanceOf(RateLimitedError);
        refusedAt = i;
      }
    }
    expect(refusedAt).toBeDefined();
    expect(allowed).toBeGreaterThanOrEqual(limit);
    expect(allowed).toBeLessThanOrEqual(limit + 2 * READ_BATCH);
    // The database holds at least what was written in batches, never more than was counted.
    const { count } = await store.rateLimitCount('read:batched', 60);
    expect(count).toBeLessThanOrEqual(allowed + 1);
    expect(count).toBeGreaterThanOrEqual(allowed - 2 * READ_BATCH);
  });

  it('refuses exactly at the limit within one process', async () => {
    const one = new SqlStore(store.client);
    const deps = { store: one, config: limits(5), log: silent };
    const remaining: number[] = [];
    for (let i = 0; i < 5; i++) remaining.push((await countRead(deps, 'exact'))!.remaining);
    expect(remaining).toEqual([4, 3, 2, 1, 0]);
    await expect(countRead(deps, 'exact')).rejects.toThrow(/^Rate limit exceeded: at most 5 requests per minute from one client; retry after \d+ s$/);
  });
});
