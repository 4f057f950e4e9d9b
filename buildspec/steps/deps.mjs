// The deps step: trusted code fetches what the project declares it depends on, before the build tools run offline.
// Git sources must pass ENOT_ALLOWED_CLONE_URLS and are fetched with git (no hooks, no submodules, the URL's own
// transport only); hex packages come from ENOT_HEX_REPO_URL with their checksums verified. Transitive deps (a dep's
// own rebar.config, erlang.mk Makefile, or a hex release's requirements) are fetched the same way, within a depth, a
// count and a size limit. Sources go where the tool looks: rebar3 `_build/default/lib/<name>` (hex packages in
// `_checkouts/<name>`, the only place rebar3 takes a package from without asking a registry), erlang.mk and enot
// `deps/<name>`. rebar.config.script is evaluated in the offline sandbox; only its answers leave it.
import fs from 'node:fs';
import path from 'node:path';
import { BUILD_LIMIT_DEFAULTS, RUNNER_ENV } from '#core/build-contract-names.mjs';
import { parseAllowedUrls, urlRefusal } from '../allowed-urls.mjs';
import { BuildFailure, childEnv, errorLine, oneLine, redactUrl, requireDone, run, which } from '../common.mjs';
import { DEP_NAME, erlangMkFile, readEnotDeps, readErlangMkDeps, readRebarDeps } from '../dep-lists.mjs';
import { HELPER_ANSWER_PREFIX, HELPER_ESCRIPT } from '../erlang.mjs';
import { isRegularFile } from '../files.mjs';
import { fetchPackage, HEXPM_PUBLIC_KEY, HEXPM_URL, HexError, pickRelease, readRegistry } from '../hex.mjs';
import { prepareForUid, probeSandbox, sandboxedCommand, sandboxRefusal } from '../sandbox.mjs';
import { TarError, unpackEntries } from '../tar-read.mjs';

export const DEPS_DEFAULTS = Object.freeze({ maxDepth: 5, maxCount: 100, maxBytes: 256 * 1024 * 1024 });

/** The limits and sources of this build's dependencies, from the runner's environment. */
export function readDepsPolicy(env = process.env) {
  const int = (name, fallback) => {
    const n = Number.parseInt(env[name] ?? '', 10);
    return Number.isSafeInteger(n) && n > 0 ? n : fallback;
  };
  const repoUrl = (env[RUNNER_ENV.hexRepoUrl] || HEXPM_URL).replace(/\/+$/, '');
  return {
    allowed: parseAllowedUrls(env[RUNNER_ENV.allowedCloneUrls]),
    hex: { repoUrl, publicKey: env[RUNNER_ENV.hexPublicKey] || (repoUrl === HEXPM_URL ? HEXPM_PUBLIC_KEY : '') },
    maxDepth: int(RUNNER_ENV.depsMaxDepth, DEPS_DEFAULTS.maxDepth),
    maxCount: int(RUNNER_ENV.depsMaxCount, DEPS_DEFAULTS.maxCount),
    maxBytes: int(RUNNER_ENV.depsMaxBytes, DEPS_DEFAULTS.maxBytes),
  };
}

/** The tool the compile step will pick (the same rule as steps/compile.mjs): it decides where deps go. */
function projectTool(repo, searchPath) {
  const has = (name) => isRegularFile(path.join(repo, name));
  if (has('enot_config.json') && which('enot', searchPath)) return 'enot';
  if (has('rebar.config') && which('rebar3', searchPath)) return 'rebar3';
  if (['GNUmakefile', 'makefile', 'Makefile'].some(has) && which('make', searchPath)) return 'make';
  return 'erlc';
}

const fail = (message, extra) => new BuildFailure('deps', message, extra);

