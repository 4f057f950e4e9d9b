// The deps step: declared dependencies fetched by trusted code (git from allowed URLs, hex from a fixture repository on
// 127.0.0.1 with its checksums verified), then the project's tools run offline with the sources in place. Real
// builds: buildspec.yml's phases run with bash, real git repositories over file://, the Erlang and rebar3 installed here.
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { BUILD_OUTPUT, buildEnvironment, parseBuildResult, type BuildResult } from '#core/build-contract.js';
import { gitRepo, loadBeamsInErl, readEnotConfig, type ErlangRepo } from '#support/erlang-repos.js';
import { startHexRepo, type HexRepo } from '#support/hex-repo.js';

const exec = promisify(execFile);
const SCRIPTS = fileURLToPath(new URL('../../buildspec/', import.meta.url));
const buildspec = parse(readFileSync(join(SCRIPTS, 'buildspec.yml'), 'utf8')) as {
  phases: Record<string, { commands?: string[]; finally?: string[] }>;
};

let scratch: string;
let release: string;
let hex: HexRepo;
const repos: ErlangRepo[] = [];

const appSrc = (name: string, apps: string[] = []) =>
  `{application, ${name}, [{description, "${name}"}, {vsn, "1.0.0"}, {applications, [kernel, stdlib${apps.map((a) => `, ${a}`).join('')}]}]}.\n`;

/** A library with include/<name>.hrl defining <NAME>_GREETING, so a dependent's compile proves it was in place. */
function libFiles(name: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    [`src/${name}.app.src`]: appSrc(name),
    [`src/${name}.erl`]: `-module(${name}).\n-export([hello/0]).\nhello() -> ${name}.\n`,
    [`include/${name}.hrl`]: `-define(${name.toUpperCase()}_GREETING, "${name}").\n`,
    ...extra,
  };
}

async function fixture(make: Promise<ErlangRepo>): Promise<ErlangRepo> {
  const repo = await make;
  repos.push(repo);
  return repo;
}

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'enot-deps-test-'));
  const { stdout } = await exec('erl', ['-noshell', '-eval', 'io:format("~s", [erlang:system_info(otp_release)]), halt().']);
  release = stdout.trim();
  hex = await startHexRepo([
    { name: 'hexdep', version: '0.9.0', files: libFiles('hexdep') },
    { name: 'hexdep', version: '1.2.0', files: libFiles('hexdep', { 'rebar.config': '{deps, []}.\n' }) },
    { name: 'hexdep', version: '2.0.0', files: libFiles('hexdep') },
    { name: 'tampered', version: '1.0.0', files: libFiles('tampered'), badChecksum: true },
  ]);
});

afterAll(async () => {
  await hex?.close();
  await Promise.all(repos.map((r) => r.cleanup()));
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

function bash(command: string, env: NodeJS.ProcessEnv, cwd: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', command], { env, cwd, stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('close', (code) => resolve(code ?? 1));
  });
}

let count = 0;

/** buildspec.yml's phases, as CodeBuild runs them, with the deps policy of these tests (only the fixtures allowed). */
async function runBuild(repo: ErlangRepo, allowed: ErlangRepo[]): Promise<{ result: BuildResult; log: string; repoDir: string; artifact: string }> {
  count += 1;
  const dir = join(scratch, `build-${count}`);
  await mkdir(dir, { recursive: true });
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    ...buildEnvironment({
      buildId: `deps-${count}`, namespace: repo.namespace, name: repo.name, cloneUrl: repo.cloneUrl, ref: repo.tag,
      erlVersion: release, timeoutS: 180,
    }),
    ENOT_SCRIPTS: SCRIPTS,
    ENOT_WORK_DIR: join(dir, 'work'),
    ENOT_OUT_DIR: join(dir, 'out'),
    ENOT_SANDBOX: 'auto',
    ENOT_ALLOWED_CLONE_URLS: [repo, ...allowed].map((r) => `${pathToFileURL(dirname(r.dir)).href}/`).join(','),
    ENOT_HEX_REPO_URL: hex.url,
    ENOT_HEX_REPO_PUBLIC_KEY: hex.publicKey,
  };
  let failed = false;
  for (const phase of ['install', 'pre_build', 'build', 'post_build']) {
    if (phase === 'build' && failed) continue;
    for (const command of buildspec.phases[phase]?.commands ?? []) {
      if ((await bash(command, env, dir)) !== 0) {
        failed = true;
        break;
      }
    }
  }
  const result = parseBuildResult(readFileSync(join(dir, 'out', BUILD_OUTPUT.result), 'utf8'));
  if (!result) throw new Error('result.json does not match the contract');
  return {
    result,
    log: readFileSync(join(dir, 'out', BUILD_OUTPUT.log), 'utf8'),
    repoDir: join(dir, 'work', 'repo'),
    artifact: join(dir, 'out', BUILD_OUTPUT.artifact),
  };
}

