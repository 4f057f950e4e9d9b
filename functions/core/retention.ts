// The retention sweep: build logs expire after logRetentionDays, the artifacts of superseded builds (older successes
// of a version that succeeded again) are removed after supersededRetentionDays. Rows stay, marked, so the API can
// say what was removed. Artifacts of current builds and ERTS tarballs are never touched.
import { buildBlobKeys } from './build-contract.js';
import type { BlobStore, Log, RetentionCandidate, RetentionRecords } from './ports.js';

export const RETENTION_DEFAULTS = {
  /** As long as a log is worth reading after a build: half a year, as the original kept them. */
  logDays: 180,
  /**
   * A month: time for whoever fetched the old build by its id (a lock file, a mirror, a deploy in progress) to move
   * to the rebuild, while a package rebuilt often does not keep every rebuild forever.
   */
  supersededDays: 30,
} as const;

/** Builds handled per statement: each batch is one index range and one update. */
export const SWEEP_BATCH = 200;

const DAY_MS = 86_400_000;

export interface RetentionDeps {
  store: RetentionRecords;
  blobs: Pick<BlobStore, 'delete'>;
  config: { logRetentionDays: number; supersededRetentionDays: number };
  log: Log;
}

export interface SweepOptions {
  now?: Date;
  /** Builds per batch (default SWEEP_BATCH). */
  batch?: number;
  /** Batches per walk in one run at most; what is left waits for the next run (default: until none is left). */
  maxBatches?: number;
}

export interface SweepReport {
  /** Builds whose log was removed and marked expired in this run. */
  logsExpired: string[];
  /** Superseded builds whose artifact was removed and marked in this run. */
  artifactsRemoved: string[];
  /** True when a walk stopped at maxBatches with work left. */
  more: boolean;
}

/**
 * Removes what retention says is due, in batches.
 * Input: the clock (`now`), batch limits.
 * Output: what it removed; idempotent, so a second run right after removes nothing.
 * Primary course: list the builds due (oldest first), delete their blobs, then mark their rows. The blob goes first,
 * so a run cut short between the two leaves a row the next run lists again (deletes are idempotent), never a row
 * marked while its blob is still there. A log goes with the build's result.json beside it.
 * Errors: what the Store or the BlobStore throws; what was marked before stays marked.
 */
export async function sweepRetention(deps: RetentionDeps, options: SweepOptions = {}): Promise<SweepReport> {
  const now = options.now ?? new Date();
  const batch = Math.max(1, options.batch ?? SWEEP_BATCH);
  const maxBatches = options.maxBatches ?? Number.POSITIVE_INFINITY;
  const daysAgo = (days: number) => new Date(now.getTime() - days * DAY_MS);
  let more = false;

  const walk = async (
    list: (before: Date, limit: number) => Promise<RetentionCandidate[]>,
    keysOf: (candidate: RetentionCandidate) => string[],
    mark: (ids: readonly string[]) => Promise<string[]>,
    before: Date,
  ): Promise<string[]> => {
    const done: string[] = [];
    for (let n = 0; ; n++) {
      if (n >= maxBatches) {
        more = (await list(before, 1)).length > 0 || more;
        return done;
      }
      const due = await list(before, batch);
      for (const candidate of due) for (const key of keysOf(candidate)) await deps.blobs.delete(key);
      const marked = await mark(due.map((c) => c.buildId));
      done.push(...marked);
      // A full batch of which nothing could be marked would be listed again as it is: stop rather than loop.
      if (due.length < batch || marked.length === 0) return done;
    }
  };

  const logsExpired = await walk(
    (before, limit) => deps.store.listExpiredLogs(before, limit),
    ({ buildId, key }) => [key, buildBlobKeys(buildId).result],
    (ids) => deps.store.markLogsExpired(ids),
    daysAgo(deps.config.logRetentionDays),
  );
  const artifactsRemoved = await walk(
    (before, limit) => deps.store.listSupersededArtifacts(before, limit),
    ({ key }) => [key],
    (ids) => deps.store.markArtifactsRemoved(ids),
    daysAgo(deps.config.supersededRetentionDays),
  );
  if (logsExpired.length + artifactsRemoved.length > 0 || more) {
    deps.log.info('retention sweep', { logsExpired: logsExpired.length, artifactsRemoved: artifactsRemoved.length, more });
  }
  return { logsExpired, artifactsRemoved, more };
}
