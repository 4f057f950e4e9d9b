// The sandbox for the package's own code (compile, rebar.config.script, Makefiles, plugins, parse transforms): an
// unprivileged uid of the build's own, only an allow-list of the filesystem, its clone in a size-limited filesystem,
// no network, its own PID namespace, rlimits on memory, file size and processes, and nothing left running after it.
//
// Shape of one sandboxed command (the same here, in CodeBuild's image and in the local builder):
//   prlimit (memory, processes, file size, no core)
//     bwrap "outer": mounts the allow-list, a tmpfs of the disk limit on the work dir, the real clone and HOME at
//                    /.enot/*; as root it is privileged bwrap, so it reaches a clone under a 0700 data directory
//       setpriv (root only): the build's uid, no groups, no new privileges
//         sh (WRAPPER): copies clone and HOME into the tmpfs, runs the inner sandbox, then copies them back
//           bwrap "inner": a new user, PID, network, IPC and UTS namespace with the tmpfs bound but not /.enot/*,
//                          so the package's code never touches the real disk, and all its processes die with it.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BuildFailure, oneLine, which } from './common.mjs';

/** Build uids: one per build (so RLIMIT_NPROC counts that build alone), far from any account or subuid range. */
const UID_BASE = 2_000_000_000;
const UID_SPAN = 100_000_000;

/** Where the outer sandbox shows the real clone and HOME to the wrapper (the inner one never sees them). */
const REAL_CLONE = '/.enot/clone';
const REAL_HOME = '/.enot/home';

/** Root's entries, as links (merged /usr) or read-only binds. */
const ROOT_LINKS = ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'];

/** What of the host's /etc a build sees: libraries' and tools' settings and CA certificates; no accounts, no secrets. */
const ETC_ALLOWED = [
  'alternatives', 'ca-certificates', 'ca-certificates.conf', 'ssl', 'ld.so.cache', 'ld.so.conf', 'ld.so.conf.d',
  'localtime', 'mime.types', 'nsswitch.conf', 'protocols', 'services',
];

/** Exit code of the wrapper when the sandbox itself failed (copying in or out), not the package's tool. */
export const SANDBOX_FAILED_EXIT = 125;

// The trusted part inside the sandbox. $1 work dir (the tmpfs), $2 clone, $3 HOME, $4 the disk limit in MB; then the
// inner bwrap's argv. It runs as the build's uid, but the package's code cannot reach it: that code is in a PID
// namespace nested inside this one and sees neither this process nor /.enot.
const WRAPPER = `
work=$1 repo=$2 home=$3 disk_mb=$4
shift 4
full() { echo "sandbox: limit hit: disk: the clone, HOME and /tmp may hold \${disk_mb} MB (ENOT_BUILD_DISK_MB)"; }
mkdir -p "$repo" "$home" "$work/tmp" || exit ${SANDBOX_FAILED_EXIT}
if ! { cp -a ${REAL_CLONE}/. "$repo"/ && cp -a ${REAL_HOME}/. "$home"/; }; then
  full; echo "sandbox: the clone and HOME do not fit in the build's filesystem"; exit ${SANDBOX_FAILED_EXIT}
fi
"$@"
rc=$?
avail=$(df -Pk "$work" | awk 'NR==2 { print $4 }')
[ "\${avail:-0}" -lt 256 ] && full
copy_out() {
  chmod -R u+rwX "$1" "$2" 2>/dev/null
  find "$2" -mindepth 1 -delete && cp -a "$1"/. "$2"/
}
if ! { copy_out "$repo" ${REAL_CLONE} && copy_out "$home" ${REAL_HOME}; }; then
  echo "sandbox: copying the build's files out of the sandbox failed"; exit ${SANDBOX_FAILED_EXIT}
fi
exit $rc
`;

