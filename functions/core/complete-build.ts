// Completion: a builder reports that a build ended; its result file decides succeeded or failed, with a
// message a person can act on. The local builder's callback and the EventBridge handler both end here.
import { buildBlobKeys, parseBuildResult, type BuildEnded, type BuildResult } from './build-contract.js';
import { composeBuildMail, isMailAddress } from './build-mail.js';
import type { Build } from './model.js';
import type { MetricsRecorder } from './metrics.js';
import type { BlobStore, BuildRecords, BuildUpdate, Log, Mailer } from './ports.js';

export interface CompletionDeps {
  store: Pick<BuildRecords, 'getBuildJob' | 'transitionBuild'>;
  blobs: BlobStore;
  mailer: Mailer;
  metrics: MetricsRecorder;
  config: { publicUrl: string; buildTimeoutS: number };
  /** Where a problem that must not fail the completion (a mail that could not be sent) is reported. */
  log: Log;
}

interface Verdict {
  status: 'succeeded' | 'failed';
  update: BuildUpdate;
}

/** Why a build without a usable result ended, by the builder's state. */
function withoutResult(ended: BuildEnded, timeoutS: number): string {
  switch (ended.state) {
    case 'TIMED_OUT':
      return `timed out after ${ended.timeoutS ?? timeoutS} s`;
    case 'STOPPED':
      return 'the build was stopped before it finished';
    default:
      return `the builder ended (${ended.state}) without a result; see the build log`;
  }
}

async function judge(deps: CompletionDeps, ended: BuildEnded, result: BuildResult | null): Promise<Verdict> {
  const keys = buildBlobKeys(ended.buildId);
  const facts: BuildUpdate = {
    commitSha: result?.commitSha ?? null,
    otpRelease: result?.otpRelease ?? null,
    ...(ended.builderId ? { builderId: ended.builderId } : {}),
  };
  // A timeout wins over whatever the result says: the build was cut off, its files may be partial.
  if (ended.state === 'TIMED_OUT' || ended.state === 'STOPPED' || !result || result.buildId !== ended.buildId) {
    return { status: 'failed', update: { ...facts, message: withoutResult(ended, deps.config.buildTimeoutS) } };
  }
  if (result.status === 'failed') return { status: 'failed', update: { ...facts, message: result.message } };
  const artifact = await deps.blobs.stat(keys.artifact);
  if (!artifact) {
    return { status: 'failed', update: { ...facts, message: 'the build reported success but left no package' } };
  }
  return {
    status: 'succeeded',
    update: {
      ...facts,
      message: result.message,
      artifactKey: keys.artifact,
      artifactSize: artifact.size,
      artifactSha256: result.artifactSha256 ?? artifact.sha256 ?? null,
    },
  };
}

/**
 * Marks the build succeeded or failed from what it left behind, once: a second report of the same end
 * (EventBridge delivers at least once) finds it finished and does nothing. Returns the finished build,
 * or null when it was not in flight.
 */
export async function completeBuild(deps: CompletionDeps, ended: BuildEnded): Promise<Build | null> {
  const keys = buildBlobKeys(ended.buildId);
  const [resultText, log] = await Promise.all([deps.blobs.get(keys.result), deps.blobs.stat(keys.log)]);
  const result = resultText ? parseBuildResult(resultText.toString('utf8')) : null;
  const verdict = await judge(deps, ended, result);
  const finished = await deps.store.transitionBuild(ended.buildId, ['starting', 'running'], verdict.status, {
    ...verdict.update,
    logKey: log ? keys.log : null,
  });
  if (!finished) return null;

  deps.metrics.count(verdict.status === 'succeeded' ? 'BuildsSucceeded' : 'BuildsFailed');
  if (finished.startedAt && finished.finishedAt) {
    deps.metrics.duration('BuildDuration', finished.finishedAt.getTime() - finished.startedAt.getTime());
  }
  await notify(deps, ended.buildId, result?.authorEmail);
  return finished;
}

/** Sends the result email when the request asked for one; a mail problem is reported, never thrown. */
async function notify(deps: CompletionDeps, buildId: string, authorEmail: string | undefined): Promise<void> {
  try {
    const job = await deps.store.getBuildJob(buildId);
    if (!job?.notify) return;
    const to = job.notifyEmail ?? authorEmail;
    if (!to || !isMailAddress(to)) {
      deps.log.warn('no address to send the build result to', { buildId });
      return;
    }
    await deps.mailer.send(composeBuildMail(job, to, deps.config.publicUrl));
  } catch (error) {
    deps.log.warn('the build result email was not sent', { buildId, error: error instanceof Error ? error.message : String(error) });
  }
}
