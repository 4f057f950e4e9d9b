// The builder health check on a real store: a build left in flight past its timeout and grace means
// the reaper or the completion path is down, and /health says so by name.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HealthProblem } from '#core/errors.js';
import { builderHealthCheck, runHealthChecks } from '#core/health.js';
import { COMPLETION_GRACE_S } from '#core/reap-builds.js';
import type { Store } from '#core/ports.js';
import { openTestStore } from '#support/databases.js';

const TIMEOUT_S = 60;

describe('builderHealthCheck', () => {
  let store: Store;
  let close: () => Promise<void>;
  let versionId: number;

  beforeAll(async () => {
    ({ store, close } = await openTestStore());
    const repo = await store.upsertRepository({ namespace: 'health', name: 'lib', cloneUrl: 'https://github.com/health/lib' });
    versionId = (await store.upsertVersion({ repositoryId: repo.id, ref: '1.0.0', erlVersion: '25' })).id;
  });
  afterAll(() => close());

  it('passes while builds in flight are within their time', async () => {
    const build = await store.createBuild({ versionId });
    await store.transitionBuild(build.id, ['queued'], 'running', { builderId: 'fresh' });
    const report = await runHealthChecks([builderHealthCheck({ store, config: { buildTimeoutS: TIMEOUT_S } })]);
    expect(report.ok).toBe(true);
  });

  it('fails with BuildsStuck for a build in flight past the timeout and grace', async () => {
    const build = await store.createBuild({ versionId });
    const longAgo = new Date(Date.now() - (TIMEOUT_S + COMPLETION_GRACE_S + 60) * 1000);
    await store.transitionBuild(build.id, ['queued'], 'running', { at: longAgo, builderId: 'lost' });
    const report = await runHealthChecks([builderHealthCheck({ store, config: { buildTimeoutS: TIMEOUT_S } })]);
    expect(report.ok).toBe(false);
    expect(report.checks.builder.reason).toBe('failed (BuildsStuck)');
    await store.transitionBuild(build.id, ['running'], 'failed', { message: 'cleaned up by the test' });
  });

  it("fails with the builder's own reason when it cannot build", async () => {
    const builder = {
      start: () => Promise.reject(new Error('unused')),
      check: () => Promise.reject(new HealthProblem('NoErlang', 'no erl on PATH')),
    };
    const report = await runHealthChecks([builderHealthCheck({ store, builder, config: { buildTimeoutS: TIMEOUT_S } })]);
    expect(report.checks.builder).toMatchObject({ ok: false, reason: 'failed (NoErlang)' });
  });
});
