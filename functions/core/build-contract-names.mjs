// The build contract's names, in plain JavaScript so that the build scripts (buildspec/, plain node, no TypeScript)
// and the service (build-contract.ts re-exports them) read the same ones: the environment a build gets, the files it
// leaves, their Content-Types and the BlobStore keys they land at. Imports nothing: the builder image carries it alone.

/** Per-build parameters, passed as environment variables (CodeBuild environment overrides, or the local subprocess's env). */
export const BUILD_ENV = Object.freeze({
  buildId: 'ENOT_BUILD_ID',
  namespace: 'ENOT_NAMESPACE',
  name: 'ENOT_NAME',
  fullName: 'ENOT_FULL_NAME',
  cloneUrl: 'ENOT_CLONE_URL',
  ref: 'ENOT_REF',
  erlVersion: 'ENOT_ERL_VERSION',
  timeoutS: 'ENOT_BUILD_TIMEOUT_S',
});

/**
 * Set by whoever runs the build, not per request:
 * - scripts, ENOT_SCRIPTS: the directory holding the build scripts (the repo's buildspec/ locally, baked into the
 *   image on AWS);
 * - workDir, ENOT_WORK_DIR: a fresh scratch directory (the clone goes under it);
 * - outDir, ENOT_OUT_DIR: where the build leaves BUILD_OUTPUT files;
 * - otpInstalls, ENOT_OTP_INSTALLS: a directory of OTP installations named by release (kerl, in the image); unset:
 *   the `erl` on PATH;
 * - otpRoot, otpVersion, ENOT_OTP_ROOT, ENOT_OTP_VERSION (optional, without ENOT_OTP_INSTALLS): the root and full
 *   version ("25.2.3") of the OTP the runner already knows (the local builder's detected one), so the build need not
 *   start `erl` to find it;
 * - sandbox, ENOT_SANDBOX: `auto` (the package's code runs in buildspec/sandbox.mjs's sandbox; a builder where it
 *   cannot isolate refuses the build) or `off` (no sandbox, said loudly in every build log);
 * - logMaxBytes, ENOT_LOG_MAX_BYTES: the build log's cap; past it the log ends with a truncation note;
 * - memoryMb, diskMb, maxProcesses, logLineMaxBytes (ENOT_BUILD_MEMORY_MB, ENOT_BUILD_DISK_MB,
 *   ENOT_BUILD_MAX_PROCESSES, ENOT_BUILD_LOG_LINE_MAX_BYTES): the sandbox's limits (BUILD_LIMIT_DEFAULTS when unset);
 * - uploadBucket, ENOT_UPLOAD_BUCKET: set only on the ERTS project (ENOT_TASK=publish-erts, uploads with the aws
 *   CLI); package builds upload through the presigned forms of UPLOAD_FORM_ENV instead;
 * - task, ENOT_TASK: `build` (unset: the default) or `publish-erts` (the ERTS project: publish uploads the image's
 *   ERTS tarballs, every other step does nothing);
 * - cloneRewrite, ENOT_CLONE_REWRITE (optional): `prefix=replacement`, a mirror to clone matching URLs from (the
 *   local tests map https://github.com/ to repositories on disk);
 * - allowedCloneUrls, hexRepoUrl, hexPublicKey, depsMaxDepth, depsMaxCount, depsMaxBytes (ENOT_ALLOWED_CLONE_URLS,
 *   ENOT_HEX_REPO_URL, ENOT_HEX_REPO_PUBLIC_KEY, ENOT_DEPS_MAX_*): what the deps step may fetch, from where, and how
 *   much (buildspec/steps/deps.mjs; its defaults when unset: github.com, repo.hex.pm with its key, 5, 100, 256 MiB).
 */
