// What every worker does around its use case, as the API's middlewares do for endpoints: the process
// dependencies, a logger for the invocation, and the invocation's metrics flushed at its end (EMF on AWS).
import type { Context } from 'aws-lambda';
import { deps, readyDeps, type Deps } from '#functions/wiring.js';
import { processLogger, requestLogger, type RequestLogger } from '#functions/log.js';

export interface WorkerInvocation {
  deps: Deps;
  /** Every line carries the worker's name and the invocation's request id. */
  log: RequestLogger;
}

/** Runs one invocation of the worker `name`; what `fn` throws is logged and rethrown (the trigger retries). */
export async function runWorker<T>(
  name: string, context: Partial<Context> | undefined, fn: (invocation: WorkerInvocation) => Promise<T>,
): Promise<T> {
  let d: Deps;
  try {
    d = readyDeps() ?? (await deps());
  } catch (error) {
    processLogger().error('the dependencies could not be built', { worker: name, error: error instanceof Error ? error : String(error) });
    throw error;
  }
  // One invocation at a time per Lambda process, so the process Logger can carry it (request id, cold start).
  if (d.config.runtime === 'aws' && context?.awsRequestId) processLogger(d.config.logLevel).addContext(context as Context);
  const log = requestLogger(
    { worker: name, ...(context?.awsRequestId ? { correlation_id: context.awsRequestId } : {}) },
    () => d.config.logLevel,
  );
  try {
    return await fn({ deps: d, log });
  } catch (error) {
    log.error('the invocation failed', error);
    throw error;
  } finally {
    try {
      d.metrics.flush();
    } catch (error) {
      // Losing one invocation's metrics must not turn a done piece of work into a retried one.
      log.warn('metrics flush failed', { error: String(error) });
    }
  }
}
