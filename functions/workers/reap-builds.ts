// Schedule (EventBridge, every few minutes) -> reapBuilds -> Store, BuildQueue. Logs what it failed and re-sent.
import type { Context, ScheduledEvent } from 'aws-lambda';
import { reapBuilds, type ReapReport } from '#core/reap-builds.js';
import { runWorker } from './invocation.js';

export const handler = (_event: ScheduledEvent, context?: Context): Promise<ReapReport> =>
  runWorker('reap-builds', context, async ({ deps, log }) => {
    const report = await reapBuilds(deps);
    const line = report.failed.length + report.abandoned.length > 0 ? log.warn.bind(log) : log.info.bind(log);
    line('reaped', {
      failed: report.failed.length, resent: report.resent.length, abandoned: report.abandoned.length,
      failedIds: report.failed, resentIds: report.resent, abandonedIds: report.abandoned,
    });
    return report;
  });
