// The check step: opens the log with what is being built and under which limits, and makes sure the builder has what
// the steps need, the sandbox for the package's code included (a builder that cannot isolate refuses the build).
import fs from 'node:fs';
import { BuildFailure, which } from '../common.mjs';
import { limitsLine, probeSandbox, sandboxRefusal } from '../sandbox.mjs';

/** Opens the log with what is being built and checks the builder has what the steps need. */
export async function check({ settings, log, state }) {
  const { job } = settings;
  fs.mkdirSync(settings.homeDir, { recursive: true });
  log.line(`enot-builder: build ${job.buildId} of ${job.fullName} ${job.ref} on OTP ${job.erlVersion}`);
  log.line(`node ${process.version}; ${limitsLine(settings)}`);
  if (!which('git', settings.basePath)) throw new BuildFailure('internal', 'git is not installed on this builder');
  const sandbox = probeSandbox(settings);
  log.line(sandbox.reason);
  if (sandbox.mode === 'unavailable') throw sandboxRefusal(sandbox);
  // The compile runs as this uid in the sandbox this probe tried.
  state.sandbox = { mode: sandbox.mode, uid: sandbox.uid, reason: sandbox.reason };
}
