// The local service's retention sweep (`npm start`): once shortly after start, then once a day, as the daily
// sweep-retention worker does on AWS. A sweep that fails (the database is down) is logged and tried at the next tick.
import { sweepRetention, type RetentionDeps } from '#core/retention.js';
import { DatabaseUnavailableError } from '#core/errors.js';
import type { Log } from '#core/ports.js';

export const RETENTION_SWEEP_EVERY_MS = 86_400_000;
/** The first sweep waits this long, so it does not compete with a start's own work. */
const FIRST_SWEEP_AFTER_MS = 60_000;

export interface RetentionTimer {
  /** Stops the timer and waits for a sweep in progress to end. */
  stop(): Promise<void>;
}

export function startRetentionTimer(
  deps: Omit<RetentionDeps, 'log'>, log: Log, options: { everyMs?: number; firstAfterMs?: number } = {},
): RetentionTimer {
  const everyMs = options.everyMs ?? RETENTION_SWEEP_EVERY_MS;
  let running: Promise<void> | undefined;
  let stopped = false;

  const sweep = () => {
    if (stopped || running) return;
    running = sweepRetention({ ...deps, log })
      .then(() => undefined, (error: unknown) => {
        if (error instanceof DatabaseUnavailableError) log.warn('the retention sweep failed: the database is unavailable', { error: error.message });
        else log.error('the retention sweep failed', error);
      })
      .finally(() => {
        running = undefined;
      });
  };
  const first = setTimeout(sweep, options.firstAfterMs ?? FIRST_SWEEP_AFTER_MS);
  const daily = setInterval(sweep, everyMs);
  first.unref();
  daily.unref();
  return {
    async stop() {
      stopped = true;
      clearTimeout(first);
      clearInterval(daily);
      await running;
    },
  };
}