export async function deps({ settings, log, state }) {
  requireDone(state, ['clone', 'release']);
  const repo = settings.repoDir;
  const policy = readDepsPolicy();
  const env = childEnv(settings, state);
  const tool = projectTool(repo, env.PATH);
  const helper = path.join(settings.stateDir, 'deps-helper.escript');
  fs.mkdirSync(settings.stateDir, { recursive: true });
  fs.writeFileSync(helper, HELPER_ESCRIPT);
  const readConfig = configReader(settings, state, log, helper);

  // The root's own list, from the files of the tool that will build it; rebar.config's is kept for enot_config.json.
  let declared = [];
  const rebar = (tool === 'rebar3' || isRegularFile(path.join(repo, 'rebar.config')) || isRegularFile(path.join(repo, 'rebar.config.script')))
    ? await readRebarDeps(repo, (args, evaluates) => readConfig(repo, args, evaluates)) : null;
  state.rebarDeps = rebar ? rebar.answer.deps : undefined;
  if (tool === 'enot') declared = readEnotDeps(repo) ?? [];
  else if (tool === 'rebar3') declared = rebar?.deps ?? [];
  else if (tool === 'make' && erlangMkFile(repo)) declared = readErlangMkDeps(erlangMkFile(repo));
  else {
    log.line(`deps: none fetched (${tool === 'make' ? 'a Makefile that is not erlang.mk\'s' : 'built with erlc'})`);
    return;
  }
  for (const plugin of rebar?.plugins ?? []) {
    log.line(`deps: plugin ${oneLine(plugin, 200)} is not fetched: declared dependencies are fetched before the build, plugins are not supported yet`);
  }
  state.depPlugins = rebar?.plugins ?? [];
  if (declared.length === 0) {
    log.line('deps: the project declares none');
    return;
  }

  const libDir = tool === 'rebar3' ? ['_build', 'default', 'lib'] : ['deps'];
  const hexDir = tool === 'rebar3' ? ['_checkouts'] : ['deps'];
  const budget = { bytes: 0, count: 0 };
  /** name -> what was fetched for it, so a second declaration of one name is not fetched again. */
  const fetched = new Map();
  const queue = declared.map((dep) => ({ dep, depth: 1, chain: [dep.name] }));
  log.line(`deps: fetching for ${tool} (at most ${policy.maxCount} deps, depth ${policy.maxDepth}, ${policy.maxBytes} bytes)`);
  while (queue.length > 0) {
    const { dep, depth, chain } = queue.shift();
    if (!DEP_NAME.test(dep.name)) throw fail(`dependency ${JSON.stringify(oneLine(dep.name, 100))}: not a valid application name`);
    if (fetched.has(dep.name)) continue;
    if (dep.source === 'unsupported') throw fail(`dependency ${dep.name}: ${dep.why}`);
    if (depth > policy.maxDepth) {
      throw fail(`dependency ${dep.name} is deeper than the limit of ${policy.maxDepth} (${chain.join(' -> ')})`);
    }
    budget.count += 1;
    if (budget.count > policy.maxCount) throw fail(`more than ${policy.maxCount} dependencies (the limit); ${dep.name} is one too many`);
    const target = path.join(placeDir(repo, dep.source === 'hex' ? hexDir : libDir), dep.name);
    if (exists(target)) {
      log.line(`deps: ${dep.name}: ${path.relative(repo, target)} is in the repository; kept as it is`);
      fetched.set(dep.name, dep);
      continue;
    }
    let children = [];
    if (dep.source === 'git') {
      await fetchGit({ settings, state, log, policy }, dep, target);
      budget.bytes += treeSize(target);
      const own = await readRebarDeps(target, (args, evaluates) => readConfig(target, args, evaluates));
      const mk = own ? '' : erlangMkFile(target);
      children = own ? own.deps : mk ? readErlangMkDeps(mk) : [];
    } else {
      children = await fetchHex({ log, policy }, dep, target, policy.maxBytes - budget.bytes, budget);
    }
    if (budget.bytes > policy.maxBytes) {
      throw fail(`dependencies take more than the limit of ${policy.maxBytes} bytes (at ${dep.name})`);
    }
    fetched.set(dep.name, dep);
    for (const child of children) queue.push({ dep: child, depth: depth + 1, chain: [...chain, child.name] });
  }
  state.depsFetched = [...fetched.keys()];
  log.line(`deps: ${fetched.size} in place (${budget.bytes} bytes)`);
}

