// Completion: a builder reports that a build ended; its result file decides succeeded or failed, with a
// message a person can act on. The local builder's callback and the EventBridge handler both end here. A success is
// signed (a statement of what was built) in the same update that marks it succeeded, and its release's checksum
// index is written again.
import { buildBlobKeys, parseBuildResult, type BuildEnded, type BuildResult } from './build-contract.js';
import { composeBuildMail, isMailAddress } from './build-mail.js';
import { refreshIndex } from './index-files.js';
import type { Build } from './model.js';
import type { MetricsRecorder } from './metrics.js';
import type { BlobStore, BuildRecords, BuildUpdate, IndexStore, Log, Mailer, Signer, StoredSignature } from './ports.js';
import { signStatement, storedSignature } from './signing.js';

export interface CompletionDeps {
  /** The builds, and what signing and the checksum index need (keys, index reads, a transaction for the lock). */
  store: Pick<BuildRecords, 'getBuildJob' | 'transitionBuild'> & IndexStore;
  blobs: BlobStore;
  mailer: Mailer;
  metrics: MetricsRecorder;
  /**
   * Signs each success's statement and the index. The service always has one (wiring.ts); without one (dependencies
   * a test made by hand) successes are recorded unsigned, with a warning, and no index is written.
   */
  signer?: Signer;
  /** `arch`: what statements say the builder built for (amd64, arm64). */
  config: { publicUrl: string; buildTimeoutS: number; arch: string };
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
  // The signed sha256 is that of the stored bytes, never only what the build (running the package's code) claims.
  const artifact = await deps.blobs.digest(keys.artifact);
  if (!artifact) {
    return { status: 'failed', update: { ...facts, message: 'the build reported success but left no package' } };
  }
  if (result.artifactSha256 && result.artifactSha256 !== artifact.sha256) {
    return {
      status: 'failed',
      update: { ...facts, message: `the stored package's sha256 ${artifact.sha256} is not the ${result.artifactSha256} the build reported` },
    };
  }
  return {
    status: 'succeeded',
    update: {
      ...facts,
      message: result.message,
      artifactKey: keys.artifact,
      artifactSize: artifact.size,
      artifactSha256: artifact.sha256,
    },
  };
}

/**
 * The signed statement of a success that finishes `at`: built from the same facts the update records, so the
 * statement and the row agree. Null when the build is unknown (then the transition finds nothing either).
 */
async function signSuccess(deps: CompletionDeps, buildId: string, update: BuildUpdate, at: Date): Promise<StoredSignature | null> {
  const { signer } = deps;
  if (!signer) {
    deps.log.warn('no signer: the success is recorded unsigned', { buildId });
    return null;
  }
  const job = await deps.store.getBuildJob(buildId);
  if (!job) return null;
  const signed = await signStatement({ signer, store: deps.store }, {
    namespace: job.namespace,
    name: job.name,
    ref: job.ref,
    commit: update.commitSha ?? null,
    erl_version: job.erlVersion,
    otp_version: update.otpRelease ?? job.erlVersion,
    arch: deps.config.arch,
    sha256: update.artifactSha256 ?? '',
    size: update.artifactSize ?? 0,
    built_at: at.toISOString(),
  });
  return storedSignature(signed);
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
  // A success is signed before it is recorded, and recorded with its signature in one update: there is no
  // succeeded build without one. When signing fails the build stays in flight and the error is thrown, so the end is
  // reported again (EventBridge redelivers; the local worker retries or fails the build saying why).
  let success: { at: Date; signed: StoredSignature | null } | undefined;
  if (verdict.status === 'succeeded') {
    const at = new Date();
    success = { at, signed: await signSuccess(deps, ended.buildId, verdict.update, at) };
  }
  const finished = await deps.store.transitionBuild(ended.buildId, ['starting', 'running'], verdict.status, {
    ...verdict.update,
    ...(success ? { at: success.at, signed: success.signed } : {}),
    logKey: log ? keys.log : null,
  });
  if (!finished) return null;
  if (finished.status === 'succeeded' && deps.signer) {
    const job = await deps.store.getBuildJob(ended.buildId);
    if (job) await refreshIndex({ ...deps, signer: deps.signer }, job.erlVersion);
  }

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