/** The sandbox's limits from the runner's settings, for the log and the commands. */
export function limitsLine(settings) {
  const l = settings.limits;
  return `limits: time ${settings.job.timeoutS ? `${settings.job.timeoutS} s` : 'unset'}; memory ${l.memoryMb} MB per process; `
    + `disk ${l.diskMb} MB (clone, HOME and /tmp); processes ${l.maxProcesses}; log ${settings.logMaxBytes} bytes; `
    + `log line ${l.logLineMaxBytes} bytes`;
}

/** The uid a build's code runs as: derived from the build id, so two builds at once almost never share one. */
export function buildUid(buildId) {
  let hash = 2166136261;
  for (const ch of String(buildId)) hash = Math.imul(hash ^ ch.charCodeAt(0), 16777619) >>> 0;
  return UID_BASE + (hash % UID_SPAN);
}

/**
 * Decides how the package's code runs, by trying the very sandbox it will run in (a `true` in a throwaway work dir).
 * @returns {{ mode: 'bubblewrap' | 'off' | 'unavailable', reason: string, uid: number }} reason: the log's line
 */
export function probeSandbox(settings) {
  const uid = process.getuid?.() === 0 ? buildUid(settings.job.buildId || 'probe') : process.getuid?.() ?? 0;
  if (settings.sandbox === 'off') {
    return {
      mode: 'off', uid,
      reason: 'sandbox: off (ENOT_SANDBOX=off); compiling without it. WARNING: the package\'s code runs with the builder\'s '
        + 'own rights: it can read and change everything this builder can, its network included',
    };
  }
  const missing = ['bwrap', 'prlimit', ...(process.getuid?.() === 0 ? ['setpriv'] : [])].filter((p) => !which(p, settings.basePath));
  if (missing.length) return unavailable(uid, `${missing.join(', ')} not installed`);
  const probeDir = fs.mkdtempSync(path.join(settings.stateDir, 'probe-'));
  try {
    const work = path.join(probeDir, 'work');
    const layout = { workDir: work, repoDir: path.join(work, 'repo'), homeDir: path.join(work, 'home'), stateDir: probeDir };
    for (const dir of [layout.repoDir, layout.homeDir]) fs.mkdirSync(dir, { recursive: true });
    prepareForUid(layout, uid);
    const { command, args } = sandboxedCommand({ ...settings, ...layout }, { uid, cwd: layout.repoDir }, 'true', []);
    const probe = spawnSync(command, args, { env: { PATH: settings.basePath }, encoding: 'utf8', timeout: 30_000 });
    if (probe.status !== 0) {
      const why = oneLine((probe.stderr || probe.stdout || probe.error?.message || `exit ${probe.status}`).trim().split('\n').pop() ?? '');
      return unavailable(uid, `bubblewrap cannot isolate here: ${why}`);
    }
  } finally {
    fs.rmSync(probeDir, { recursive: true, force: true });
  }
  return {
    mode: 'bubblewrap', uid,
    reason: `sandbox: bubblewrap, no network, uid ${uid}, an allow-list of the filesystem (no /run, /root, /home or data), `
      + 'the clone, HOME and /tmp in a size-limited filesystem; nothing outlives a command',
  };
}

function unavailable(uid, why) {
  return {
    mode: 'unavailable', uid,
    reason: `sandbox: unavailable (${why}); builds are refused here unless ENOT_SANDBOX=off is set`,
  };
}

/** The build's failure when the sandbox is unavailable: the builder's own fault, said the same way in every log. */
export function sandboxRefusal(probe) {
  return new BuildFailure('internal', `${probe.reason.replace(/^sandbox: /, 'the build sandbox is ')}`);
}

/**
 * Makes the clone and HOME the build uid's own (so the wrapper can copy them back), and writes the sandbox's /etc
 * accounts: the build user and its group, nothing else.
 */