describe('dependencies fetched before an offline build', () => {
  it('builds a rebar3 project with a git dep (and its own git dep) and a hex dep, every tool offline', async () => {
    const deep = await fixture(gitRepo('deepdep', '0.1.0', libFiles('deepdep')));
    const gitdep = await fixture(gitRepo('gitdep', '1.0.0', libFiles('gitdep', {
      'rebar.config': `{deps, [{deepdep, {git, "${deep.cloneUrl}", {tag, "0.1.0"}}}]}.\n`,
    })));
    const app = await fixture(gitRepo('rebar_app', '3.0.0', {
      'rebar.config': `{erl_opts, [debug_info]}.\n{deps, [{gitdep, {git, "${gitdep.cloneUrl}", {tag, "1.0.0"}}}, {hexdep, "~> 1.0"}]}.\n`
        + '{plugins, [rebar3_hex]}.\n',
      'src/rebar_app.app.src': appSrc('rebar_app', ['gitdep', 'hexdep']),
      'src/rebar_app.erl': '-module(rebar_app).\n-include_lib("gitdep/include/gitdep.hrl").\n-include_lib("hexdep/include/hexdep.hrl").\n'
        + '-include_lib("deepdep/include/deepdep.hrl").\n-export([hello/0]).\n'
        + 'hello() -> {?GITDEP_GREETING, ?HEXDEP_GREETING, ?DEEPDEP_GREETING}.\n',
    }));
    const run = await runBuild(app, [gitdep, deep]);

    expect(run.result, run.log).toMatchObject({ status: 'succeeded', tool: 'rebar3' });
    // hexdep ~> 1.0: 1.2.0 (not 0.9.0, not 2.0.0), from the fixture registry, signature and checksums checked.
    expect(run.log).toContain('deps: hexdep: hex package hexdep 1.2.0 from http://127.0.0.1:');
    expect(run.log).toContain('(registry signature verified)');
    expect(run.log).toContain('deps: hexdep: checksums verified');
    expect(run.log).toMatch(/\$ git clone --depth 1 --branch 0\.1\.0 -- file:\/\/.*deepdep \(dependency deepdep\)/);
    expect(run.log).toContain('plugin rebar3_hex is not fetched: declared dependencies are fetched before the build, plugins are not supported yet');
    expect(run.log).toContain('deps: 3 in place');
    // Where rebar3 looks: git deps in _build/default/lib, the hex package as a checkout; none fetched by rebar3.
    expect(readdirSync(join(run.repoDir, '_build', 'default', 'lib')).filter((d) => !d.startsWith('.')).sort()).toEqual(['deepdep', 'gitdep', 'rebar_app']);
    expect(existsSync(join(run.repoDir, '_checkouts', 'hexdep', 'include', 'hexdep.hrl'))).toBe(true);
    expect(run.log).not.toContain('rebar3 get-deps');
    expect(run.log).not.toContain('network on');
    expect(hex.requests).toEqual(expect.arrayContaining(['/packages/hexdep', '/tarballs/hexdep-1.2.0.tar']));
    expect((await loadBeamsInErl(run.artifact)).loaded).toEqual(['rebar_app']);
    expect((await readEnotConfig(run.artifact)).deps).toEqual([{ name: 'gitdep', url: gitdep.cloneUrl, tag: '1.0.0' }]);
  });

  it('builds an erlang.mk project with a git dep placed in deps/', async () => {
    const mkdep = await fixture(gitRepo('mkdep', '2.0.0', libFiles('mkdep')));
    const app = await fixture(gitRepo('mk_app', '1.0.0', {
      Makefile: `# built the way erlang.mk builds\nPROJECT = mk_app\nDEPS = mkdep\ndep_mkdep = git ${mkdep.cloneUrl} 2.0.0\n\n`
        + 'all:\n\tmkdir -p ebin deps/mkdep/ebin\n\terlc -o deps/mkdep/ebin deps/mkdep/src/mkdep.erl\n'
        + '\tERL_LIBS=deps erlc -o ebin src/mk_app.erl\n\ninclude erlang.mk\n',
      'erlang.mk': 'deps:\n\t@echo the build must not call this\n\t@exit 1\n',
      'src/mk_app.app.src': appSrc('mk_app', ['mkdep']),
      'src/mk_app.erl': '-module(mk_app).\n-include_lib("mkdep/include/mkdep.hrl").\n-export([hello/0]).\nhello() -> ?MKDEP_GREETING.\n',
    }));
    const run = await runBuild(app, [mkdep]);

    expect(run.result, run.log).toMatchObject({ status: 'succeeded', tool: 'make' });
    expect(existsSync(join(run.repoDir, 'deps', 'mkdep', 'ebin', 'mkdep.beam'))).toBe(true);
    expect(run.log).toContain('deps: fetching for make');
    expect(run.log).not.toContain('$ make deps');
    expect((await readEnotConfig(run.artifact)).deps).toEqual([{ name: 'mkdep', url: mkdep.cloneUrl, tag: '2.0.0' }]);
  });

  it('refuses a git dep whose URL is not allowed, before fetching anything', async () => {
    const app = await fixture(gitRepo('evil_url_app', '1.0.0', {
      'rebar.config': '{deps, [{evil, {git, "https://example.com/evil.git", {tag, "1.0.0"}}}]}.\n',
      'src/evil_url_app.app.src': appSrc('evil_url_app'),
      'src/evil_url_app.erl': '-module(evil_url_app).\n',
    }));
    const run = await runBuild(app, []);

    expect(run.result).toMatchObject({ status: 'failed', failure: 'deps' });
    expect(run.result.message).toMatch(/^dependency evil: https:\/\/example\.com\/evil\.git is not allowed: it does not start with one of: file:\/\//);
    expect(run.log).toContain('==> compile: skipped');
    expect(existsSync(join(run.repoDir, '_build', 'default', 'lib', 'evil'))).toBe(false);
  });

  it('refuses a hex package whose tarball does not match its checksum, and unpacks none of it', async () => {
    const app = await fixture(gitRepo('tampered_app', '1.0.0', {
      'rebar.config': '{deps, [{tampered, "1.0.0"}]}.\n',
      'src/tampered_app.app.src': appSrc('tampered_app'),
      'src/tampered_app.erl': '-module(tampered_app).\n',
    }));
    const run = await runBuild(app, []);

    expect(run.result).toMatchObject({ status: 'failed', failure: 'deps' });
    expect(run.result.message).toMatch(/^dependency tampered: hex package tampered 1\.0\.0: checksum mismatch: CHECKSUM says [0-9a-f]{64}, the contents hash to [0-9a-f]{64}$/);
    expect(existsSync(join(run.repoDir, '_checkouts', 'tampered'))).toBe(false);
  });

  it('evaluates rebar.config.script in the offline sandbox: its TCP connection to 127.0.0.1:5432 is refused, its deps are used', async () => {
    // The same connection from here succeeds (Postgres listens there), so the refusal below is the sandbox's doing.
    await new Promise<void>((resolve, reject) => {
      const socket = connect(5432, '127.0.0.1', () => {
        socket.destroy();
        resolve();
      });
      socket.on('error', reject);
    });
    const scriptdep = await fixture(gitRepo('scriptdep', '1.0.0', libFiles('scriptdep')));
    const app = await fixture(gitRepo('script_app', '1.0.0', {
      'rebar.config': '{deps, []}.\n',
      'rebar.config.script':
        'io:format("script connect: ~p~n", [gen_tcp:connect({127,0,0,1}, 5432, [], 2000)]),\n'
        + `lists:keystore(deps, 1, CONFIG, {deps, [{scriptdep, {git, "${scriptdep.cloneUrl}", {tag, "1.0.0"}}}]}).\n`,
      'src/script_app.app.src': appSrc('script_app', ['scriptdep']),
      'src/script_app.erl': '-module(script_app).\n-include_lib("scriptdep/include/scriptdep.hrl").\n-export([hello/0]).\n'
        + 'hello() -> ?SCRIPTDEP_GREETING.\n',
    }));
    const run = await runBuild(app, [scriptdep]);

    expect(run.log).toContain('$ escript helper.escript deps rebar.config.script [sandbox, no network]');
    expect(run.log).toMatch(/script connect: \{error,(econnrefused|enetunreach|eaddrnotavail)\}/);
    expect(run.log).not.toMatch(/script connect: \{ok,/);
    expect(run.result, run.log).toMatchObject({ status: 'succeeded', tool: 'rebar3' });
    expect(existsSync(join(run.repoDir, '_build', 'default', 'lib', 'scriptdep', 'include', 'scriptdep.hrl'))).toBe(true);
  });
});
