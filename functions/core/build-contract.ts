// The contract between the service and a build (buildspec/buildspec.yml and the scripts it runs):
// the environment a build receives, the files it leaves, and where those land in the BlobStore.
// CodeBuild and the local builder both speak it, so the build itself is one code path. The names (env, files,
// keys) are in build-contract-names.mjs, which the build scripts import too; this file adds what only the service needs.
import * as z from 'zod';
import { BUILD_ENV, RUNNER_ENV as RUNNER_ENV_NAMES } from './build-contract-names.mjs';
import type { BuildJob } from './ports.js';

export {
  BUILD_ENV, BUILD_LIMIT_DEFAULTS, BUILD_OUTPUT, ERTS_CONTENT_TYPES, ERTS_INDEX_KEY, OUTPUT_CONTENT_TYPES, RUNNER_ENV, UPLOAD_CHECKSUM_FIELD,
  UPLOAD_FORM_ENV, buildBlobKeys, ertsBlobKey,
} from './build-contract-names.mjs';

/** A presigned S3 POST Object form (UPLOAD_FORM_ENV): POST multipart/form-data to `url`, these fields, the file last. */
export interface UploadForm {
  url: string;
  fields: Record<string, string>;
}

/**
 * The largest upload each output's form allows (its policy's content-length-range). The artifact and the log are
 * bounded by the build itself (the sandbox's disk, ENOT_BUILD_LOG_MAX_BYTES), so theirs is S3's own limit for one
 * POST; result.json is a few hundred bytes.
 */
export const UPLOAD_MAX_BYTES = Object.freeze({
  artifact: 5 * 1024 ** 3,
  log: 5 * 1024 ** 3,
  result: 1024 * 1024,
});

/**
 * How long a started build may wait for a machine before it runs (CodeBuild's queued timeout, when the
 * account's concurrency is used up). The reaper counts it in before it calls a build lost.
 */
export const BUILDER_QUEUE_LIMIT_S = 1800;

/** The sandbox's per-build limits (RUNNER_ENV memoryMb, diskMb, maxProcesses, logLineMaxBytes; BUILD_LIMIT_DEFAULTS). */
export interface BuildLimits {
  memoryMb: number;
  diskMb: number;
  maxProcesses: number;
  logLineMaxBytes: number;
}

/** The environment variables that carry a job to the build. */
export function buildEnvironment(job: BuildJob): Record<string, string> {
  return {
    [BUILD_ENV.buildId]: job.buildId,
    [BUILD_ENV.namespace]: job.namespace,
    [BUILD_ENV.name]: job.name,
    [BUILD_ENV.fullName]: `${job.namespace}/${job.name}`,
    [BUILD_ENV.cloneUrl]: job.cloneUrl,
    [BUILD_ENV.ref]: job.ref,
    [BUILD_ENV.erlVersion]: job.erlVersion,
    [BUILD_ENV.timeoutS]: String(job.timeoutS),
  };
}

/** What a build's deps step may fetch (buildspec/steps/deps.mjs): the same for every build of one service. */
export interface DependencyPolicy {
  /** URL prefixes git dependencies may come from: the clone URL allow-list. */
  allowedCloneUrls: readonly string[];
  /** The hex repository (repo.hex.pm's layout). */
  hexRepoUrl: string;
  /** The PEM key the hex registry's signatures are checked against; undefined: repo.hex.pm's own for repo.hex.pm. */
  hexPublicKey?: string;
  maxDepth: number;
  maxCount: number;
  maxBytes: number;
}

/** The runner's environment variables that carry a DependencyPolicy to the build. */
export function dependencyEnvironment(policy: DependencyPolicy): Record<string, string> {
  return {
    [RUNNER_ENV_NAMES.allowedCloneUrls]: policy.allowedCloneUrls.join(','),
    [RUNNER_ENV_NAMES.hexRepoUrl]: policy.hexRepoUrl,
    ...(policy.hexPublicKey ? { [RUNNER_ENV_NAMES.hexPublicKey]: policy.hexPublicKey } : {}),
    [RUNNER_ENV_NAMES.depsMaxDepth]: String(policy.maxDepth),
    [RUNNER_ENV_NAMES.depsMaxCount]: String(policy.maxCount),
    [RUNNER_ENV_NAMES.depsMaxBytes]: String(policy.maxBytes),
  };
}

/** What a build reports in result.json. */
export const buildResultSchema = z.object({
  buildId: z.string(),
  status: z.enum(['succeeded', 'failed']),
  /** One line a person can act on: "compiled with rebar3", "unknown ref 9.9.9", "OTP 24 is not available (available: 25, 26)". */
  message: z.string(),
  /** What failed, for a failure: clone, ref, release, deps, compile, package, internal. */
  failure: z.enum(['clone', 'ref', 'release', 'deps', 'compile', 'package', 'internal']).optional(),
  commitSha: z.string().optional(),
  /** The tagged commit's author, for the result email of webhook builds. */
  authorEmail: z.string().optional(),
  /** The OTP release the build ran on, as precise as known ("25.2.3"). */
  otpRelease: z.string().optional(),
  availableReleases: z.array(z.string()).optional(),
  tool: z.enum(['enot', 'rebar3', 'make', 'erlc']).optional(),
  appVsn: z.string().optional(),
  artifactSize: z.number().int().nonnegative().optional(),
  artifactSha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
});

export type BuildResult = z.infer<typeof buildResultSchema>;

/** Parses result.json; null when it is missing fields or not JSON (a build that crashed writing it). */
export function parseBuildResult(text: string): BuildResult | null {
  try {
    const parsed = buildResultSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** How a builder says a build ended (CodeBuild's build-status values; the local builder maps onto them). */
export type BuilderState = 'SUCCEEDED' | 'FAILED' | 'FAULT' | 'TIMED_OUT' | 'STOPPED';

/** The end of a build as the builder reports it; completeBuild turns it into succeeded or failed. */
export interface BuildEnded {
  buildId: string;
  builderId?: string;
  state: BuilderState;
  /** For a timeout: the limit that was hit. */
  timeoutS?: number;
}
