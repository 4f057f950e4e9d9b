// Health aggregation: checks run in parallel, each bounded by a time limit; failures are named without their detail.
import { describe, expect, it, vi } from 'vitest';
import {
  describeFailures, HEALTH_PROBE_KEY, runHealthChecks, standardHealthChecks, type HealthCheck,
} from '#core/health.js';
import type { BlobStore, Store } from '#core/ports.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const ok = (name: string, ms = 0): HealthCheck => ({ name, run: () => sleep(ms) });

describe('runHealthChecks', () => {
  it('is ok when every check is, with each check timed', async () => {
    const report = await runHealthChecks([ok('database', 30), ok('blobs')], 1000);
    expect(report.ok).toBe(true);
    expect(Object.keys(report.checks)).toEqual(['database', 'blobs']);
    expect(report.checks.database).toEqual({ ok: true, ms: expect.any(Number) });
    expect(report.checks.database.ms).toBeGreaterThanOrEqual(25);
    expect(describeFailures(report)).toBe('');
  });

  it('runs the checks in parallel', async () => {
    const started = performance.now();
    await runHealthChecks([ok('a', 150), ok('b', 150), ok('c', 150)], 1000);
    expect(performance.now() - started).toBeLessThan(400);
  });

  it('names a failing check by its code or class, never its message', async () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 10.1.2.3:5432 password=hunter2'), { code: 'ECONNREFUSED' });
    class AccessDenied extends Error { override name = 'AccessDenied'; }
    const report = await runHealthChecks([
      { name: 'database', run: async () => { throw refused; } },
      { name: 'blobs', run: async () => { throw new AccessDenied('arn:aws:s3:::secret-bucket'); } },
      ok('other'),
    ], 1000);
    expect(report.ok).toBe(false);
    expect(report.checks.database).toMatchObject({ ok: false, reason: 'failed (ECONNREFUSED)', error: refused });
    expect(report.checks.blobs).toMatchObject({ ok: false, reason: 'failed (AccessDenied)' });
    expect(report.checks.other.ok).toBe(true);
    const text = describeFailures(report);
    expect(text).toBe('database: failed (ECONNREFUSED); blobs: failed (AccessDenied)');
    expect(text).not.toMatch(/10\.1\.2\.3|hunter2|secret-bucket/);
  });

  it('fails a check that throws synchronously, or throws a non-Error', async () => {
    const report = await runHealthChecks([
      { name: 'sync', run: () => { throw new TypeError('x'); } },
      { name: 'string', run: () => Promise.reject('just text') },
    ], 1000);
    expect(report.checks.sync.reason).toBe('failed (TypeError)');
    expect(report.checks.string.reason).toBe('failed (string)');
  });

  it('fails a check that does not answer in time, without waiting for it', async () => {
    let late = false;
    const started = performance.now();
    const report = await runHealthChecks([
      { name: 'database', run: () => new Promise<void>(() => {}) },
      { name: 'blobs', run: async () => { await sleep(400); late = true; throw new Error('too late to matter'); } },
      ok('fast'),
    ], 80);
    const took = performance.now() - started;
    expect(took).toBeLessThan(300);
    expect(report.ok).toBe(false);
    expect(report.checks.database).toMatchObject({ ok: false, reason: 'timed out after 80 ms' });
    expect(report.checks.database.ms).toBeGreaterThanOrEqual(75);
    expect(report.checks.fast.ok).toBe(true);
    expect(describeFailures(report)).toBe('database: timed out after 80 ms; blobs: timed out after 80 ms');
    // The loser's later rejection must not surface as an unhandled rejection (vitest would fail the run).
    await vi.waitFor(() => expect(late).toBe(true), { timeout: 2000, interval: 20 });
  });
});

describe('standardHealthChecks', () => {
  it('pings the store and stats an absent blob, which must answer null rather than throw', async () => {
    const calls: string[] = [];
    const store = { ping: async () => { calls.push('ping'); } } as unknown as Store;
    const blobs = { stat: async (key: string) => { calls.push(`stat ${key}`); return null; } } as unknown as BlobStore;
    const checks = standardHealthChecks({ store, blobs });
    expect(checks.map((c) => c.name)).toEqual(['database', 'blobs']);
    const report = await runHealthChecks(checks);
    expect(report.ok).toBe(true);
    expect(calls.sort()).toEqual(['ping', `stat ${HEALTH_PROBE_KEY}`]);
  });

  it('reports a blob store whose stat throws', async () => {
    const store = { ping: async () => {} } as unknown as Store;
    const blobs = { stat: async () => { throw Object.assign(new Error('denied'), { name: 'AccessDenied' }); } } as unknown as BlobStore;
    const report = await runHealthChecks(standardHealthChecks({ store, blobs }));
    expect(describeFailures(report)).toBe('blobs: failed (AccessDenied)');
  });
});
