// The contract between the service and a build (buildspec/buildspec.yml and the scripts it runs):
// the environment a build receives, the files it leaves, and where those land in the BlobStore.
// CodeBuild and the local builder both speak it, so the build itself is one code path.
import * as z from 'zod';
import type { BuildJob } from './ports.js';

/** Per-build parameters, passed as environment variables (CodeBuild environment overrides, or the local subprocess's env). */
export const BUILD_ENV = {
  buildId: 'ENOT_BUILD_ID',
  namespace: 'ENOT_NAMESPACE',
  name: 'ENOT_NAME',
  fullName: 'ENOT_FULL_NAME',
  cloneUrl: 'ENOT_CLONE_URL',
  ref: 'ENOT_REF',
  erlVersion: 'ENOT_ERL_VERSION',
  timeoutS: 'ENOT_BUILD_TIMEOUT_S',
} as const;

/**
 * Set by whoever runs the build, not per request:
 * - ENOT_SCRIPTS: the directory holding the build scripts (the repo's buildspec/ locally, baked into the image on AWS);
 * - ENOT_WORK_DIR: a fresh scratch directory (the clone goes under it);
 * - ENOT_OUT_DIR: where the build leaves BUILD_OUTPUT files;
 * - ENOT_OTP_INSTALLS: a directory of OTP installations named by release (kerl, in the image); unset: the `erl` on PATH;
 * - ENOT_OTP_ROOT, ENOT_OTP_VERSION (optional, without ENOT_OTP_INSTALLS): the root and full version ("25.2.3") of the
 *   OTP the runner already knows (the local builder's detected one), so the build need not start `erl` to find it;
 * - ENOT_SANDBOX: `auto` (bubblewrap without network for the compile when it works) or `off`;
 * - ENOT_LOG_MAX_BYTES: the build log's cap; past it the log ends with a truncation note;
 * - ENOT_UPLOAD_BUCKET: set only on the ERTS project (ENOT_TASK=publish-erts, uploads with the aws CLI); package
 *   builds upload through the presigned URLs of UPLOAD_URL_ENV instead.
 */
export const RUNNER_ENV = [
  'ENOT_SCRIPTS', 'ENOT_WORK_DIR', 'ENOT_OUT_DIR', 'ENOT_OTP_INSTALLS', 'ENOT_OTP_ROOT', 'ENOT_OTP_VERSION', 'ENOT_SANDBOX',
  'ENOT_LOG_MAX_BYTES', 'ENOT_UPLOAD_BUCKET',
] as const;

/**
 * How long a started build may wait for a machine before it runs (CodeBuild's queued timeout, when the
 * account's concurrency is used up). The reaper counts it in before it calls a build lost.
 */
export const BUILDER_QUEUE_LIMIT_S = 1800;

/**
 * On AWS, where each goes: presigned PUT URLs for the build's own three keys (buildBlobKeys), made by the
 * dispatcher, so the build's role needs no S3 write and one build can never overwrite another's files.
 * publish PUTs each file that exists with the Content-Type below (the signature covers it). Unset
 * locally, where the local builder uploads through the BlobStore.
 */
export const UPLOAD_URL_ENV = {
  artifact: 'ENOT_PUT_ARTIFACT_URL',
  log: 'ENOT_PUT_LOG_URL',
  result: 'ENOT_PUT_RESULT_URL',
} as const;

/** The Content-Type each output is uploaded (and signed) with. */
export const OUTPUT_CONTENT_TYPES = {
  artifact: 'application/x-tar',
  log: 'text/plain; charset=utf-8',
  result: 'application/json',
} as const;

/** The files a build leaves in ENOT_OUT_DIR. `result.json` is always written, even for a failure. */
export const BUILD_OUTPUT = {
  artifact: 'package.ep',
  log: 'build.log',
  result: 'result.json',
} as const;

/** The BlobStore keys of a build's outputs (on AWS each is written through its own presigned URL only). */
export function buildBlobKeys(buildId: string): { artifact: string; log: string; result: string } {
  return {
    artifact: `artifacts/${buildId}.ep`,
    log: `logs/${buildId}.log`,
    result: `logs/${buildId}.result.json`,
  };
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

/** What a build reports in result.json. */
export const buildResultSchema = z.object({
  buildId: z.string(),
  status: z.enum(['succeeded', 'failed']),
  /** One line a person can act on: "compiled with rebar3", "unknown ref 9.9.9", "OTP 24 is not available (available: 25, 26)". */
  message: z.string(),
  /** What failed, for a failure: clone, ref, release, compile, package, internal. */
  failure: z.enum(['clone', 'ref', 'release', 'compile', 'package', 'internal']).optional(),
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
