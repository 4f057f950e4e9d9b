// The clone step: refuses a malformed job before git sees it, then a shallow clone of the ref; records the commit,
// its author's email and its time (the package's timestamps).
import fs from 'node:fs';
import { BuildFailure, childEnv, oneLine, redactUrl, run } from '../common.mjs';
import { RUNNER_ENV } from '#core/build-contract-names.mjs';

const REF_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$/;
const ERL_VERSION_PATTERN = /^[0-9]+(\.[0-9]+){0,3}$/;
const NAME_PATTERN = /^[A-Za-z0-9._-]{1,100}$/;
const BUILD_ID_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;

/** Refuses a job whose values could be mistaken for options or paths before anything runs with them. */
function validateJob(job) {
  if (!REF_PATTERN.test(job.ref) || job.ref.includes('..')) {
    throw new BuildFailure(
      'ref',
      `refusing ref ${JSON.stringify(oneLine(job.ref, 120))}: a ref is a tag or branch name of letters, digits and . _ + - (at most 100)`,
    );
  }
  if (!ERL_VERSION_PATTERN.test(job.erlVersion)) {
    throw new BuildFailure(
      'release',
      `refusing OTP release ${JSON.stringify(oneLine(job.erlVersion, 60))}: expected a release such as 25, 26.2 or 26.2.5`,
    );
  }
  let url;
  try {
    url = new URL(job.cloneUrl);
  } catch {
    url = null;
  }
  // eslint-disable-next-line no-control-regex
  if (!url || !['https:', 'file:'].includes(url.protocol) || /[\s\u0000-\u001f\u007f]/.test(job.cloneUrl)) {
    throw new BuildFailure(
      'clone',
      `refusing clone URL ${JSON.stringify(oneLine(redactUrl(job.cloneUrl), 200))}: only https:// and file:// URLs are built`,
    );
  }
  const [namespace, name, ...rest] = job.fullName.split('/');
  const goodName = (n) => NAME_PATTERN.test(n ?? '') && !/^\.+$/.test(n);
  const consistent = name === job.name && namespace === job.namespace && rest.length === 0;
  if (!goodName(job.name) || !goodName(namespace) || !goodName(name) || !consistent) {
    throw new BuildFailure('internal', `refusing package name ${JSON.stringify(oneLine(job.fullName, 200))}: expected namespace/name`);
  }
  if (!BUILD_ID_PATTERN.test(job.buildId)) throw new BuildFailure('internal', 'refusing the job: ENOT_BUILD_ID is missing or malformed');
}

/**
 * ENOT_CLONE_REWRITE=`prefix=replacement` (the runner's, not the job's): a URL starting with `prefix` is cloned from
 * `replacement` instead, through git's url.<base>.insteadOf (a mirror; the local tests map https://github.com/ to
 * repositories on disk). Null when unset, malformed, or not about this URL.
 */
function cloneRewrite(value, cloneUrl) {
  const at = (value ?? '').indexOf('=');
  if (at <= 0) return null;
  const prefix = value.slice(0, at);
  const replacement = value.slice(at + 1);
  if (!cloneUrl.startsWith(prefix)) return null;
  let scheme;
  try {
    scheme = new URL(replacement).protocol.slice(0, -1);
  } catch {
    return null;
  }
  return ['https', 'file'].includes(scheme) ? { prefix, replacement, scheme } : null;
}

export async function clone({ settings, log, state }) {
  const { job } = settings;
  validateJob(job);
  fs.rmSync(settings.repoDir, { recursive: true, force: true });
  fs.mkdirSync(settings.homeDir, { recursive: true });
  const scheme = new URL(job.cloneUrl).protocol.slice(0, -1);
  const rewrite = cloneRewrite(process.env[RUNNER_ENV.cloneRewrite], job.cloneUrl);
  // GIT_ALLOW_PROTOCOL: only the URL's own transport (and a mirror's), also for redirects; file:// needs it since git 2.38.
  const protocols = rewrite && rewrite.scheme !== scheme ? `${scheme}:${rewrite.scheme}` : scheme;
  const env = childEnv(settings, state, { GIT_TERMINAL_PROMPT: '0', GIT_ALLOW_PROTOCOL: protocols });
  const shown = redactUrl(job.cloneUrl);
  log.line(`$ git clone --depth 1 --branch ${job.ref} -- ${shown}`);
  const cloned = await run(
    log,
    'git',
    [
      '-c', 'advice.detachedHead=false',
      ...(rewrite ? ['-c', `url.${rewrite.replacement}.insteadOf=${rewrite.prefix}`] : []),
      'clone', '--depth', '1', '--branch', job.ref, '--', job.cloneUrl, settings.repoDir,
    ],
    { cwd: settings.workDir, env },
  );
  if (cloned.code !== 0) {
    const output = cloned.lines.join('\n');
    if (/Remote branch .* not found|couldn't find remote ref|not found in upstream/i.test(output)) {
      throw new BuildFailure('ref', `unknown ref ${job.ref}: no such tag or branch in ${shown}`);
    }
    // git's first fatal line names the problem; what follows is advice about access rights.
    const line = cloned.error
      ?? cloned.lines.find((l) => l.startsWith('fatal: '))
      ?? [...cloned.lines].reverse().find((l) => l.trim() !== '')
      ?? `git exited ${cloned.code}`;
    throw new BuildFailure('clone', `clone of ${shown} failed: ${oneLine(line.replace(/^fatal: /, '').replaceAll(job.cloneUrl, shown))}`);
  }
  const head = await run(log, 'git', ['log', '-1', '--format=%H%n%ae%n%ct'], { cwd: settings.repoDir, env, quiet: true, capture: true });
  const [sha = '', email = '', time = ''] = (head.output ?? '').split('\n');
  if (head.code !== 0 || !/^[0-9a-f]{40,64}$/.test(sha)) throw new BuildFailure('clone', `clone of ${shown} has no readable commit`);
  state.commitSha = sha;
  if (email) state.authorEmail = oneLine(email, 254);
  if (/^\d+$/.test(time)) state.commitTime = Number(time);
  log.line(`cloned ${job.ref} at ${sha}`);
}
