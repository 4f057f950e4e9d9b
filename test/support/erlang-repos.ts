// Real git repositories of small Erlang projects for build tests, each in its own temp dir, tagged, cloneable
// through a file:// URL; and readers for the .ep packages built from them.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { devNull, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Every fixture commit's author (and committer), so tests can check result.json's authorEmail. */
export const FIXTURE_AUTHOR_EMAIL = 'dev@example.com';
export const FIXTURE_NAMESPACE = 'example';
const FIXTURE_DATE = '2024-03-04T05:06:07Z';

export interface ErlangRepo {
  /** The repository's working tree. */
  dir: string;
  /** file:// URL of `dir`. */
  cloneUrl: string;
  /** `example/<name>`. */
  fullName: string;
  namespace: string;
  name: string;
  /** The tag the fixture commit carries. */
  tag: string;
  cleanup(): Promise<void>;
}

export interface RepoOptions {
  /** Repository and application name; a valid Erlang atom. */
  name?: string;
  /** Default "1.0.0". */
  tag?: string;
}

const gitEnv = (home: string): NodeJS.ProcessEnv => ({
  PATH: process.env.PATH,
  HOME: home,
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: devNull,
  GIT_AUTHOR_NAME: 'Enot Dev',
  GIT_AUTHOR_EMAIL: FIXTURE_AUTHOR_EMAIL,
  GIT_AUTHOR_DATE: FIXTURE_DATE,
  GIT_COMMITTER_NAME: 'Enot Dev',
  GIT_COMMITTER_EMAIL: FIXTURE_AUTHOR_EMAIL,
  GIT_COMMITTER_DATE: FIXTURE_DATE,
});