/**
 * Reads a project's rebar.config deps with the helper: outside the sandbox when it only consults terms, inside it,
 * offline, when it evaluates rebar.config.script (the repository's code). Resolves with the helper's answers.
 */
function configReader(settings, state, log, helper) {
  const escript = path.join(state.otpBin, 'escript');
  const sandboxSettings = { ...settings, limits: settings.limits ?? BUILD_LIMIT_DEFAULTS };
  // The check step tried the sandbox already (state.sandbox); a step run by hand tries it here.
  let probe = state.sandbox ?? null;
  return async (dir, args, evaluates) => {
    const env = childEnv(settings, state);
    const options = { cwd: dir, env, quiet: !evaluates, answerPrefix: HELPER_ANSWER_PREFIX };
    const shown = path.relative(settings.repoDir, args[2] ?? args[1]) || path.basename(args[1]);
    let result;
    if (!evaluates) {
      result = await run(log, escript, [helper, ...args], options);
    } else {
      probe ??= probeSandbox(sandboxSettings);
      if (probe.mode === 'unavailable') throw sandboxRefusal(probe);
      log.line(`$ escript helper.escript deps ${shown}  ${probe.mode === 'bubblewrap' ? '[sandbox, no network]' : '[no sandbox: ENOT_SANDBOX=off]'}`);
      if (probe.mode === 'bubblewrap') {
        // The deps fetched so far (root's files) become the build uid's, as the compile's clone does.
        prepareForUid(sandboxSettings, probe.uid);
        const sandboxed = sandboxedCommand(sandboxSettings, { uid: probe.uid, cwd: dir, readOnly: [helper] }, escript, [helper, ...args]);
        result = await run(log, sandboxed.command, sandboxed.args, options);
      } else {
        result = await run(log, escript, [helper, ...args], options);
      }
    }
    if (result.code !== 0) throw fail(`${evaluates ? 'evaluating' : 'reading'} ${shown} failed: ${errorLine(result.lines)}`);
    return result.answers;
  };
}

/** `<repo>/<parts...>`, made as real directories: a link on the way (the repository's own) is refused. */
function placeDir(repo, parts) {
  let dir = repo;
  for (const part of parts) {
    dir = path.join(dir, part);
    let st = null;
    try {
      st = fs.lstatSync(dir);
    } catch {
      fs.mkdirSync(dir);
      continue;
    }
    if (!st.isDirectory()) throw fail(`refusing to place dependencies: ${path.relative(repo, dir)} in the repository is not a directory`);
  }
  return dir;
}

