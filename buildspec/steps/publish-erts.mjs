// ENOT_TASK=publish-erts, the other task of the same CodeBuild project: publish uploads the ERTS tarballs the image
// packed (buildspec/Dockerfile) instead of a package's outputs; the runner skips every other step.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ERTS_CONTENT_TYPES, ERTS_INDEX_KEY, RUNNER_ENV, ertsBlobKey } from '#core/build-contract-names.mjs';
import { echo, oneLine, run } from '../common.mjs';

/** Where the image packed them (buildspec/Dockerfile): <release>.tar each, and their index.jsonl. */
const PACKED_ERTS_DIR = fileURLToPath(new URL('../erts/', import.meta.url));
const PACKED_INDEX = 'index.jsonl';

/**
 * The other task of the same project: uploads the ERTS tarballs the image packed (erts/ beside these scripts,
 * described by erts/index.jsonl) to erts/<release>/erts-<vsn>.tar, and the index, each line with its key, to
 * erts/index.jsonl for whatever registers them. Not a package build: no log, no result.json.
 */
export async function publishErts(settings) {
  if (!settings.uploadBucket) throw new Error(`${RUNNER_ENV.uploadBucket} is not set: nowhere to publish the ERTS tarballs`);
  const lines = fs.readFileSync(path.join(PACKED_ERTS_DIR, PACKED_INDEX), 'utf8').split('\n').filter((l) => l.trim() !== '');
  const published = [];
  for (const line of lines) {
    const entry = JSON.parse(line);
    if (!/^\d+$/.test(entry.release ?? '') || !/^[0-9.]+$/.test(entry.ertsVersion ?? '')) {
      throw new Error(`erts/${PACKED_INDEX} has a malformed line: ${oneLine(line, 200)}`);
    }
    const key = ertsBlobKey(entry.release, entry.ertsVersion);
    await awsCopy(settings, path.join(PACKED_ERTS_DIR, `${entry.release}.tar`), key, ERTS_CONTENT_TYPES.tarball);
    echo(`published OTP ${entry.otpVersion ?? entry.release} ERTS ${entry.ertsVersion} to ${key}\n`);
    published.push(JSON.stringify({ ...entry, key }));
  }
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'enot-erts-'));
  try {
    const index = path.join(scratch, PACKED_INDEX);
    fs.writeFileSync(index, `${published.join('\n')}\n`);
    await awsCopy(settings, index, ERTS_INDEX_KEY, ERTS_CONTENT_TYPES.index);
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * Copies a file to the bucket with the aws CLI, which needs the builder's own environment (its credentials). Its
 * output goes to stdout only: the log is complete by then.
 */
async function awsCopy(settings, file, key, contentType) {
  const target = `s3://${settings.uploadBucket}/${key}`;
  const args = ['s3', 'cp', file, target, '--only-show-errors', '--content-type', contentType];
  const result = await run({ write: echo, truncated: false }, 'aws', args, { cwd: path.dirname(file), env: process.env });
  if (result.code !== 0) throw new Error(`uploading ${path.basename(file)} to ${target} failed (aws exited ${result.code})`);
}