export function prepareForUid(settings, uid) {
  if (process.getuid?.() === 0) {
    for (const dir of [settings.repoDir, settings.homeDir]) chownTree(dir, uid);
  }
  const etc = path.join(settings.stateDir, 'sandbox-etc');
  fs.mkdirSync(etc, { recursive: true });
  fs.writeFileSync(path.join(etc, 'passwd'), `root:x:0:0:root:/nonexistent:/usr/sbin/nologin\nbuild:x:${uid}:${uid}:build:${settings.homeDir}:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`);
  fs.writeFileSync(path.join(etc, 'group'), `root:x:0:\nbuild:x:${uid}:\nnogroup:x:65534:\n`);
  fs.writeFileSync(path.join(etc, 'hosts'), '127.0.0.1 localhost\n::1 localhost\n');
}

function chownTree(dir, uid) {
  const stack = [dir];
  while (stack.length) {
    const current = stack.pop();
    let stat;
    try {
      stat = fs.lstatSync(current);
    } catch {
      continue;
    }
    fs.lchownSync(current, uid, uid);
    if (stat.isDirectory()) for (const entry of fs.readdirSync(current)) stack.push(path.join(current, entry));
  }
}

/**
 * The system's read-only part, the same in both sandboxes: /usr and root's links, /dev, /proc.
 * @param {boolean} hostProc the outer sandbox's /proc: the host's (where only our wrapper runs). The kernel lets the inner sandbox mount a
 *   proc of its own only where a proc is fully visible, and privileged bwrap covers parts of a fresh one.
 */
function systemArgs(hostProc = false) {
  const args = ['--ro-bind', '/usr', '/usr'];
  for (const name of ROOT_LINKS) {
    const at = `/${name}`;
    let stat;
    try {
      stat = fs.lstatSync(at);
    } catch {
      continue;
    }
    if (stat.isSymbolicLink()) args.push('--symlink', fs.readlinkSync(at), at);
    else if (stat.isDirectory()) args.push('--ro-bind', at, at);
  }
  args.push('--dev', '/dev', ...(hostProc ? ['--bind', '/proc', '/proc'] : ['--proc', '/proc']));
  return args;
}

/** Where a tool lives when it is not under /usr (a kerl OTP in /opt/otp/26, enot's venv): its installation's root. */
function installRoot(command) {
  let real;
  try {
    real = fs.realpathSync(command);
  } catch {
    return '';
  }
  if (real.startsWith('/usr/')) return '';
  const dir = path.dirname(real);
  return path.basename(dir) === 'bin' ? path.dirname(dir) : dir;
}

/**
 * The argv that runs `command args` in the sandbox.
 * @param {{ workDir: string, repoDir: string, homeDir: string, stateDir: string, limits: object, basePath: string }} settings
 * @param {{ uid: number, cwd: string, readOnly?: string[] }} how; there is no way to give the package's code a network:
 *   its dependencies are fetched before, by trusted code (steps/deps.mjs)
 * @returns {{ command: string, args: string[] }}
 */