export const RUNNER_ENV = Object.freeze({
  scripts: 'ENOT_SCRIPTS',
  workDir: 'ENOT_WORK_DIR',
  outDir: 'ENOT_OUT_DIR',
  otpInstalls: 'ENOT_OTP_INSTALLS',
  otpRoot: 'ENOT_OTP_ROOT',
  otpVersion: 'ENOT_OTP_VERSION',
  sandbox: 'ENOT_SANDBOX',
  logMaxBytes: 'ENOT_LOG_MAX_BYTES',
  memoryMb: 'ENOT_BUILD_MEMORY_MB',
  diskMb: 'ENOT_BUILD_DISK_MB',
  maxProcesses: 'ENOT_BUILD_MAX_PROCESSES',
  logLineMaxBytes: 'ENOT_BUILD_LOG_LINE_MAX_BYTES',
  uploadBucket: 'ENOT_UPLOAD_BUCKET',
  task: 'ENOT_TASK',
  cloneRewrite: 'ENOT_CLONE_REWRITE',
  allowedCloneUrls: 'ENOT_ALLOWED_CLONE_URLS',
  hexRepoUrl: 'ENOT_HEX_REPO_URL',
  hexPublicKey: 'ENOT_HEX_REPO_PUBLIC_KEY',
  depsMaxDepth: 'ENOT_DEPS_MAX_DEPTH',
  depsMaxCount: 'ENOT_DEPS_MAX_COUNT',
  depsMaxBytes: 'ENOT_DEPS_MAX_BYTES',
});

/**
 * The sandbox's limits when the runner sets none (the service's configuration uses the same defaults):
 * - memoryMb: address space per process (RLIMIT_AS); an Erlang VM alone reserves over 1 GB of it;
 * - diskMb: the size-limited filesystem holding the clone, HOME and /tmp while the package's code runs;
 * - maxProcesses: processes and threads of the build's own uid (RLIMIT_NPROC); a VM has dozens of threads;
 * - logLineMaxBytes: the longest output line kept; the rest of that line is dropped, with a note.
 */
export const BUILD_LIMIT_DEFAULTS = Object.freeze({
  memoryMb: 3072,
  diskMb: 1024,
  maxProcesses: 256,
  logLineMaxBytes: 65536,
});

/**
 * On AWS, where each goes: presigned POST forms (S3 POST Object) for the build's own three keys (buildBlobKeys),
 * made by the dispatcher, so the build's role needs no S3 write and one build can never overwrite another's files.
 * Each variable holds one form as JSON, `{"url": ..., "fields": {...}}`; its signed policy names the key, the
 * Content-Type of OUTPUT_CONTENT_TYPES, a size range and the expiry, and requires UPLOAD_CHECKSUM_FIELD. publish
 * POSTs each file that exists with the form's fields, the file's own SHA-256 in that field, and the file last;
 * S3 refuses a body that does not match it and keeps the checksum with the object.
 * Unset locally, where the local builder uploads through the BlobStore.
 */
export const UPLOAD_FORM_ENV = Object.freeze({
  artifact: 'ENOT_UPLOAD_ARTIFACT_FORM',
  log: 'ENOT_UPLOAD_LOG_FORM',
  result: 'ENOT_UPLOAD_RESULT_FORM',
});

/** The form field carrying the base64 of the file's raw SHA-256 digest (S3 verifies the body against it). */
export const UPLOAD_CHECKSUM_FIELD = 'x-amz-checksum-sha256';

/** The Content-Type each output is uploaded (and signed) with. */
export const OUTPUT_CONTENT_TYPES = Object.freeze({
  artifact: 'application/x-tar',
  log: 'text/plain; charset=utf-8',
  result: 'application/json',
});

/** The files a build leaves in ENOT_OUT_DIR. `result.json` is always written, even for a failure. */
export const BUILD_OUTPUT = Object.freeze({
  artifact: 'package.ep',
  log: 'build.log',
  result: 'result.json',
});

/**
 * The BlobStore keys of a build's outputs (on AWS each is written through its own presigned form only).
 * @param {string} buildId
 * @returns {{ artifact: string, log: string, result: string }}
 */
export function buildBlobKeys(buildId) {
  return {
    artifact: `artifacts/${buildId}.ep`,
    log: `logs/${buildId}.log`,
    result: `logs/${buildId}.result.json`,
  };
}

/**
 * The BlobStore key of a packed ERTS: one per ERTS version, so a key never changes what it holds.
 * @param {string} release the OTP release, as /download_erts names it ("26")
 * @param {string} ertsVersion "14.2.5"
 */
export function ertsBlobKey(release, ertsVersion) {
  return `erts/${release}/erts-${ertsVersion}.tar`;
}

/** Where the ERTS task (ENOT_TASK=publish-erts) leaves the index of the tarballs it uploaded, one JSON object a line. */
export const ERTS_INDEX_KEY = 'erts/index.jsonl';

/** The Content-Types of a packed ERTS and of that index. */
export const ERTS_CONTENT_TYPES = Object.freeze({
  tarball: 'application/x-tar',
  index: 'application/x-ndjson',
});
