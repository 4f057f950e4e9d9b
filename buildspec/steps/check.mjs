// The check step: opens the log with what is being built and makes sure the builder has what the steps need.
import fs from 'node:fs';
import { BuildFailure, which } from '../common.mjs';

/** Opens the log with what is being built and checks the builder has what the steps need. */
export async function check({ settings, log }) {
  const { job } = settings;
  fs.mkdirSync(settings.homeDir, { recursive: true });
  log.line(`enot-builder: build ${job.buildId} of ${job.fullName} ${job.ref} on OTP ${job.erlVersion}`);
  log.line(`node ${process.version}; time limit: ${job.timeoutS ? `${job.timeoutS} s` : 'unset'}; log limit: ${settings.logMaxBytes} bytes`);
  if (!which('git', settings.basePath)) throw new BuildFailure('internal', 'git is not installed on this builder');
}
