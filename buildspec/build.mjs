#!/usr/bin/env node
// The build's steps: check, clone, release, compile, package, publish, as buildspec.yml calls them, several to a
// process (`node build.mjs check clone release`: one node start per phase, not per step) or one at a time (`all`
// runs them all, publish included after a failure, for a person at a terminal). Steps hand over through files under
// ENOT_WORK_DIR whether or not they share a process; a step that fails records why and exits 0, later steps do
// nothing, and publish always writes result.json. A non-zero exit means the builder itself broke. The contract (env
// in, files out) is functions/core/build-contract.ts.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BuildFailure, BuildLog, childEnv, echo, errorLine, isInside, loadState, oneLine, readSettings, run, saveState,
  stopChildren, which,
} from './common.mjs';
import { HELPER_ANSWER_PREFIX, HELPER_ESCRIPT, PROBE_EVAL, parseHelperAnswer, pickRelease, readOtpVersion } from './erlang.mjs';
import { bwrapArgs, chooseSandbox } from './sandbox.mjs';
import { readNoFollow, writeTar } from './tar.mjs';

export const STEP_ORDER = ['check', 'clone', 'release', 'compile', 'package', 'publish'];

const REF_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$/;
const ERL_VERSION_PATTERN = /^[0-9]+(\.[0-9]+){0,3}$/;
const NAME_PATTERN = /^[A-Za-z0-9._-]{1,100}$/;
const BUILD_ID_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;
/** What a package may hold; past it the package step fails rather than filling the disk or the bucket. */
const MAX_PACKAGE_BYTES = 512 * 1024 * 1024;
const MAX_PACKAGE_FILES = 50_000;
/** Config files read from the repository (enot_config.json, Makefile) beyond this size are ignored. */
const MAX_CONFIG_BYTES = 1024 * 1024;
/** The directories a package carries besides ebin/ (see the .ep format in the legacy API). */
const PACKAGE_DIRS = ['priv', 'include', 'src', 'c_src'];

const STEPS = { check, clone, release, compile, package: packageStep, publish };

// ---- check -------------------------------------------------------------------------------------------------------

/** Opens the log with what is being built and checks the builder has what the steps need. */
async function check({ settings, log }) {
  const { job } = settings;
  fs.mkdirSync(settings.homeDir, { recursive: true });
  log.line(`enot-builder: build ${job.buildId} of ${job.fullName} ${job.ref} on OTP ${job.erlVersion}`);
  log.line(`node ${process.version}; time limit: ${job.timeoutS ? `${job.timeoutS} s` : 'unset'}; log limit: ${settings.logMaxBytes} bytes`);
  if (!which('git', settings.basePath)) throw new BuildFailure('internal', 'git is not installed on this builder');
}

// ---- clone -------------------------------------------------------------------------------------------------------

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

