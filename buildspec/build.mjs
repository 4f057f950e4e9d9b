#!/usr/bin/env node
// The runner of the build's steps (each in steps/): check, clone, release, deps, compile, package, publish, as buildspec.yml
// calls them, several to a process (`node build.mjs check clone release deps`: one node start per phase, not per step) or
// one at a time (`all` runs them all, publish included after a failure, for a person at a terminal). Steps hand over
// through files under ENOT_WORK_DIR whether or not they share a process; a step that fails records why and exits 0,
// later steps do nothing, and publish always writes result.json. A non-zero exit means the builder itself broke. The
// contract (env in, files out) is functions/core/build-contract.ts, its names functions/core/build-contract-names.mjs.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUILD_OUTPUT, RUNNER_ENV } from '#core/build-contract-names.mjs';
import { BuildFailure, BuildLog, loadState, oneLine, readSettings, saveState, stopChildren } from './common.mjs';
import { check } from './steps/check.mjs';
import { clone } from './steps/clone.mjs';
import { compile } from './steps/compile.mjs';
import { deps } from './steps/deps.mjs';
import { packageStep } from './steps/package.mjs';
import { publishErts } from './steps/publish-erts.mjs';
import { publish, writeResult } from './steps/publish.mjs';
import { release } from './steps/release.mjs';

export const STEP_ORDER = ['check', 'clone', 'release', 'deps', 'compile', 'package', 'publish'];

const STEPS = { check, clone, release, deps, compile, package: packageStep, publish };

/** Runs one step in this process. @returns {Promise<number>} the exit code */
export async function runStep(name) {
  const settings = readSettings();
  const task = process.env[RUNNER_ENV.task] || 'build';
  if (task === 'publish-erts') {
    // The same buildspec serves both tasks: only publish has work to do here.
    if (name !== 'publish') return 0;
    try {
      await publishErts(settings);
      return 0;
    } catch (err) {
      process.stderr.write(`publish-erts: ${err instanceof Error ? err.message : String(err)}\n`);
      return 1;
    }
  }
  if (task !== 'build') {
    process.stderr.write(`unknown ${RUNNER_ENV.task} ${JSON.stringify(oneLine(task, 60))}: expected build or publish-erts\n`);
    return 2;
  }
  const log = new BuildLog(settings);
  const state = loadState(settings);
  if (name !== 'publish' && state.failure) {
    log.line(`==> ${name}: skipped (the build failed in an earlier step)`);
    return 0;
  }
  log.line(`==> ${name}`);
  try {
    await STEPS[name]({ settings, log, state });
    if (!state.done.includes(name)) state.done.push(name);
    saveState(settings, state);
    return 0;
  } catch (err) {
    if (err instanceof BuildFailure) {
      state.failure = { failure: err.failure, message: oneLine(err.message, 500) };
      Object.assign(state, err.extra);
      log.line(`==> ${name} failed: ${state.failure.message}`);
      saveState(settings, state);
      return name === 'publish' ? 1 : 0;
    }
    const message = `internal error in the ${name} step: ${oneLine(err instanceof Error ? err.message : String(err))}`;
    log.line(`==> ${message}`);
    if (err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    if (name !== 'publish') {
      state.failure = { failure: 'internal', message };
      saveState(settings, state);
    } else if (!fs.existsSync(path.join(settings.outDir, BUILD_OUTPUT.result))) {
      writeResult(settings, { buildId: settings.job.buildId, status: 'failed', message, failure: 'internal' });
    }
    return 1;
  }
}

/**
 * `node build.mjs <step>...`: the steps in turn in this one process, as if each were its own command of a phase:
 * the first that exits non-zero (the builder broke) ends the command with its code, and the rest do not run.
 * The steps still hand over through the state files, so each can also run alone.
 */
async function main(argv) {
  if (argv.length === 1 && argv[0] === 'all') {
    for (const name of STEP_ORDER) {
      const code = await runStep(name);
      if (code !== 0 && name !== 'publish') return runStep('publish').then(() => code);
      if (code !== 0) return code;
    }
    return 0;
  }
  if (argv.length === 0 || !argv.every((step) => Object.hasOwn(STEPS, step))) {
    process.stderr.write(`usage: node build.mjs <step>... (steps: ${STEP_ORDER.join(' ')}) | all\n`);
    return 2;
  }
  for (const step of argv) {
    const code = await runStep(step);
    if (code !== 0) return code;
  }
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  // A stopped build stops its tools too: they get the signal (bwrap's sandbox also dies with its parent).
  for (const [signal, code] of [['SIGTERM', 143], ['SIGINT', 130]]) {
    process.once(signal, () => {
      stopChildren(signal);
      process.exit(code);
    });
  }
  process.exitCode = await main(process.argv.slice(2));
}
