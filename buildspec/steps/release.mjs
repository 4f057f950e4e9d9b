// The release step: the OTP installation the build runs on, the one named like the request or the newest it
// prefixes at a dot; a release the builder does not have is the package's failure, with the ones it has.
import fs from 'node:fs';
import path from 'node:path';
import { BuildFailure, childEnv, requireDone, run, which } from '../common.mjs';
import { PROBE_EVAL, pickRelease, readOtpVersion } from '../erlang.mjs';
import { isExecutable } from '../files.mjs';

/**
 * The OTP installations this builder has: ENOT_OTP_INSTALLS' subdirectories, else the one the runner named
 * (ENOT_OTP_ROOT, with ENOT_OTP_VERSION or its releases/<rel>/OTP_VERSION), else the erl on PATH (asked by starting it).
 */
async function findInstalls(settings, log) {
  if (settings.otpInstalls) {
    let names = [];
    try {
      names = fs.readdirSync(settings.otpInstalls);
    } catch {
      names = [];
    }
    return names
      .filter((name) => !name.startsWith('.') && isExecutable(path.join(settings.otpInstalls, name, 'bin', 'erl')))
      .map((name) => {
        const root = path.join(settings.otpInstalls, name);
        return { name, root, bin: path.join(root, 'bin'), version: readOtpVersion(root) || name };
      });
  }
  if (settings.otpRoot && isExecutable(path.join(settings.otpRoot, 'bin', 'erl'))) {
    const root = settings.otpRoot;
    const named = /^[0-9][0-9A-Za-z.-]*$/.test(settings.otpVersion) ? settings.otpVersion : '';
    const version = named || readOtpVersion(root);
    if (version) return [{ name: version, root, bin: path.join(root, 'bin'), version }];
  }
  const erl = which('erl', settings.basePath);
  if (!erl) return [];
  const probe = await run(log, erl, ['-noshell', '-eval', PROBE_EVAL], {
    cwd: settings.workDir, env: childEnv(settings, {}), quiet: true, capture: true,
  });
  const [rel = '', root = ''] = (probe.output ?? '').split('\n');
  if (probe.code !== 0 || !/^\d+$/.test(rel) || !root) return [];
  const version = readOtpVersion(root, rel) || rel;
  return [{ name: version, root, bin: path.join(root, 'bin'), version }];
}

export async function release({ settings, log, state }) {
  requireDone(state, ['clone']);
  const requested = settings.job.erlVersion;
  const installs = await findInstalls(settings, log);
  const picked = pickRelease(requested, installs);
  if (!picked) {
    const available = installs.map((i) => i.name);
    throw new BuildFailure(
      'release',
      `OTP ${requested} is not available on this builder (available: ${available.join(', ') || 'none'})`,
      { availableReleases: available },
    );
  }
  state.otpRoot = picked.root;
  state.otpBin = picked.bin;
  state.otpRelease = picked.version;
  state.otpMajor = picked.version.split('.')[0];
  log.line(`OTP ${picked.version} from ${picked.root}`);
}
