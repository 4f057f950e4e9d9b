// The publish step, which always runs: result.json from the state the steps left, and on CodeBuild each output
// PUT to the presigned URL of its own key.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { BUILD_OUTPUT, OUTPUT_CONTENT_TYPES } from '#core/build-contract-names.mjs';
import { echo, oneLine } from '../common.mjs';
import { isRegularFile } from '../files.mjs';

export async function publish({ settings, log, state }) {
  const { job } = settings;
  const artifact = path.join(settings.outDir, BUILD_OUTPUT.artifact);
  const packaged = !state.failure && state.done.includes('package') && isRegularFile(artifact);
  const result = {
    buildId: job.buildId,
    status: packaged ? 'succeeded' : 'failed',
    message: packaged
      ? `built ${state.appName} ${state.appVsn} with ${state.tool} on OTP ${state.otpRelease}`
      : state.failure?.message ?? `the build stopped after ${state.done.at(-1) ?? 'no step'}; see the log`,
    failure: packaged ? undefined : state.failure?.failure ?? 'internal',
    commitSha: state.commitSha,
    authorEmail: state.authorEmail,
    otpRelease: state.otpRelease,
    availableReleases: state.availableReleases,
    tool: state.tool,
    appVsn: state.appVsn,
    ...(packaged ? digestFile(artifact) : {}),
  };
  if (!packaged) fs.rmSync(artifact, { force: true });
  log.line(`==> result: ${result.status}: ${result.message}`);
  // Past the log's cap the outcome still shows where the build is watched (CodeBuild's console, a terminal).
  if (log.truncated) echo(`==> result: ${result.status}: ${oneLine(result.message, 500)}\n`);
  writeResult(settings, result);
  if (settings.uploadUrls.result) await upload(settings, packaged);
}

/** Size and SHA-256 of the file as it is now (not as the package step recorded them). */
function digestFile(file) {
  const hash = createHash('sha256');
  const buffer = Buffer.alloc(1024 * 1024);
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  let size = 0;
  try {
    for (let n; (n = fs.readSync(fd, buffer, 0, buffer.length, null)) > 0; size += n) hash.update(buffer.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return { artifactSize: size, artifactSha256: hash.digest('hex') };
}

export function writeResult(settings, result) {
  const clean = Object.fromEntries(Object.entries(result).filter(([, v]) => v !== undefined));
  fs.mkdirSync(settings.outDir, { recursive: true });
  const file = path.join(settings.outDir, BUILD_OUTPUT.result);
  fs.writeFileSync(`${file}.tmp`, `${JSON.stringify(clean, null, 2)}\n`);
  fs.renameSync(`${file}.tmp`, file);
}

/**
 * On CodeBuild: PUTs each output that exists to the presigned URL the dispatcher made for exactly its key
 * (functions/core/build-contract.ts, UPLOAD_URL_ENV), with the Content-Type the URL was signed with. The
 * build's role has no S3 write, so nothing a build runs can touch another build's files. The result goes
 * last, so whoever reads it finds the package already there.
 */
async function upload(settings, packaged) {
  const { uploadUrls } = settings;
  const files = [
    ...(packaged ? ['artifact'] : []),
    'log',
    'result',
  ].map((output) => [BUILD_OUTPUT[output], uploadUrls[output], OUTPUT_CONTENT_TYPES[output]]);
  for (const [file, url, type] of files) {
    if (!url) throw new Error(`cannot upload ${file}: its presigned URL is missing`);
    await putFile(path.join(settings.outDir, file), url, type);
  }
}

/** One PUT of a whole file; a refused one is the builder's failure (the build's own status says so). */
async function putFile(file, url, contentType) {
  const body = fs.readFileSync(file);
  let response;
  try {
    response = await fetch(url, { method: 'PUT', headers: { 'content-type': contentType }, body });
  } catch (error) {
    throw new Error(`uploading ${path.basename(file)} failed: ${error instanceof Error ? error.message : String(error)}`);
  }
  await response.arrayBuffer();
  // The URL carries a signature: only its path goes into a message.
  if (!response.ok) throw new Error(`uploading ${path.basename(file)} to ${new URL(url).pathname} failed (HTTP ${response.status})`);
  echo(`uploaded ${path.basename(file)} (${body.length} bytes)\n`);
}
