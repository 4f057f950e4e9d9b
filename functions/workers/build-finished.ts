// EventBridge (CodeBuild "Build State Change") -> completeBuild -> Store, BlobStore, Mailer. Events that are
// not the end of one of our builds are logged and ignored (the end of a publish-erts build registers the ERTS); a failure is thrown, so EventBridge delivers again.
import type { Context, EventBridgeEvent } from 'aws-lambda';
import { parseBuildStateChange } from './codebuild-state-change.js';
import { completeBuild } from '#core/complete-build.js';
import { registerPublishedErts } from '#core/register-erts.js';
import { runWorker } from './invocation.js';

export const handler = (event: EventBridgeEvent<string, unknown>, context?: Context): Promise<void> =>
  runWorker('build-finished', context, async ({ deps, log }) => {
    const change = parseBuildStateChange(event);
    if (change.kind === 'ignored') {
      log.info('event ignored', { eventId: event?.id, reason: change.reason, builderId: change.builderId });
      return;
    }
    if (change.kind === 'erts-published') {
      const recorded = await registerPublishedErts({ ...deps, log });
      log.info('ERTS registered', { builderId: change.builderId, releases: recorded.map((e) => e.release) });
      return;
    }
    const { ended } = change;
    const finished = await completeBuild({ ...deps, log }, ended);
    if (finished) log.info('build finished', { buildId: ended.buildId, state: ended.state, status: finished.status, message: finished.message });
    else log.info('build was not in flight; nothing done', { buildId: ended.buildId, state: ended.state });
  });