function exists(p) {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

function treeSize(dir) {
  let total = 0;
  const stack = [dir];
  while (stack.length) {
    const current = stack.pop();
    for (const entry of fs.readdirSync(current, { withFileTypes: true })) {
      const full = path.join(current, entry.name);
      if (entry.isDirectory()) stack.push(full);
      else total += fs.lstatSync(full).size;
    }
  }
  return total;
}

/** Clones a git dependency at its rev into `target`, the URL checked first. */
async function fetchGit({ settings, state, log, policy }, dep, target) {
  const shown = redactUrl(dep.url);
  const refusal = urlRefusal(dep.url, policy.allowed);
  if (refusal) throw fail(`dependency ${dep.name}: ${oneLine(shown, 200)} is not allowed: it ${refusal}`);
  const rev = dep.rev.value;
  if (rev && (!/^[A-Za-z0-9][A-Za-z0-9._+/-]{0,199}$/.test(rev) || rev.includes('..'))) {
    throw fail(`dependency ${dep.name}: refusing the ${dep.rev.kind} ${JSON.stringify(oneLine(rev, 100))}`);
  }
  const scheme = dep.url.slice(0, dep.url.indexOf(':')).toLowerCase();
  const env = childEnv(settings, state, { GIT_TERMINAL_PROMPT: '0', GIT_ALLOW_PROTOCOL: scheme, GIT_CONFIG_NOSYSTEM: '1' });
  // No hooks, no submodules, no credential helper: only the objects of the one rev.
  const safe = ['-c', 'core.hooksPath=/dev/null', '-c', 'submodule.recurse=false', '-c', 'credential.helper=', '-c', 'advice.detachedHead=false'];
  const git = (args, cwd = settings.workDir, quiet = false) => run(log, 'git', [...safe, ...args], { cwd, env, quiet });
  const what = dep.rev.kind === 'default' ? 'its default branch' : `${dep.rev.kind} ${rev}`;
  log.line(`$ git clone --depth 1 ${dep.rev.kind === 'tag' || dep.rev.kind === 'branch' ? `--branch ${rev} ` : ''}-- ${shown}  (dependency ${dep.name})`);
  let result;
  if (dep.rev.kind === 'ref') {
    fs.mkdirSync(target);
    result = await git(['init', '-q'], target, true);
    if (result.code === 0) result = await git(['fetch', '-q', '--depth', '1', '--', dep.url, rev], target);
    if (result.code !== 0) {
      // A server that refuses a bare commit id: the whole history, then that commit.
      fs.rmSync(target, { recursive: true, force: true });
      result = await git(['clone', '-q', '--no-checkout', '--', dep.url, target]);
      if (result.code === 0) result = await git(['checkout', '-q', rev, '--'], target);
    } else {
      result = await git(['checkout', '-q', 'FETCH_HEAD', '--'], target);
    }
  } else {
    const branch = dep.rev.kind === 'default' ? [] : ['--branch', rev];
    result = await git(['clone', '-q', '--depth', '1', ...branch, '--', dep.url, target]);
  }
  if (result.code !== 0) {
    fs.rmSync(target, { recursive: true, force: true });
    const line = result.error ?? result.lines.find((l) => l.startsWith('fatal: ')) ?? errorLine(result.lines);
    throw fail(`dependency ${dep.name}: fetching ${what} of ${shown} failed: ${oneLine(line.replace(/^fatal: /, '').replaceAll(dep.url, shown))}`);
  }
}

/** Fetches a hex package into `target`; resolves with its own requirements (from the registry) as Deps. */
async function fetchHex({ log, policy }, dep, target, bytesLeft, budget) {
  try {
    const registry = await readRegistry(policy.hex, dep.pkg);
    const release = pickRelease(registry.releases, dep.requirement);
    if (!release) {
      throw new HexError(`hex package ${dep.pkg}: no release matches ${JSON.stringify(dep.requirement || 'any')} `
        + `(has ${registry.releases.map((r) => r.version).slice(-10).join(', ') || 'none'})`);
    }
    log.line(`deps: ${dep.name}: hex package ${dep.pkg} ${release.version} from ${policy.hex.repoUrl}`
      + `${registry.signed ? ' (registry signature verified)' : ' (registry signature not checked: no key for this repository)'}`);
    const pkg = await fetchPackage(policy.hex, dep.pkg, release, bytesLeft);
    unpackEntries(pkg.contents, target);
    budget.bytes += pkg.size + pkg.contents.reduce((n, e) => n + (e.data?.length ?? 0), 0);
    log.line(`deps: ${dep.name}: checksums verified (${pkg.size} bytes)`);
    return release.dependencies.filter((d) => !d.optional).map((d) => ({
      name: d.app || d.package, source: 'hex', pkg: d.package, requirement: d.requirement,
    }));
  } catch (err) {
    fs.rmSync(target, { recursive: true, force: true });
    if (err instanceof HexError || err instanceof TarError) throw fail(`dependency ${dep.name}: ${oneLine(err.message, 400)}`);
    throw err;
  }
}
