// Schedule (EventBridge, daily) -> sweepRetention -> Store, BlobStore: expires old build logs, removes superseded artifacts.
import type { Context, ScheduledEvent } from 'aws-lambda';
import { sweepRetention, type SweepReport } from '#core/retention.js';
import { runWorker } from './invocation.js';

/**
 * Batches one invocation works through before it stops; the next day's run takes the rest. A batch deletes up to
 * SWEEP_BATCH objects one by one, so this stays well inside the function's timeout.
 */
const MAX_BATCHES = 20;

export const handler = (_event: ScheduledEvent, context?: Context): Promise<SweepReport> =>
  runWorker('sweep-retention', context, async ({ deps, log }) => {
    const report = await sweepRetention({ ...deps, log }, { maxBatches: MAX_BATCHES });
    log.info('swept', {
      logsExpired: report.logsExpired.length, artifactsRemoved: report.artifactsRemoved.length, more: report.more,
    });
    return report;
  });