export function sandboxedCommand(settings, { uid, cwd, readOnly = [] }, command, args) {
  const bwrap = which('bwrap', settings.basePath) || 'bwrap';
  const asRoot = process.getuid?.() === 0;
  const { workDir, repoDir, homeDir, limits } = settings;
  const etc = path.join(settings.stateDir, 'sandbox-etc');
  const tool = path.isAbsolute(command) ? installRoot(command) : '';
  const extra = [...new Set([...readOnly, tool].filter((p) => p && path.isAbsolute(p) && !p.startsWith('/usr/') && fs.existsSync(p)))];
  const extraBinds = extra.flatMap((p) => ['--ro-bind', p, p]);
  const etcBinds = ['--dir', '/etc'];
  for (const name of ETC_ALLOWED) if (fs.existsSync(`/etc/${name}`)) etcBinds.push('--ro-bind', `/etc/${name}`, `/etc/${name}`);
  for (const name of ['passwd', 'group', 'hosts']) etcBinds.push('--ro-bind', path.join(etc, name), `/etc/${name}`);

  const inner = [
    bwrap, ...systemArgs(), '--ro-bind', '/etc', '/etc',
    // /tmp first: the work dir may lie under /tmp (a test's scratch), and must stay visible over it.
    '--bind', path.join(workDir, 'tmp'), '/tmp', '--bind', workDir, workDir, ...extraBinds,
    '--unshare-user', '--disable-userns', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try',
    '--unshare-net',
    '--hostname', 'enot-build', '--die-with-parent', '--new-session', '--cap-drop', 'ALL', '--chdir', cwd, '--', command, ...args,
  ];
  const outer = [
    ...systemArgs(true), ...etcBinds,
    // Made by root when the outer sandbox is privileged: open to the build uid, the only one that ever runs in it.
    '--perms', '0777', '--size', String(limits.diskMb * 1024 * 1024), '--tmpfs', workDir,
    '--perms', '0755', '--dir', path.dirname(REAL_CLONE),
    '--bind', repoDir, REAL_CLONE, '--bind', homeDir, REAL_HOME, ...extraBinds, ...traversable(extra, workDir),
    // setpriv's: to become the build uid, and to leave it no capability to inherit or regain.
    ...(asRoot ? ['--cap-add', 'CAP_SETUID', '--cap-add', 'CAP_SETGID', '--cap-add', 'CAP_SETPCAP'] : ['--unshare-user']),
    '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try', '--unshare-net',
    '--die-with-parent', '--new-session', '--chdir', '/', '--',
  ];
  const drop = asRoot ? ['/usr/bin/setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--no-new-privs', '--'] : [];
  const mem = limits.memoryMb * 1024 * 1024;
  return {
    command: which('prlimit', settings.basePath) || 'prlimit',
    args: [
      `--as=${mem}`, `--nproc=${limits.maxProcesses}`, `--fsize=${limits.diskMb * 1024 * 1024}`, '--core=0', '--',
      bwrap, ...outer, ...drop, '/bin/sh', '-c', WRAPPER, 'enot-sandbox', workDir, repoDir, homeDir, String(limits.diskMb), ...inner,
    ],
  };
}

/**
 * `--chmod 0755` for the directories bwrap made on the way to `paths` (it makes them 0700 as root), so the build uid
 * can reach what is bound there; the work dir itself keeps its own mode.
 */
function traversable(paths, workDir) {
  const dirs = new Set();
  for (const p of paths) {
    for (let dir = path.dirname(p); dir !== '/' && dir !== '.'; dir = path.dirname(dir)) if (dir !== workDir) dirs.add(dir);
  }
  return [...dirs].sort().flatMap((dir) => ['--chmod', '0755', dir]);
}

/**
 * The limits a failed command seems to have hit, as lines for the log: read from what its tools said (the kernel's
 * refusals reach them as ENOMEM, EAGAIN on fork, EFBIG or SIGXFSZ, ENOSPC).
 */
export function limitsHit(settings, result) {
  const l = settings.limits;
  const text = result.lines.join('\n');
  const hits = [];
  if (/Cannot allocate|out of memory|memory exhausted|std::bad_alloc|ENOMEM|Failed to create super carrier/i.test(text)) {
    hits.push(`sandbox: limit hit: memory: ${l.memoryMb} MB of address space per process (ENOT_BUILD_MEMORY_MB)`);
  }
  if (/Cannot fork|fork: retry|Resource temporarily unavailable|EAGAIN/i.test(text)) {
    hits.push(`sandbox: limit hit: processes: ${l.maxProcesses} processes and threads (ENOT_BUILD_MAX_PROCESSES)`);
  }
  if (result.signal === 'SIGXFSZ' || result.code === 128 + 25 || /File size limit exceeded/i.test(text)) {
    hits.push(`sandbox: limit hit: file size: ${l.diskMb} MB (ENOT_BUILD_DISK_MB)`);
  }
  if (/No space left on device/i.test(text) && !/limit hit: disk/.test(text)) {
    hits.push(`sandbox: limit hit: disk: the clone, HOME and /tmp may hold ${l.diskMb} MB (ENOT_BUILD_DISK_MB)`);
  }
  return hits;
}
