// The publish step, which always runs: result.json from the state the steps left, and on CodeBuild each output
// POSTed, with its SHA-256, through the presigned form of its own key.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { BUILD_OUTPUT, OUTPUT_CONTENT_TYPES, UPLOAD_CHECKSUM_FIELD } from '#core/build-contract-names.mjs';
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
  if (settings.uploadForms.result) await upload(settings, packaged);
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
 * On CodeBuild: POSTs each output that exists through the presigned form the dispatcher made for exactly its key
 * (functions/core/build-contract.ts, UPLOAD_FORM_ENV), with the Content-Type its policy names and the file's
 * SHA-256, which S3 checks the body against and keeps. The build's role has no S3 write, so nothing a build runs can
 * touch another build's files. The result goes last, so whoever reads it finds the package already there.
 */
async function upload(settings, packaged) {
  const { uploadForms } = settings;
  const files = [
    ...(packaged ? ['artifact'] : []),
    'log',
    'result',
  ].map((output) => [BUILD_OUTPUT[output], uploadForms[output], OUTPUT_CONTENT_TYPES[output]]);
  for (const [file, form, type] of files) {
    if (!form) throw new Error(`cannot upload ${file}: its presigned form is missing`);
    await postFile(path.join(settings.outDir, file), parseForm(file, form), type);
  }
}

/** `{"url": ..., "fields": {...}}`, checked: a malformed form fails the build here, not as a confusing HTTP error. */
function parseForm(file, text) {
  let form;
  try {
    form = JSON.parse(text);
  } catch {
    throw new Error(`cannot upload ${file}: its presigned form is not JSON`);
  }
  const fields = form?.fields;
  if (typeof form?.url !== 'string' || !fields || typeof fields !== 'object'
    || !Object.values(fields).every((value) => typeof value === 'string')) {
    throw new Error(`cannot upload ${file}: its presigned form needs a url and string fields`);
  }
  return { url: form.url, fields };
}

/**
 * One POST Object of a whole file: the form's fields, the checksum of the bytes sent (base64 of the raw digest, as
 * S3 wants it), then the file, which S3 requires last. A refused one is the builder's failure (the build's own
 * status says so).
 */
async function postFile(file, form, contentType) {
  const body = fs.readFileSync(file);
  const data = new FormData();
  for (const [name, value] of Object.entries(form.fields)) data.append(name, value);
  data.append(UPLOAD_CHECKSUM_FIELD, createHash('sha256').update(body).digest('base64'));
  data.append('file', new Blob([body], { type: contentType }), path.basename(file));
  let response;
  try {
    response = await fetch(form.url, { method: 'POST', body: data });
  } catch (error) {
    throw new Error(`uploading ${path.basename(file)} failed: ${error instanceof Error ? error.message : String(error)}`);
  }
  const answer = await response.text();
  // The fields carry a signature and a session token: neither goes into a message; S3's error code does.
  if (!response.ok) {
    const code = /<Code>([^<]{1,100})<\/Code>/.exec(answer)?.[1];
    throw new Error(`uploading ${path.basename(file)} to ${new URL(form.url).pathname} failed (HTTP ${response.status}${code ? ` ${code}` : ''})`);
  }
  echo(`uploaded ${path.basename(file)} (${body.length} bytes)\n`);
}