/** Clone URLs may carry credentials (https://user:token@host/...); they never reach the log or a message. */
function redactUrl(value) {
  try {
    const url = new URL(value);
    if (url.username || url.password) {
      url.username = '';
      url.password = '';
    }
    return url.toString();
  } catch {
    return value;
  }
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

async function clone({ settings, log, state }) {
  const { job } = settings;
  validateJob(job);
  fs.rmSync(settings.repoDir, { recursive: true, force: true });
  fs.mkdirSync(settings.homeDir, { recursive: true });
  const scheme = new URL(job.cloneUrl).protocol.slice(0, -1);
  const rewrite = cloneRewrite(process.env.ENOT_CLONE_REWRITE, job.cloneUrl);
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

// ---- release -----------------------------------------------------------------------------------------------------

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

async function release({ settings, log, state }) {
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

// ---- compile -----------------------------------------------------------------------------------------------------

async function compile({ settings, log, state }) {
  requireDone(state, ['clone', 'release']);
  const repo = settings.repoDir;
  const env = childEnv(settings, state, { REBAR_COLOR: 'none' });
  const helper = writeHelper(settings);
  const appSrc = findAppSrc(repo, settings.job.name);
  const srcName = appSrc ? path.basename(appSrc, '.app.src') : '';
  const appName = /^[A-Za-z][A-Za-z0-9_@]*$/.test(srcName) ? srcName : fallbackAppName(settings.job.name);

  // -include_lib("<app>/include/...") of the project itself resolves through a directory named after the app.
  const libs = path.join(settings.homeDir, '.enot-libs');
  fs.rmSync(libs, { recursive: true, force: true });
  fs.mkdirSync(libs, { recursive: true });
  fs.symlinkSync(repo, path.join(libs, appName));

  const bindings = { writable: [repo, settings.homeDir], readOnly: [helper, state.otpRoot], cwd: repo };
  const sandbox = chooseSandbox(settings, bindings, env);
  log.line(sandbox.reason);
  state.sandboxed = Boolean(sandbox.bwrap);

  /** Runs one tool command, inside the sandbox when there is one; network only when fetching dependencies. */
  const exec = (command, args, { network = false, answerPrefix = '' } = {}) => {
    const shownArgs = args.map((a) => (a === helper ? 'helper.escript' : a));
    const where = sandbox.bwrap ? (network ? '  [sandbox, network on to fetch]' : '  [sandbox]') : '';
    log.line(`$ ${path.basename(command)} ${shownArgs.join(' ')}${where}`);
    if (!sandbox.bwrap) return run(log, command, args, { cwd: repo, env, answerPrefix });
    return run(log, sandbox.bwrap, [...bwrapArgs(bindings, network), command, ...args], { cwd: repo, env, answerPrefix });
  };
  const failed = (tool, result, what = 'compile failed') => {
    const how = result.signal ? `killed by ${result.signal}` : `exited ${result.code}`;
    return new BuildFailure('compile', `${what} (${tool} ${how}): ${result.error ? oneLine(result.error) : errorLine(result.lines)}`, { tool });
  };

  const has = (name) => isRegularFile(path.join(repo, name));
  const makefile = ['GNUmakefile', 'makefile', 'Makefile'].find(has);
  const enot = which('enot', env.PATH);
  const rebar3 = which('rebar3', env.PATH);
  const make = which('make', env.PATH);
  let tool = 'erlc';
  if (has('rebar.config') && rebar3) tool = 'rebar3';
  else if (makefile && make) tool = 'make';
  if (has('rebar.config') && !rebar3) log.line('rebar.config found but rebar3 is not installed here');

  // enot builds its own projects (and fetches their deps itself, so it gets the network); when it fails, the
  // project's other build files get their turn.
  let built = false;
  /** The plain build's .app (name, vsn, text), from the compile's own helper run. */
  let plainApp = null;
  if (enot && has('enot_config.json')) {
    const result = await exec(enot, ['package'], { network: true });
    if (result.code === 0 && hasBeams(path.join(repo, 'ebin'))) {
      tool = 'enot';
      built = true;
    } else {
      log.line(`enot package did not build the project (exit ${result.code}); trying ${tool}`);
    }
  }

  const rebarDeps = has('rebar.config') ? await readRebarDeps(settings, state, helper, log) : null;
  state.rebarDeps = rebarDeps ?? undefined;
  if (!built && tool === 'rebar3') {
    if (rebarDeps === null || rebarDeps.length > 0) {
      const fetched = await exec(rebar3, ['get-deps'], { network: true });
      if (fetched.code !== 0) throw failed('rebar3', fetched, 'fetching dependencies failed');
    }
    const result = await exec(rebar3, ['compile']);
    if (result.code !== 0) throw failed('rebar3', result);
  } else if (!built && tool === 'make') {
    if (/erlang\.mk/.test(readSmallFile(path.join(repo, makefile)))) {
      const fetched = await exec(make, ['deps'], { network: true });
      if (fetched.code !== 0) throw failed('make', fetched, 'fetching dependencies failed');
    }
    const result = await exec(make, []);
    if (result.code !== 0) throw failed('make', result);
  } else if (!built) {
    // One VM compiles and then answers the .app's name, vsn and text, written below by this process. That VM ran the
    // repository's code (parse transforms), so the answers are the package's own word about itself, like its
    // .app.src: the package's metadata and nothing more, the name checked before it names the file.
    const escript = path.join(state.otpBin, 'escript');
    const args = [
      helper, 'build', 'src', 'ebin', 'include', path.join(libs, appName, 'ebin'),
      appSrc ? path.join(repo, appSrc) : '', settings.job.ref, appName,
    ];
    const result = await exec(escript, args, { answerPrefix: HELPER_ANSWER_PREFIX });
    if (result.code === 3) throw new BuildFailure('compile', `reading the application file failed: ${errorLine(result.lines)}`, { tool });
    if (result.code !== 0) throw failed('erlc', result);
    plainApp = parseHelperAnswer(result.answers);
    if (typeof plainApp.app !== 'string' || plainApp.app === '') {
      throw new BuildFailure('compile', 'the Erlang compiler ran but gave no application file', { tool });
    }
  }

  const ebin = findEbin(repo, tool, appName, settings.job.name);
  if (!ebin || !hasBeams(ebin)) {
    const where = ebin ? path.relative(repo, ebin) : tool === 'rebar3' ? `_build/default/lib/${appName}/ebin` : 'ebin';
    throw new BuildFailure('compile', `${tool} built no .beam files (looked in ${where})`, { tool });
  }
  const appFiles = fs.readdirSync(ebin).filter((f) => f.endsWith('.app') && isRegularFile(path.join(ebin, f))).sort();
  let info;
  if (tool === 'erlc' || appFiles.length === 0) {
    // The plain build makes ebin/<app>.app itself: modules filled in, a non-string vsn ({vsn, git}) set to the ref.
    // For erlc the compile's helper run answered it already; otherwise the helper makes it now, outside the sandbox.
    let text;
    if (plainApp) {
      info = plainApp;
      text = Buffer.from(plainApp.app, 'utf8');
    } else {
      const source = appSrc ? path.join(repo, appSrc) : appFiles.length ? path.join(ebin, appFiles[0]) : '';
      const generated = path.join(settings.stateDir, 'generated.app');
      fs.rmSync(generated, { force: true });
      info = await runHelper(settings, state, helper, ['app', source, ebin, settings.job.ref, appName, generated], log);
      text = fs.readFileSync(generated);
    }
    if (!/^[A-Za-z][A-Za-z0-9_@]*$/.test(info.name ?? '')) {
      throw new BuildFailure('compile', `the application name ${JSON.stringify(oneLine(info.name ?? '', 80))} is not a plain atom`, { tool });
    }
    // Written here rather than by the helper (which, for erlc, ran in the sandbox with the repository's code): whatever
    // the compile left at that path (a link, say) is replaced.
    const target = path.join(ebin, `${info.name}.app`);
    fs.rmSync(target, { force: true, recursive: true });
    fs.writeFileSync(target, text, { flag: 'wx' });
  } else {
    const appFile = appFiles.includes(`${appName}.app`) ? `${appName}.app` : appFiles[0];
    info = await runHelper(settings, state, helper, ['appinfo', path.join(ebin, appFile)], log);
  }
  state.tool = tool;
  state.ebinDir = path.relative(repo, ebin);
  state.appName = info.name;
  state.appVsn = info.vsn || settings.job.ref;
  log.line(`built ${state.appName} ${state.appVsn} with ${tool}`);
}

function writeHelper(settings) {
  fs.mkdirSync(settings.stateDir, { recursive: true });
  const file = path.join(settings.stateDir, 'helper.escript');
  fs.writeFileSync(file, HELPER_ESCRIPT);
  return file;
}

/**
 * Runs the helper outside the sandbox: it only reads terms (file:consult evaluates nothing) from regular files of
 * the clone, and writes only into the state directory.
 */
async function runHelper(settings, state, helper, args, log) {
  const result = await run(log, path.join(state.otpBin, 'escript'), [helper, ...args], {
    cwd: settings.repoDir, env: childEnv(settings, state), quiet: true, capture: true,
  });
  if (result.code !== 0) {
    throw new BuildFailure('compile', `reading the application file failed: ${errorLine(result.lines)}`);
  }
  return parseHelperAnswer(result.output ?? '');
}

/** rebar.config's deps, or null when they cannot be read (then fetching is attempted anyway). */
async function readRebarDeps(settings, state, helper, log) {
  const result = await run(log, path.join(state.otpBin, 'escript'), [helper, 'deps', path.join(settings.repoDir, 'rebar.config')], {
    cwd: settings.repoDir, env: childEnv(settings, state), quiet: true, capture: true,
  });
  return result.code === 0 ? parseHelperAnswer(result.output ?? '').deps : null;
}

/** src/<name>.app.src when it exists, else the only (or first) src/*.app.src; '' when there is none. */
function findAppSrc(repo, name) {
  let files = [];
  try {
    files = fs.readdirSync(path.join(repo, 'src')).filter((f) => f.endsWith('.app.src') && isRegularFile(path.join(repo, 'src', f)));
  } catch {
    return '';
  }
  files.sort();
  const chosen = files.includes(`${name}.app.src`) ? `${name}.app.src` : files[0];
  return chosen ? path.join('src', chosen) : '';
}

/** An application name for a project without an .app.src: the repository name as an Erlang atom. */
function fallbackAppName(name) {
  const base = name.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  return /^[a-z]/.test(base) ? base : `app_${base}`;
}

function findEbin(repo, tool, appName, repoName) {
  const candidates = tool === 'rebar3'
    ? [appName, repoName].map((n) => path.join(repo, '_build', 'default', 'lib', n, 'ebin'))
    : [path.join(repo, 'ebin')];
  const repoReal = fs.realpathSync(repo);
  for (const dir of candidates) {
    const real = realpathOrEmpty(dir);
    if (real && isInside(repoReal, real) && fs.statSync(real).isDirectory()) return dir;
  }
  return '';
}

function hasBeams(dir) {
  try {
    return fs.readdirSync(dir).some((f) => f.endsWith('.beam'));
  } catch {
    return false;
  }
}

// ---- package -----------------------------------------------------------------------------------------------------

async function packageStep({ settings, log, state }) {
  requireDone(state, ['compile']);
  const repo = settings.repoDir;
  const repoReal = fs.realpathSync(repo);
  const entries = [];
  const budget = { bytes: 0, files: 0 };
  const seen = new Set();
  collectDir(repoReal, path.join(repo, state.ebinDir), 'ebin', entries, budget, seen, log);
  const included = ['ebin'];
  for (const dir of PACKAGE_DIRS) {
    const full = path.join(repo, dir);
    if (!fs.existsSync(full)) continue;
    if (collectDir(repoReal, full, dir, entries, budget, seen, log)) included.push(dir);
  }
  const names = entries.map((e) => e.name);
  if (!names.some((n) => /^ebin\/[^/]+\.beam$/.test(n)) || !names.some((n) => /^ebin\/[^/]+\.app$/.test(n))) {
    throw new BuildFailure('package', 'the package would have no ebin/*.beam or no ebin/*.app; nothing to ship');
  }
  const config = enotConfig(settings, state, included.includes('src'), log);
  entries.push({ name: 'enot_config.json', type: 'file', data: Buffer.from(`${JSON.stringify(config, null, 2)}\n`) });
  const out = path.join(settings.outDir, 'package.ep');
  const { size, sha256 } = writeTar(out, entries, { mtime: state.commitTime ?? 0 });
  state.artifactSize = size;
  state.artifactSha256 = sha256;
  log.line(`package.ep: ${included.join('/, ')}/ and enot_config.json; ${entries.length} entries, ${size} bytes, sha256 ${sha256}`);
}

/**
 * Adds `dir` (and what it holds) under `prefix`. Links are followed only while they stay inside the repository, and
 * only directories and regular files are taken: the compile ran the repository's code, which may have left traps.
 * @returns {boolean} whether the directory was added
 */
function collectDir(repoReal, dir, prefix, entries, budget, seen, log) {
  const real = realpathOrEmpty(dir);
  if (!real || !isInside(repoReal, real)) {
    log.line(`left out ${prefix}/: it points outside the repository`);
    return false;
  }
  if (!fs.statSync(real).isDirectory() || seen.has(real)) return false;
  seen.add(real);
  entries.push({ name: `${prefix}/`, type: 'dir' });
  for (const name of fs.readdirSync(real).sort()) {
    const rel = `${prefix}/${name}`;
    let source = path.join(real, name);
    let st;
    try {
      st = fs.lstatSync(source);
    } catch {
      // A name that does not survive the round trip through a string (not UTF-8), or one gone meanwhile.
      log.line(`left out ${oneLine(rel, 200)}: unreadable name or gone`);
      continue;
    }
    if (st.isSymbolicLink()) {
      const target = realpathOrEmpty(source);
      if (!target || !isInside(repoReal, target)) {
        log.line(`left out ${rel}: a link to outside the repository`);
        continue;
      }
      source = target;
      st = fs.statSync(target);
    }
    if (st.isDirectory()) {
      collectDir(repoReal, source, rel, entries, budget, seen, log);
    } else if (st.isFile()) {
      budget.bytes += st.size;
      budget.files += 1;
      if (budget.bytes > MAX_PACKAGE_BYTES || budget.files > MAX_PACKAGE_FILES) {
        throw new BuildFailure('package', `the package is too large (more than ${MAX_PACKAGE_BYTES} bytes or ${MAX_PACKAGE_FILES} files)`);
      }
      entries.push({ name: rel, type: 'file', source, executable: (st.mode & 0o111) !== 0 });
    } else {
      log.line(`left out ${rel}: not a regular file`);
    }
  }
  return true;
}

/**
 * enot_config.json as the enot client needs it: the repository's own (when it has one) completed, else generated.
 * What describes this very package (name, fullname, tag, url, erlang, with_source) is always set from the build;
 * app_vsn and deps are kept when the repository sets them.
 */
function enotConfig(settings, state, withSource, log) {
  const { job } = settings;
  let base = {};
  const file = path.join(settings.repoDir, 'enot_config.json');
  const text = readSmallFile(file);
  if (text) {
    try {
      const parsed = JSON.parse(text);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) base = parsed;
      else log.line('the repository\'s enot_config.json is not a JSON object; generating one');
    } catch {
      log.line('the repository\'s enot_config.json is not valid JSON; generating one');
    }
  }
  const deps = Array.isArray(base.deps) ? base.deps : detectDeps(settings, state, log);
  return {
    ...base,
    name: job.name,
    fullname: job.fullName,
    tag: job.ref,
    url: redactUrl(job.cloneUrl),
    app_vsn: typeof base.app_vsn === 'string' && base.app_vsn !== '' ? base.app_vsn : state.appVsn,
    deps,
    erlang: [state.otpMajor],
    with_source: withSource,
  };
}

/** Dependencies in enot's form ({name, url, tag|branch} or {name, tag} for hex), from rebar.config or erlang.mk. */
function detectDeps(settings, state, log) {
  const repo = settings.repoDir;
  const deps = [];
  const leftOut = (name, why) => log.line(`dependency ${oneLine(name, 80)} left out of enot_config.json: ${why}`);
  if (state.rebarDeps) {
    for (const d of state.rebarDeps) {
      if (d.kind === 'git-tag') deps.push({ name: d.name, url: d.url, tag: d.rev });
      else if (d.kind === 'git-branch') deps.push({ name: d.name, url: d.url, branch: d.rev });
      else if (d.kind === 'hex' && /^\d+(\.\d+)*([-+][0-9A-Za-z.-]+)?$/.test(d.rev)) deps.push({ name: d.name, tag: d.rev });
      else leftOut(d.name, d.kind === 'hex' ? 'a hex package without an exact version' : `a ${d.kind} dependency enot cannot name`);
    }
    return deps;
  }
  const makefile = ['GNUmakefile', 'makefile', 'Makefile'].map((f) => path.join(repo, f)).find(isRegularFile);
  const text = makefile ? readSmallFile(makefile).replace(/\\\n/g, ' ') : '';
  if (!/erlang\.mk/.test(text)) return deps;
  const names = [];
  const specs = new Map();
  for (const line of text.split('\n')) {
    const list = /^\s*DEPS\s*(?:\+|:|\?)?=\s*(.*)$/.exec(line);
    if (list) names.push(...list[1].split(/\s+/).filter(Boolean));
    const spec = /^\s*dep_([A-Za-z0-9_]+)\s*(?::|\?)?=\s*(\S+)\s+(\S+)(?:\s+(\S+))?/.exec(line);
    if (spec) specs.set(spec[1], { method: spec[2], where: spec[3], rev: spec[4] ?? '' });
  }
  for (const name of names) {
    const spec = specs.get(name);
    if (spec?.method === 'git' && spec.rev) deps.push({ name, url: spec.where, tag: spec.rev });
    else if (spec?.method === 'hex') deps.push({ name, tag: spec.where });
    else leftOut(name, 'not a git dependency with a tag');
  }
  return deps;
}

// ---- publish -----------------------------------------------------------------------------------------------------

async function publish({ settings, log, state }) {
  const { job } = settings;
  const artifact = path.join(settings.outDir, 'package.ep');
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
  if (settings.uploadUrls.result) await upload(settings, packaged);
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

function writeResult(settings, result) {
  const clean = Object.fromEntries(Object.entries(result).filter(([, v]) => v !== undefined));
  fs.mkdirSync(settings.outDir, { recursive: true });
  const file = path.join(settings.outDir, 'result.json');
  fs.writeFileSync(`${file}.tmp`, `${JSON.stringify(clean, null, 2)}\n`);
  fs.renameSync(`${file}.tmp`, file);
}

/** On CodeBuild: BUILD_OUTPUT to the keys of buildBlobKeys (functions/core/build-contract.ts), result last. */
/**
 * On CodeBuild: PUTs each output that exists to the presigned URL the dispatcher made for exactly its key
 * (functions/core/build-contract.ts, UPLOAD_URL_ENV), with the Content-Type the URL was signed with. The
 * build's role has no S3 write, so nothing a build runs can touch another build's files. The result goes
 * last, so whoever reads it finds the package already there.
 */
async function upload(settings, packaged) {
  const { uploadUrls } = settings;
  const files = [
    ...(packaged ? [['package.ep', uploadUrls.artifact, 'application/x-tar']] : []),
    ['build.log', uploadUrls.log, 'text/plain; charset=utf-8'],
    ['result.json', uploadUrls.result, 'application/json'],
  ];
  for (const [file, url, type] of files) {
    if (!url) throw new Error(`cannot upload ${file}: its presigned URL is missing`);
    await putFile(path.join(settings.outDir, file), url, type);
  }
}

/** One PUT of a whole file; a refused one is the builder's failure (the build's own status says so). */
async function putFile(file, url, contentType) {
  const body = fs.readFileSync(file);
  let response;
  try {
    response = await fetch(url, { method: 'PUT', headers: { 'content-type': contentType }, body });
  } catch (error) {
    throw new Error(`uploading ${path.basename(file)} failed: ${error instanceof Error ? error.message : String(error)}`);
  }
  await response.arrayBuffer();
  // The URL carries a signature: only its path goes into a message.
  if (!response.ok) throw new Error(`uploading ${path.basename(file)} to ${new URL(url).pathname} failed (HTTP ${response.status})`);
  echo(`uploaded ${path.basename(file)} (${body.length} bytes)\n`);
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

// ---- ENOT_TASK=publish-erts ----------------------------------------------------------------------------------------

/**
 * The other task of the same project: uploads the ERTS tarballs the image packed (erts/ beside these scripts,
 * described by erts/index.jsonl) to erts/<release>/erts-<vsn>.tar, and the index, each line with its key, to
 * erts/index.jsonl for whatever registers them. Not a package build: no log, no result.json.
 */
async function publishErts(settings) {
  const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'erts');
  if (!settings.uploadBucket) throw new Error('ENOT_UPLOAD_BUCKET is not set: nowhere to publish the ERTS tarballs');
  const lines = fs.readFileSync(path.join(dir, 'index.jsonl'), 'utf8').split('\n').filter((l) => l.trim() !== '');
  const published = [];
  for (const line of lines) {
    const entry = JSON.parse(line);
    if (!/^\d+$/.test(entry.release ?? '') || !/^[0-9.]+$/.test(entry.ertsVersion ?? '')) {
      throw new Error(`erts/index.jsonl has a malformed line: ${oneLine(line, 200)}`);
    }
    const key = `erts/${entry.release}/erts-${entry.ertsVersion}.tar`;
    await awsCopy(settings, path.join(dir, `${entry.release}.tar`), key, 'application/x-tar');
    echo(`published OTP ${entry.otpVersion ?? entry.release} ERTS ${entry.ertsVersion} to ${key}\n`);
    published.push(JSON.stringify({ ...entry, key }));
  }
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'enot-erts-'));
  try {
    const index = path.join(scratch, 'index.jsonl');
    fs.writeFileSync(index, `${published.join('\n')}\n`);
    await awsCopy(settings, index, 'erts/index.jsonl', 'application/x-ndjson');
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

// ---- running a step ----------------------------------------------------------------------------------------------

function requireDone(state, steps) {
  const missing = steps.filter((s) => !state.done.includes(s));
  if (missing.length) throw new Error(`step run out of order: ${missing.join(', ')} has not run`);
}

/** Runs one step in this process. @returns {Promise<number>} the exit code */
export async function runStep(name) {
  const settings = readSettings();
  const task = process.env.ENOT_TASK || 'build';
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
    process.stderr.write(`unknown ENOT_TASK ${JSON.stringify(oneLine(task, 60))}: expected build or publish-erts\n`);
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
    } else if (!fs.existsSync(path.join(settings.outDir, 'result.json'))) {
      writeResult(settings, { buildId: settings.job.buildId, status: 'failed', message, failure: 'internal' });
    }
    return 1;
  }
}

// ---- small helpers -----------------------------------------------------------------------------------------------

function isRegularFile(file) {
  try {
    return fs.lstatSync(file).isFile();
  } catch {
    return false;
  }
}

function isExecutable(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function realpathOrEmpty(p) {
  try {
    return fs.realpathSync(p);
  } catch {
    return '';
  }
}

/** A repository file's text when it is a regular file (not a link) of a sane size; '' otherwise. */
function readSmallFile(file) {
  try {
    const st = fs.lstatSync(file);
    if (!st.isFile() || st.size > MAX_CONFIG_BYTES) return '';
    return readNoFollow(file).toString('utf8');
  } catch {
    return '';
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
