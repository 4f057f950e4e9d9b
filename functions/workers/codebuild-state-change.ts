// CodeBuild's "Build State Change" EventBridge events, as the build-finished worker reads them: the core's BuildEnded.
// The build is found by the ENOT_BUILD_ID variable it was started with (adapters/builder/codebuild-builder.ts), which
// the event lists back.
import { BUILD_ENV, type BuildEnded, type BuilderState } from '#core/build-contract.js';

export const BUILD_STATE_CHANGE = 'CodeBuild Build State Change';
export const CODEBUILD_SOURCE = 'aws.codebuild';

/** What an event means for the pipeline: a build that ended, or nothing to do (and why, for the log). */
export type BuildStateChange =
  | { kind: 'ended'; ended: BuildEnded }
  /** A successful ENOT_TASK=publish-erts build: the image's ERTS tarballs and their index are in erts/. */
  | { kind: 'erts-published'; builderId?: string }
  | { kind: 'ignored'; reason: string; builderId?: string };

const ENDED: ReadonlySet<string> = new Set<BuilderState>(['SUCCEEDED', 'FAILED', 'FAULT', 'TIMED_OUT', 'STOPPED']);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// arn:aws:codebuild:<region>:<account>:build/<project>:<uuid>; StartBuild answers with the part after build/.
const BUILD_ARN = /^arn:[^:]+:codebuild:[^:]*:[^:]*:build\/(.+)$/;

type Json = Record<string, unknown>;

function record(value: unknown): Json | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : undefined;
}

/** The CodeBuild build id ("project:uuid"), the one StartBuild returned, from the event's build ARN. */
export function codeBuildIdOf(buildArn: string): string {
  return BUILD_ARN.exec(buildArn)?.[1] ?? buildArn;
}

/** The value of one of the build's environment variables as the event lists them. */
function environmentVariable(info: Json | undefined, name: string): string | undefined {
  const variables = record(info?.environment)?.['environment-variables'];
  if (!Array.isArray(variables)) return undefined;
  for (const v of variables) {
    const entry = record(v);
    if (entry?.name === name && typeof entry.value === 'string') return entry.value;
  }
  return undefined;
}

/**
 * The documented build-status values are IN_PROGRESS, SUCCEEDED, FAILED and STOPPED: a build cut off by
 * its timeout may arrive as FAILED with the phase that ran out marked TIMED_OUT, so the phases are asked too.
 */
function stateOf(status: string, info: Json | undefined): BuilderState {
  if (status !== 'FAILED') return status as BuilderState;
  const phases = info?.phases;
  const timedOut = Array.isArray(phases) && phases.some((p) => record(p)?.['phase-status'] === 'TIMED_OUT');
  return timedOut ? 'TIMED_OUT' : 'FAILED';
}

/** Reads a "CodeBuild Build State Change" event; anything that is not the end of one of our builds is ignored. */
export function parseBuildStateChange(event: unknown): BuildStateChange {
  const e = record(event);
  if (e?.source !== CODEBUILD_SOURCE || e?.['detail-type'] !== BUILD_STATE_CHANGE) {
    return { kind: 'ignored', reason: `not a ${BUILD_STATE_CHANGE} event` };
  }
  const detail = record(e.detail);
  const arn = detail?.['build-id'];
  const builderId = typeof arn === 'string' && arn !== '' ? codeBuildIdOf(arn) : undefined;
  const status = detail?.['build-status'];
  if (typeof status !== 'string' || !ENDED.has(status)) {
    return { kind: 'ignored', reason: `build status ${String(status)} is not an end`, ...(builderId ? { builderId } : {}) };
  }
  const info = record(detail?.['additional-information']);
  if (environmentVariable(info, 'ENOT_TASK') === 'publish-erts') {
    if (status === 'SUCCEEDED') return { kind: 'erts-published', ...(builderId ? { builderId } : {}) };
    return { kind: 'ignored', reason: `publish-erts build ended ${status}; see its log`, ...(builderId ? { builderId } : {}) };
  }
  const buildId = environmentVariable(info, BUILD_ENV.buildId);
  if (!buildId || !UUID.test(buildId)) {
    // A build started by hand on the project, or by something else than the dispatcher: not ours to complete.
    return { kind: 'ignored', reason: `the build carries no ${BUILD_ENV.buildId}`, ...(builderId ? { builderId } : {}) };
  }
  const state = stateOf(status, info);
  const minutes = info?.['timeout-in-minutes'];
  const timeoutS = state === 'TIMED_OUT' && typeof minutes === 'number' && minutes > 0 ? minutes * 60 : undefined;
  return {
    kind: 'ended',
    ended: {
      buildId,
      state,
      ...(builderId ? { builderId } : {}),
      ...(timeoutS !== undefined ? { timeoutS } : {}),
    },
  };
}