/** A tagged git repository holding `files` (paths relative to its root). */
export async function gitRepo(name: string, tag: string, files: Record<string, string>): Promise<ErlangRepo> {
  const root = await mkdtemp(join(tmpdir(), 'enot-repo-'));
  const dir = join(root, name);
  try {
    for (const [path, content] of Object.entries(files)) {
      await mkdir(dirname(join(dir, path)), { recursive: true });
      await writeFile(join(dir, path), content);
    }
    const env = gitEnv(root);
    const git = (...args: string[]) =>
      run('git', ['-c', 'init.defaultBranch=main', '-c', 'commit.gpgSign=false', '-c', 'tag.gpgSign=false', ...args], {
        cwd: dir,
        env,
      });
    await git('init', '-q');
    await git('add', '-A');
    await git('commit', '-q', '-m', `${name} ${tag}`);
    await git('tag', '-a', '-m', `release ${tag}`, tag);
  } catch (err) {
    await rm(root, { recursive: true, force: true });
    throw err;
  }
  return {
    dir,
    cloneUrl: pathToFileURL(dir).href,
    fullName: `${FIXTURE_NAMESPACE}/${name}`,
    namespace: FIXTURE_NAMESPACE,
    name,
    tag,
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}

const appSrc = (name: string, vsn = 'git') =>
  `{application, ${name},\n [{description, "${name} test library"},\n  {vsn, ${vsn === 'git' ? 'git' : JSON.stringify(vsn)}},\n` +
  `  {registered, []},\n  {applications, [kernel, stdlib]},\n  {env, []}]}.\n`;

const module = (name: string, body = 'hello() -> world.') => `-module(${name}).\n-export([hello/0]).\n\n${body}\n`;

/** src/<name>.erl, src/<name>_util.erl and src/<name>.app.src with {vsn, git}: built with plain erlc. */
export function plainLibRepo(opts: RepoOptions = {}): Promise<ErlangRepo> {
  const name = opts.name ?? 'plain_lib';
  return gitRepo(name, opts.tag ?? '1.0.0', {
    [`src/${name}.app.src`]: appSrc(name),
    [`src/${name}.erl`]: module(name, `hello() -> ${name}_util:world().`),
    [`src/${name}_util.erl`]: `-module(${name}_util).\n-export([world/0]).\n\nworld() -> world.\n`,
    'README.md': `# ${name}\n`,
  });
}

/** A rebar3 project (rebar.config, no deps) whose .app.src says {vsn, git}. */
export function rebar3LibRepo(opts: RepoOptions = {}): Promise<ErlangRepo> {
  const name = opts.name ?? 'rebar_lib';
  return gitRepo(name, opts.tag ?? '1.0.0', {
    'rebar.config': '{erl_opts, [debug_info]}.\n{deps, []}.\n',
    [`src/${name}.app.src`]: appSrc(name),
    [`src/${name}.erl`]: module(name),
  });
}

/**
 * include/<name>.hrl (by -include) and include/<name>_lib.hrl (by -include_lib("<name>/include/..."), which needs
 * the project visible as an application), and priv/<name>.txt; built with plain erlc.
 */
export function includePrivRepo(opts: RepoOptions = {}): Promise<ErlangRepo> {
  const name = opts.name ?? 'inc_lib';
  return gitRepo(name, opts.tag ?? '1.0.0', {
    [`src/${name}.app.src`]: appSrc(name),
    [`src/${name}.erl`]:
      `-module(${name}).\n-include("${name}.hrl").\n-include_lib("${name}/include/${name}_lib.hrl").\n` +
      `-export([hello/0, data/0]).\n\nhello() -> {?GREETING, ?LIB_GREETING}.\n` +
      `data() -> file:read_file(filename:join(code:priv_dir(${name}), "${name}.txt")).\n`,
    [`include/${name}.hrl`]: '-define(GREETING, "hello").\n',
    [`include/${name}_lib.hrl`]: '-define(LIB_GREETING, "hello from include_lib").\n',
    [`priv/${name}.txt`]: 'some data\n',
  });
}

/** src/<name>.erl has a syntax error on line 4. */
export function brokenRepo(opts: RepoOptions = {}): Promise<ErlangRepo> {
  const name = opts.name ?? 'broken_lib';
  return gitRepo(name, opts.tag ?? '1.0.0', {
    [`src/${name}.app.src`]: appSrc(name, '1.0.0'),
    [`src/${name}.erl`]: `-module(${name}).\n-export([hello/0]).\n\nhello( -> world.\n`,
  });
}

/**
 * A Makefile project whose `make` sleeps far longer than any test waits, and leaves a background child that a kill of
 * only the direct child would miss.
 */
export function slowRepo(opts: RepoOptions = {}): Promise<ErlangRepo> {
  const name = opts.name ?? 'slow_lib';
  return gitRepo(name, opts.tag ?? '1.0.0', {
    Makefile: 'all:\n\t(sleep 300 &) ; sleep 300\n',
    [`src/${name}.app.src`]: appSrc(name, '1.0.0'),
    [`src/${name}.erl`]: module(name),
  });
}

/**
 * A Makefile project built with erlc by its own Makefile (so ebin/ has no .app: the build generates it). `recipe`
 * adds lines to the `all` target (tab added).
 */
export function makeRepo(opts: RepoOptions & { recipe?: string[] } = {}): Promise<ErlangRepo> {
  const name = opts.name ?? 'make_lib';
  const lines = ['mkdir -p ebin', 'erlc -o ebin src/*.erl', ...(opts.recipe ?? [])];
  return gitRepo(name, opts.tag ?? '1.0.0', {
    Makefile: `all:\n${lines.map((l) => `\t${l}\n`).join('')}`,
    [`src/${name}.app.src`]: appSrc(name),
    [`src/${name}.erl`]: module(name),
  });
}

/**
 * A Makefile in erlang.mk's style declaring two deps (a git one with a tag, a hex one), with a `deps` target that
 * fetches nothing, so the build can read the deps without a network.
 */
export function erlangMkDepsRepo(opts: RepoOptions = {}): Promise<ErlangRepo> {
  const name = opts.name ?? 'mk_deps_lib';
  return gitRepo(name, opts.tag ?? '1.0.0', {
    Makefile:
      `# Declares its deps the way erlang.mk reads them.\nPROJECT = ${name}\nDEPS = cowlib ranch\n` +
      'dep_cowlib = git https://example.com/cowlib.git 2.12.1\ndep_ranch = hex 1.8.0\n\n' +
      'all:\n\tmkdir -p ebin\n\terlc -o ebin src/*.erl\n\ndeps:\n\t@echo nothing to fetch\n',
    [`src/${name}.app.src`]: appSrc(name),
    [`src/${name}.erl`]: module(name),
  });
}

/** The repository's own, partial enot_config.json: a custom app_vsn, an extra field, one dep, with_source false. */
export const PARTIAL_ENOT_CONFIG = {
  name: 'enot_lib',
  app_vsn: '2.0.0-custom',
  with_source: false,
  link_all: false,
  deps: [{ name: 'dep_lib', url: 'https://example.com/dep_lib.git', tag: '0.1.0' }],
};

/** A plain project carrying PARTIAL_ENOT_CONFIG (the build completes it). */
export function enotConfigRepo(opts: RepoOptions = {}): Promise<ErlangRepo> {
  const name = opts.name ?? 'enot_lib';
  return gitRepo(name, opts.tag ?? '1.0.0', {
    'enot_config.json': `${JSON.stringify({ ...PARTIAL_ENOT_CONFIG, name }, null, 2)}\n`,
    [`src/${name}.app.src`]: appSrc(name, '1.0.0'),
    [`src/${name}.erl`]: module(name),
  });
}

// ---- reading .ep packages ------------------------------------------------------------------------------------------

/** The entry names of a .ep (a tar), in archive order. */
export async function readEpEntries(epPath: string): Promise<string[]> {
  const { stdout } = await run('tar', ['-tf', epPath]);
  return stdout.split('\n').filter((l) => l !== '');
}

/** The package's enot_config.json. */
export async function readEnotConfig(epPath: string): Promise<Record<string, unknown>> {
  const { stdout } = await run('tar', ['-xOf', epPath, 'enot_config.json']);
  return JSON.parse(stdout) as Record<string, unknown>;
}

export interface LoadedPackage {
  /** Every module of ebin/, each loaded from there. */
  loaded: string[];
  appName: string;
  appVsn: string;
  /** The .app file's `modules`. */
  appModules: string[];
}

// Fixed code; the directory arrives through the environment. Loads each ebin module from there (not a same-named
// module elsewhere on the code path) and reads the .app; any failure halts with status 1.
const LOAD_EVAL = `
try
  Ebin = filename:join(os:getenv("EP_DIR"), "ebin"),
  Mods = [list_to_atom(filename:basename(F, ".beam")) || F <- filelib:wildcard("*.beam", Ebin)],
  [begin
     {module, M} = code:ensure_loaded(M),
     Ebin = filename:dirname(code:which(M))
   end || M <- Mods],
  [AppFile] = filelib:wildcard("*.app", Ebin),
  {ok, [{application, Name, Props}]} = file:consult(filename:join(Ebin, AppFile)),
  Vsn = proplists:get_value(vsn, Props),
  AppMods = proplists:get_value(modules, Props),
  io:format("loaded ~s~napp ~s~nvsn ~s~nmodules ~s~n",
            [lists:join(",", [atom_to_list(M) || M <- Mods]), Name, Vsn,
             lists:join(",", [atom_to_list(M) || M <- AppMods])]),
  halt(0)
catch C:R ->
  io:format(standard_error, "~p:~p~n", [C, R]),
  halt(1)
end.`;

/** Untars the .ep and loads every module of its ebin/ in a fresh `erl`; rejects if any fails to load. */
export async function loadBeamsInErl(epPath: string): Promise<LoadedPackage> {
  const dir = await mkdtemp(join(tmpdir(), 'enot-ep-'));
  try {
    await run('tar', ['-xf', epPath, '-C', dir]);
    const { stdout } = await run('erl', ['-noshell', '-pa', join(dir, 'ebin'), '-eval', LOAD_EVAL], {
      env: { ...process.env, EP_DIR: dir },
      timeout: 60_000,
    });
    const field = (key: string) => stdout.split('\n').find((l) => l.startsWith(`${key} `))?.slice(key.length + 1) ?? '';
    const list = (key: string) => field(key).split(',').filter((m) => m !== '');
    return { loaded: list('loaded'), appName: field('app'), appVsn: field('vsn'), appModules: list('modules') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
