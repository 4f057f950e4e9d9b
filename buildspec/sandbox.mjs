// The compile runs the repository's own code (Makefiles, rebar plugins, parse transforms), so it runs under
// bubblewrap when that works here: the whole filesystem read-only except the clone and a scratch HOME, a private
// /tmp, no network, its own PID namespace, no capabilities, and it dies with the step.
import { spawnSync } from 'node:child_process';
import { oneLine, which } from './common.mjs';

/**
 * Decides whether the compile is sandboxed. Probes with the very arguments the compile will use.
 * @returns {{ bwrap: string, reason: string }} bwrap is '' when not sandboxing; reason is the line for the log
 */
export function chooseSandbox(settings, bindings, env) {
  if (settings.sandbox === 'off') return { bwrap: '', reason: 'sandbox: off (ENOT_SANDBOX=off); compiling without it' };
  const bwrap = which('bwrap', settings.basePath);
  if (!bwrap) return { bwrap: '', reason: 'sandbox: not used: bubblewrap (bwrap) is not installed; compiling without it' };
  const probe = spawnSync(bwrap, [...bwrapArgs(bindings, false), 'true'], {
    env,
    shell: false,
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (probe.status !== 0) {
    const why = oneLine((probe.stderr || probe.error?.message || `exit ${probe.status}`).trim().split('\n').pop() ?? '');
    return { bwrap: '', reason: `sandbox: not used: bubblewrap does not work here (${why}); compiling without it` };
  }
  return { bwrap, reason: 'sandbox: bubblewrap, no network, read-only system, writable clone and HOME only' };
}

/**
 * bwrap's arguments up to and including `--`.
 * @param {{ writable: string[], readOnly: string[], cwd: string }} bindings
 * @param {boolean} network true only for fetching dependencies
 */
export function bwrapArgs({ writable, readOnly, cwd }, network) {
  const args = ['--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--tmpfs', '/tmp'];
  // After the /tmp tmpfs, so paths under /tmp (a work dir there, an OTP install there) stay visible.
  for (const dir of readOnly) args.push('--ro-bind', dir, dir);
  for (const dir of writable) args.push('--bind', dir, dir);
  if (!network) args.push('--unshare-net');
  args.push(
    '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--die-with-parent', '--new-session', '--cap-drop', 'ALL',
    '--chdir', cwd, '--',
  );
  return args;
}
