// The health use case: named checks of the service's dependencies, run in parallel, each with a time limit.
import { blobDigestsOf } from './blob-digests.js';
import { HealthCheckTimeout, HealthProblem } from './errors.js';
import type { BlobStore, Builder, BuildRecords, StoreProbes } from './ports.js';
import { COMPLETION_GRACE_S } from './reap-builds.js';

/** One dependency to check; `run` resolves when it is fine and throws (or hangs) when it is not. */
export interface HealthCheck {
  name: string;
  run(): Promise<void>;
}

export interface CheckResult {
  ok: boolean;
  /** How long the check took (up to the time limit when it timed out). */
  ms: number;
  /** Why it failed: safe to show to anyone (no addresses, no driver messages). */
  reason?: string;
  /** What was thrown, for the log only. */
  error?: unknown;
}

export interface HealthReport {
  ok: boolean;
  checks: Record<string, CheckResult>;
}

/** Per check; below API Gateway's 29 s and the function's timeout, above a warm database round trip. */
export const HEALTH_CHECK_TIMEOUT_MS = 2_000;

/**
 * A key that names no blob: a stat of it must answer null, not throw. Under logs/, which every
 * function that reads blobs may read, so the same grant covers the check.
 */
export const HEALTH_PROBE_KEY = 'logs/health-probe-absent';

/**
 * The checks every deployment has: the database and the blob store. The build pipeline adds its
 * own (a `builder` check) by appending to this list.
 */
export function standardHealthChecks(deps: { store: Pick<StoreProbes, 'ping'>; blobs: BlobStore }): HealthCheck[] {
  return [
    { name: 'database', run: () => deps.store.ping() },
    { name: 'blobs', run: async () => { await deps.blobs.stat(HEALTH_PROBE_KEY); } },
  ];
}

/**
 * The build pipeline: no build in flight past its timeout and the completion grace (the reaper fails
 * those, so one left means the reaper or the completion path is down), and the builder, when this
 * process has one that can tell, ready to build.
 */
export function builderHealthCheck(deps: {
  store: Pick<BuildRecords, 'listBuildsOlderThan'>; builder?: Builder; config: { buildTimeoutS: number };
}, now: () => Date = () => new Date()): HealthCheck {
  return {
    name: 'builder',
    run: async () => {
      const limitS = deps.config.buildTimeoutS + COMPLETION_GRACE_S;
      const before = new Date(now().getTime() - limitS * 1000);
      const [stuck] = await deps.store.listBuildsOlderThan(['starting', 'running'], before, 1);
      if (stuck) throw new HealthProblem('BuildsStuck', `build ${stuck.id} has been in flight for over ${limitS} s`);
      await deps.builder?.check?.();
    },
  };
}

/**
 * The stored packages and ERTS this process served: it fails while a download was refused since start because the
 * stored bytes did not match their recorded sha256, until that object is served verified again (repaired, or its
 * record corrected). Only what this process saw: on AWS each function container keeps its own record, so there the
 * ArtifactChecksumMismatch metric is the deployment-wide signal.
 */
export function artifactChecksumHealthCheck(deps: { blobs: BlobStore }): HealthCheck {
  return {
    name: 'artifacts',
    run: async () => {
      const mismatches = blobDigestsOf(deps.blobs).currentMismatches();
      if (mismatches.length === 0) return;
      const [first] = mismatches;
      throw new HealthProblem(
        'ChecksumMismatch',
        `${mismatches.length} stored object(s) do not match their recorded sha256 and are not served, ` +
        `e.g. ${first.subject} (${first.key}: recorded ${first.expected ?? 'nothing'}, stored ${first.actual})`,
      );
    },
  };
}

/** A reason fit for a public answer: the error's code or class, never its message. */
function reasonOf(error: unknown, timeoutMs: number): string {
  if (error instanceof HealthCheckTimeout) return `timed out after ${timeoutMs} ms`;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^[A-Za-z0-9_.-]{1,64}$/.test(code)) return `failed (${code})`;
  const name = error instanceof Error ? error.name : typeof error;
  return `failed (${/^[A-Za-z0-9_.-]{1,64}$/.test(name) ? name : 'error'})`;
}

async function runOne(check: HealthCheck, timeoutMs: number): Promise<CheckResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HealthCheckTimeout()), timeoutMs);
  });
  const running = Promise.resolve().then(() => check.run());
  // A check that loses the race may still fail later; that failure has nobody left to tell.
  running.catch(() => {});
  try {
    await Promise.race([running, timeout]);
    return { ok: true, ms: elapsed() };
  } catch (error) {
    return { ok: false, ms: elapsed(), reason: reasonOf(error, timeoutMs), error };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs health checks.
 * Input: named checks and the time each may take.
 * Output: a report, ok only when every check is; each check with its time and, if failed, a reason.
 * Primary course: all checks start at once; one that neither resolves nor throws within the limit
 * counts as failed, so the answer never takes much longer than the limit.
 */
export async function runHealthChecks(
  checks: HealthCheck[], timeoutMs: number = HEALTH_CHECK_TIMEOUT_MS,
): Promise<HealthReport> {
  const results = await Promise.all(checks.map((c) => runOne(c, timeoutMs)));
  const report: HealthReport = { ok: results.every((r) => r.ok), checks: {} };
  checks.forEach((c, i) => { report.checks[c.name] = results[i]; });
  return report;
}

/** `database: timed out after 2000 ms; blobs: failed (AccessDenied)`: the failed checks, in order. */
export function describeFailures(report: HealthReport): string {
  return Object.entries(report.checks)
    .filter(([, r]) => !r.ok)
    .map(([name, r]) => `${name}: ${r.reason ?? 'failed'}`)
    .join('; ');
}
