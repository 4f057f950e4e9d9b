// The compile step: enot, rebar3, make or the Erlang compiler, whichever the repository is built with, under
// bubblewrap when it works here; then the application's name and vsn from its .app (made here when the tool made none).
import fs from 'node:fs';
import path from 'node:path';
import { BuildFailure, childEnv, errorLine, isInside, oneLine, requireDone, run, which } from '../common.mjs';
import { HELPER_ANSWER_PREFIX, HELPER_ESCRIPT, parseHelperAnswer } from '../erlang.mjs';
import { isRegularFile, realpathOrEmpty } from '../files.mjs';
import { limitsHit, prepareForUid, probeSandbox, sandboxedCommand, sandboxRefusal } from '../sandbox.mjs';

export async function compile({ settings, log, state }) {
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

  // The check step tried the sandbox; a state written without that (steps run by hand out of an older build) tries now.
  const sandbox = state.sandbox ?? probeSandbox(settings);
  if (sandbox.mode === 'unavailable') throw sandboxRefusal(sandbox);
  const sandboxed = sandbox.mode === 'bubblewrap';
  log.line(sandbox.reason);
  state.sandboxed = sandboxed;
  const readOnly = [helper, state.otpRoot].filter(Boolean);

  /** Runs one tool command, inside the sandbox (never with a network) unless the sandbox is off. */
  const exec = async (command, args, { answerPrefix = '' } = {}) => {
    const shownArgs = args.map((a) => (a === helper ? 'helper.escript' : a));
    const where = sandboxed ? '  [sandbox]' : '  [NOT SANDBOXED: ENOT_SANDBOX=off]';
    log.line(`$ ${path.basename(command)} ${shownArgs.join(' ')}${where}`);
    if (!sandboxed) return run(log, command, args, { cwd: repo, env, answerPrefix });
    // Again before every command: a trusted step in between may have added files the build uid must be able to replace.
    prepareForUid(settings, sandbox.uid);
    const wrapped = sandboxedCommand(settings, { uid: sandbox.uid, cwd: repo, readOnly }, command, args);
    const result = await run(log, wrapped.command, wrapped.args, { cwd: repo, env, answerPrefix });
    if (result.code !== 0) for (const hit of limitsHit(settings, result)) log.line(hit);
    return result;
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

  // enot builds its own projects, offline like every tool (the deps step put their deps in deps/); when it fails,
  // the project's other build files get their turn.
  let built = false;
  /** The plain build's .app (name, vsn, text), from the compile's own helper run. */
  let plainApp = null;
  if (enot && has('enot_config.json')) {
    const result = await exec(enot, ['package']);
    if (result.code === 0 && hasBeams(path.join(repo, 'ebin'))) {
      tool = 'enot';
      built = true;
    } else {
      log.line(`enot package did not build the project (exit ${result.code}); trying ${tool}`);
    }
  }

  // The deps step fetched every declared dependency (state.rebarDeps is its reading of rebar.config); the tools run
  // with no network, so one that still tries to fetch (a rebar3 plugin) fails here, and says what it wanted.
  if (!built && tool === 'rebar3') {
    const result = await exec(rebar3, ['compile']);
    if (result.code !== 0) throw fetchAttempt(result) ?? failed('rebar3', result);
  } else if (!built && tool === 'make') {
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

/**
 * The failure of a rebar3 run that tried to fetch something offline (a plugin, a dependency nobody declared where
 * the deps step reads), naming it; null when its output shows no such attempt.
 */
function fetchAttempt(result) {
  const text = result.lines.map((l) => oneLine(l, 1000)).join('\n');
  const what = /Fetching (\S+)/.exec(text)?.[1] ?? /Failed to update package (\S+)/.exec(text)?.[1]
    ?? /Package not found in any repo: (\S+(?: \S+)?)/.exec(text)?.[1] ?? /Errors loading plugin (\S+)/.exec(text)?.[1];
  if (!what) return null;
  return new BuildFailure(
    'compile',
    `rebar3 tried to fetch ${what}; declared dependencies are fetched before the build, plugins are not supported yet`,
    { tool: 'rebar3' },
  );
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
