// The clone step: refuses a malformed job before git sees it, then a shallow clone of the ref, which must be a tag;
// records the commit, its author's email and its time (the package's timestamps).
import fs from 'node:fs';
import { BuildFailure, childEnv, oneLine, redactUrl, run } from '../common.mjs';
import { OTP_RELEASE, parseCloneUrl, refProblem } from '../job-inputs.mjs';
import { RUNNER_ENV } from '#core/build-contract-names.mjs';

const NAME_PATTERN = /^[A-Za-z0-9._-]{1,100}$/;
const BUILD_ID_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * Refuses a job whose values could be mistaken for options or paths, or that git would read otherwise than the
 * service judged them (the rules of ../job-inputs.mjs, the service's own), before anything runs with them.
 * Returns the clone URL in its canonical spelling, the one cloned.
 */
export function validateJob(job) {
  const badRef = refProblem(job.ref);
  if (badRef) {
    throw new BuildFailure('ref', `refusing ref ${JSON.stringify(oneLine(String(job.ref), 120))}: ${badRef}`);
  }
  if (!OTP_RELEASE.test(job.erlVersion ?? '')) {
    throw new BuildFailure(
      'release',
      `refusing OTP release ${JSON.stringify(oneLine(String(job.erlVersion), 60))}: expected a release such as 25, 26.2 or 26.2.5`
        + ' (no leading zeros, at most three parts)',
    );
  }
  const url = parseCloneUrl(job.cloneUrl);
  if (url.problem) {
    const why = url.problem.startsWith('must be an https:// or file:// URL') ? 'only https:// and file:// URLs are built' : url.problem;
    throw new BuildFailure('clone', `refusing clone URL ${JSON.stringify(oneLine(redactUrl(String(job.cloneUrl)), 200))}: ${why}`);
  }
  const [namespace, name, ...rest] = job.fullName.split('/');
  const goodName = (n) => NAME_PATTERN.test(n ?? '') && !/^\.+$/.test(n);
  const consistent = name === job.name && namespace === job.namespace && rest.length === 0;
  if (!goodName(job.name) || !goodName(namespace) || !goodName(name) || !consistent) {
    throw new BuildFailure('internal', `refusing package name ${JSON.stringify(oneLine(job.fullName, 200))}: expected namespace/name`);
  }
  if (!BUILD_ID_PATTERN.test(job.buildId)) throw new BuildFailure('internal', 'refusing the job: ENOT_BUILD_ID is missing or malformed');
  return url.canonical;
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

/** git's reason for a failed command: its first fatal line (what follows is advice about access rights). */
function gitReason(result) {
  return result.error
    ?? result.lines.find((l) => l.startsWith('fatal: '))
    ?? [...result.lines].reverse().find((l) => l.trim() !== '')
    ?? `git exited ${result.code}`;
}

/** The commit `rev` names in the clone, or '' when it names none. */
async function commitOf(log, rev, options) {
  const parsed = await run(log, 'git', ['rev-parse', '-q', '--verify', `${rev}^{commit}`], { ...options, quiet: true, capture: true });
  const sha = (parsed.output ?? '').trim();
  return parsed.code === 0 && /^[0-9a-f]{40,64}$/.test(sha) ? sha : '';
}

/**
 * After `clone --branch <ref>`: HEAD must be the tag. `--branch` takes a branch of that name when there is one, so
 * when the clone holds no such tag at HEAD the tag is fetched by its full name; a remote without it has only a
 * branch of that name, which is refused (a branch moves: build once would freeze whatever it pointed at). A name
 * that is both a branch and a tag is built as the tag.
 */
async function checkOutTag({ log, job, gitConfig, options, shown }) {
  const head = await commitOf(log, 'HEAD', options);
  let tag = await commitOf(log, `refs/tags/${job.ref}`, options);
  if (tag && tag === head) return;
  if (!tag) {
    const fetched = await run(
      log,
      'git',
      [...gitConfig, 'fetch', '--quiet', '--no-tags', '--depth', '1', 'origin', `+refs/tags/${job.ref}:refs/tags/${job.ref}`],
      { ...options, quiet: true },
    );
    if (fetched.code !== 0) {
      if (/couldn't find remote ref/i.test(fetched.lines.join('\n'))) throw new BuildFailure('ref', `ref ${job.ref} is a branch, not a tag`);
      throw new BuildFailure('clone', `fetching tag ${job.ref} from ${shown} failed: ${oneLine(gitReason(fetched).replace(/^fatal: /, ''))}`);
    }
    tag = await commitOf(log, `refs/tags/${job.ref}`, options);
  }
  const checkedOut = await run(log, 'git', [...gitConfig, 'checkout', '--quiet', '--detach', `refs/tags/${job.ref}`], { ...options, quiet: true });
  if (!tag || checkedOut.code !== 0) throw new BuildFailure('clone', `checking out tag ${job.ref} failed: ${oneLine(gitReason(checkedOut))}`);
  log.line(`${job.ref} names a branch and a tag: building the tag`);
}

export async function clone({ settings, log, state }) {
  const { job } = settings;
  const cloneUrl = validateJob(job);
  fs.rmSync(settings.repoDir, { recursive: true, force: true });
  fs.mkdirSync(settings.homeDir, { recursive: true });
  const scheme = new URL(cloneUrl).protocol.slice(0, -1);
  const rewrite = cloneRewrite(process.env[RUNNER_ENV.cloneRewrite], cloneUrl);
  // GIT_ALLOW_PROTOCOL: only the URL's own transport (and a mirror's), also for redirects; file:// needs it since git 2.38.
  const protocols = rewrite && rewrite.scheme !== scheme ? `${scheme}:${rewrite.scheme}` : scheme;
  const env = childEnv(settings, state, { GIT_TERMINAL_PROMPT: '0', GIT_ALLOW_PROTOCOL: protocols });
  const shown = redactUrl(cloneUrl);
  const gitConfig = [
    '-c', 'advice.detachedHead=false',
    ...(rewrite ? ['-c', `url.${rewrite.replacement}.insteadOf=${rewrite.prefix}`] : []),
  ];
  log.line(`$ git clone --depth 1 --branch ${job.ref} -- ${shown}`);
  const cloned = await run(
    log,
    'git',
    [...gitConfig, 'clone', '--depth', '1', '--branch', job.ref, '--', cloneUrl, settings.repoDir],
    { cwd: settings.workDir, env },
  );
  if (cloned.code !== 0) {
    const output = cloned.lines.join('\n');
    if (/Remote branch .* not found|couldn't find remote ref|not found in upstream/i.test(output)) {
      throw new BuildFailure('ref', `unknown ref ${job.ref}: no such tag or branch in ${shown}`);
    }
    throw new BuildFailure('clone', `clone of ${shown} failed: ${oneLine(gitReason(cloned).replace(/^fatal: /, '').replaceAll(cloneUrl, shown))}`);
  }
  await checkOutTag({ log, job, gitConfig, options: { cwd: settings.repoDir, env }, shown });
  const head = await run(log, 'git', ['log', '-1', '--format=%H%n%ae%n%ct'], { cwd: settings.repoDir, env, quiet: true, capture: true });
  const [sha = '', email = '', time = ''] = (head.output ?? '').split('\n');
  if (head.code !== 0 || !/^[0-9a-f]{40,64}$/.test(sha)) throw new BuildFailure('clone', `clone of ${shown} has no readable commit`);
  state.commitSha = sha;
  if (email) state.authorEmail = oneLine(email, 254);
  if (/^\d+$/.test(time)) state.commitTime = Number(time);
  log.line(`cloned ${job.ref} at ${sha}`);
}
