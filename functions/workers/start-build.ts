// SQS (the build queue) -> dispatchBuild -> Builder (CodeBuild), Store. One record is one build id; a record
// whose build could not be started is reported back (a partial batch failure), so SQS delivers it again.
import type { Context, SQSBatchItemFailure, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { parseBuildMessage } from '#core/build-queue-message.js';
import { dispatchBuild } from '#core/dispatch-build.js';
import { BuilderBusyError } from '#core/errors.js';
import { runWorker } from './invocation.js';

export const handler = (event: SQSEvent, context?: Context): Promise<SQSBatchResponse> =>
  runWorker('start-build', context, async ({ deps, log }) => {
    const { builder } = deps;
    // A deployment problem: failing the whole batch keeps the messages (and, past the retries, in the DLQ).
    if (!builder) throw new Error('ENOT_BUILD_PROJECT is not set: this function cannot start builds');
    const batchItemFailures: SQSBatchItemFailure[] = [];
    // One record at a time: a throttled CodeBuild is not asked for the whole batch at once.
    for (const record of event.Records) {
      const buildId = parseBuildMessage(record.body);
      if (!buildId) {
        // Retrying cannot make it readable: dropped, not left to cycle into the dead-letter queue.
        log.error('dropped a message that names no build', undefined, { messageId: record.messageId, body: record.body.slice(0, 200) });
        continue;
      }
      try {
        const outcome = await dispatchBuild({ ...deps, builder }, buildId, 'retry');
        log.info('dispatched', { buildId, outcome });
      } catch (error) {
        if (error instanceof BuilderBusyError) log.warn('the builder is busy; the build waits in the queue', { buildId, reason: error.message });
        else log.error('the build could not be started; it waits in the queue', error, { buildId });
        batchItemFailures.push({ itemIdentifier: record.messageId });
      }
    }
    return { batchItemFailures };
  });
