// The build itself: buildspec.yml's phases run command by command with bash, the way CodeBuild and the local builder
// run them, on real git repositories and the Erlang installed here. The builder's time limit is the local runner's
// business and is tested there.
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { S3BlobStore } from '#adapters/blob/s3-blob-store.js';
import {
  BUILD_OUTPUT, buildBlobKeys, buildEnvironment, OUTPUT_CONTENT_TYPES, parseBuildResult, UPLOAD_FORM_ENV, UPLOAD_MAX_BYTES,
  type BuildResult, type UploadForm,
} from '#core/build-contract.js';
import { startCheckedS3, type CheckedS3 } from '#support/sigv4-checking-proxy.js';
import {
  brokenRepo, enotConfigRepo, erlangMkDepsRepo, FIXTURE_AUTHOR_EMAIL, includePrivRepo, loadBeamsInErl, makeRepo, PARTIAL_ENOT_CONFIG,
  gitRepo, plainLibRepo, readEnotConfig, readEpEntries, rebar3LibRepo, type ErlangRepo,
} from '#support/erlang-repos.js';

const exec = promisify(execFile);
const SCRIPTS = fileURLToPath(new URL('../../buildspec/', import.meta.url));
const PHASES = ['install', 'pre_build', 'build', 'post_build'] as const;

interface Buildspec {
  version: number;
  env: { shell: string };
  phases: Record<string, { commands?: string[]; finally?: string[] }>;
}

interface BuildRun {
  result: BuildResult;
  log: string;
  outDir: string;
  workDir: string;
  artifact: string;
  /** Phases whose commands all exited 0. */
  phasesOk: Record<string, boolean>;
}

const buildspec = parse(readFileSync(join(SCRIPTS, 'buildspec.yml'), 'utf8')) as Buildspec;

let scratch: string;
let localRoot: string;
let localRelease: string;
let localVersion: string;
const repos: ErlangRepo[] = [];

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'enot-buildspec-test-'));
  const { stdout } = await exec('erl', [
    '-noshell', '-eval', 'io:format("~s~n~s~n", [erlang:system_info(otp_release), code:root_dir()]), halt().',
  ]);
  [localRelease, localRoot] = stdout.trim().split('\n');
  localVersion = readFileSync(join(localRoot, 'releases', localRelease, 'OTP_VERSION'), 'utf8').trim();
});

afterAll(async () => {
  await Promise.all(repos.map((r) => r.cleanup()));
  await rm(scratch, { recursive: true, force: true });
});

async function fixture(make: Promise<ErlangRepo>): Promise<ErlangRepo> {
  const repo = await make;
  repos.push(repo);
  return repo;
}

function bash(command: string, env: NodeJS.ProcessEnv, cwd: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', command], { env, cwd, stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('close', (code) => resolve(code ?? 1));
  });
}

let buildCount = 0;

/** Runs buildspec.yml's phases with CodeBuild's rules (a failed install/pre_build skips build; post_build always runs). */
async function runBuild(repo: ErlangRepo, overrides: Record<string, string> = {}): Promise<BuildRun> {
  buildCount += 1;
  const dir = join(scratch, `build-${buildCount}`);
  const workDir = join(dir, 'work');
  const outDir = join(dir, 'out');
  await mkdir(dir, { recursive: true });
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    ...buildEnvironment({
      buildId: `b-${buildCount}`,
      namespace: repo.namespace,
      name: repo.name,
      cloneUrl: repo.cloneUrl,
      ref: repo.tag,
      erlVersion: localRelease,
      timeoutS: 120,
    }),
    ENOT_SCRIPTS: SCRIPTS,
    ENOT_WORK_DIR: workDir,
    ENOT_OUT_DIR: outDir,
    ENOT_SANDBOX: 'auto',
    ...overrides,
  };
  const phasesOk: Record<string, boolean> = {};
  for (const phase of PHASES) {
    const early = phase === 'build' && (phasesOk.install === false || phasesOk.pre_build === false);
    if (early) continue;
    let ok = true;
    for (const command of buildspec.phases[phase]?.commands ?? []) {
      if ((await bash(command, env, dir)) !== 0) {
        ok = false;
        break;
      }
    }
    for (const command of buildspec.phases[phase]?.finally ?? []) await bash(command, env, dir);
    phasesOk[phase] = ok;
  }
  const resultText = readFileSync(join(outDir, BUILD_OUTPUT.result), 'utf8');
  const result = parseBuildResult(resultText);
  if (!result) throw new Error(`result.json does not match the contract: ${resultText}`);
  return {
    result,
    log: readFileSync(join(outDir, BUILD_OUTPUT.log), 'utf8'),
    outDir,
    workDir,
    artifact: join(outDir, BUILD_OUTPUT.artifact),
    phasesOk,
  };
}

async function headSha(repo: ErlangRepo): Promise<string> {
  const { stdout } = await exec('git', ['rev-parse', `${repo.tag}^{commit}`], { cwd: repo.dir });
  return stdout.trim();
}

function sha256File(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** Whether bubblewrap can sandbox here, probed the way the build does. */
function bwrapUsable(): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn('bwrap', ['--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--unshare-net', '--unshare-pid', 'true'], {
      stdio: 'ignore',
    });
    child.on('error', () => resolve(false));
    child.on('close', (code) => resolve(code === 0));
  });
}

describe('buildspec.yml', () => {
  it('is CodeBuild 0.2 with bash, and calls the build steps in order through $ENOT_SCRIPTS, one node per phase', () => {
    expect(buildspec.version).toBe(0.2);
    expect(buildspec.env.shell).toBe('bash');
    expect(Object.keys(buildspec.phases)).toEqual(['pre_build', 'build', 'post_build']);
    const commands = PHASES.flatMap((p) => buildspec.phases[p]?.commands ?? []);
    expect(commands).toEqual(
      ['check clone release deps', 'compile package', 'publish'].map((s) => `node "$ENOT_SCRIPTS/build.mjs" ${s}`),
    );
  });

  it('runs every step alone too, handing over through the state files, and refuses an unknown step in a list', async () => {
    const repo = await fixture(plainLibRepo({ name: 'step_lib' }));
    const dir = join(scratch, 'steps-alone');
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      ...buildEnvironment({
        buildId: 'steps-alone', namespace: repo.namespace, name: repo.name, cloneUrl: repo.cloneUrl, ref: repo.tag,
        erlVersion: localRelease, timeoutS: 120,
      }),
      ENOT_SCRIPTS: SCRIPTS,
      ENOT_WORK_DIR: join(dir, 'work'),
      ENOT_OUT_DIR: join(dir, 'out'),
      ENOT_SANDBOX: 'off',
    };
    await mkdir(dir, { recursive: true });
    const step = (args: string) => bash(`node "$ENOT_SCRIPTS/build.mjs" ${args}`, env, dir);

    expect(await step('check clone bogus')).toBe(2);
    expect(existsSync(join(dir, 'work', 'repo'))).toBe(false);
    for (const name of ['check', 'clone', 'release', 'deps', 'compile', 'package', 'publish']) expect(await step(name), name).toBe(0);
    const result = parseBuildResult(readFileSync(join(dir, 'out', BUILD_OUTPUT.result), 'utf8'));
    expect(result).toMatchObject({ status: 'succeeded', tool: 'erlc', appVsn: '1.0.0' });
    const log = readFileSync(join(dir, 'out', BUILD_OUTPUT.log), 'utf8');
    expect(log.match(/^==> \w+$/gm)).toEqual(['check', 'clone', 'release', 'deps', 'compile', 'package', 'publish'].map((s) => `==> ${s}`));
  });

  it('a command of several steps stops at a step that broke, with its exit status', async () => {
    const repo = await fixture(plainLibRepo({ name: 'broke_lib' }));
    // compile without clone and release is a builder bug (steps out of order): exit 1, and package does not run.
    const dir = join(scratch, 'broke');
    await mkdir(dir, { recursive: true });
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      ...buildEnvironment({
        buildId: 'broke', namespace: repo.namespace, name: repo.name, cloneUrl: repo.cloneUrl, ref: repo.tag,
        erlVersion: localRelease, timeoutS: 120,
      }),
      ENOT_SCRIPTS: SCRIPTS,
      ENOT_WORK_DIR: join(dir, 'work'),
      ENOT_OUT_DIR: join(dir, 'out'),
    };
    expect(await bash('node "$ENOT_SCRIPTS/build.mjs" compile package', env, dir)).toBe(1);
    const log = readFileSync(join(dir, 'out', BUILD_OUTPUT.log), 'utf8');
    expect(log).toContain('==> internal error in the compile step: step run out of order: clone, release has not run');
    expect(log).not.toContain('==> package');
  });
});

describe('successful builds', () => {
  it('builds a plain project with erlc: loadable beams, a generated .app, a complete enot_config.json', async () => {
    const repo = await fixture(plainLibRepo());
    const run = await runBuild(repo);

    expect(run.result).toMatchObject({
      buildId: 'b-' + String(buildCount),
      status: 'succeeded',
      tool: 'erlc',
      appVsn: '1.0.0',
      otpRelease: localVersion,
      commitSha: await headSha(repo),
      authorEmail: FIXTURE_AUTHOR_EMAIL,
      message: `built plain_lib 1.0.0 with erlc on OTP ${localVersion}`,
    });
    expect(run.result.failure).toBeUndefined();
    expect(run.result.artifactSize).toBe(statSync(run.artifact).size);
    expect(run.result.artifactSha256).toBe(sha256File(run.artifact));
    expect(Object.values(run.phasesOk).every(Boolean)).toBe(true);

    const loaded = await loadBeamsInErl(run.artifact);
    expect(loaded.loaded.sort()).toEqual(['plain_lib', 'plain_lib_util']);
    expect(loaded.appName).toBe('plain_lib');
    expect(loaded.appVsn).toBe('1.0.0');
    expect(loaded.appModules).toEqual(['plain_lib', 'plain_lib_util']);

    const entries = await readEpEntries(run.artifact);
    expect(entries).toEqual(expect.arrayContaining([
      'ebin/', 'ebin/plain_lib.app', 'ebin/plain_lib.beam', 'ebin/plain_lib_util.beam', 'src/', 'src/plain_lib.erl',
      'src/plain_lib.app.src', 'enot_config.json',
    ]));
    expect(entries.filter((e) => e.startsWith('README') || e.startsWith('.git'))).toEqual([]);
    expect(await readEnotConfig(run.artifact)).toEqual({
      name: 'plain_lib',
      fullname: repo.fullName,
      tag: '1.0.0',
      url: repo.cloneUrl,
      app_vsn: '1.0.0',
      deps: [],
      erlang: [localRelease],
      with_source: true,
    });
    expect(run.log).toContain('==> compile');
    expect(run.log).toContain(`==> result: succeeded: built plain_lib 1.0.0 with erlc on OTP ${localVersion}`);
    // One helper run compiled and answered the .app; its answers are not part of the log.
    expect(run.log.match(/\$ escript helper\.escript/g)).toHaveLength(1);
    expect(run.log).not.toContain('enot-helper-answer');
  });

  it('takes a committed ebin/*.app as the source of the .app when there is no .app.src, modules filled in', async () => {
    const repo = await fixture(gitRepo('ebin_app_lib', '3.1.0', {
      // No .app.src; a committed .app whose vsn the build keeps and whose modules it replaces.
      'ebin/ebin_app_lib.app': '{application, ebin_app_lib, [{vsn, "3.1.0-pre"}, {description, "kept"}, {modules, [gone]}]}.\n',
      'src/ebin_app_lib.erl': '-module(ebin_app_lib).\n-export([hello/0]).\n\nhello() -> world.\n',
    }));
    const run = await runBuild(repo);

    expect(run.result).toMatchObject({ status: 'succeeded', tool: 'erlc', appVsn: '3.1.0-pre' });
    const loaded = await loadBeamsInErl(run.artifact);
    expect(loaded).toMatchObject({ appName: 'ebin_app_lib', appVsn: '3.1.0-pre', appModules: ['ebin_app_lib'] });
  });

  it('reports an unreadable .app.src of a plain project as such', async () => {
    const repo = await fixture(gitRepo('bad_app_lib', '1.0.0', {
      'src/bad_app_lib.app.src': '{application, bad_app_lib, [{vsn, "1"}.\n',
      'src/bad_app_lib.erl': '-module(bad_app_lib).\n-export([hello/0]).\n\nhello() -> world.\n',
    }));
    const run = await runBuild(repo);

    expect(run.result).toMatchObject({ status: 'failed', failure: 'compile', tool: 'erlc' });
    expect(run.result.message).toMatch(/^reading the application file failed: cannot read .*bad_app_lib\.app\.src/);
    expect(existsSync(run.artifact)).toBe(false);
  });

  it('builds a rebar3 project, taking the vsn rebar3 derives from the git tag', async () => {
    const repo = await fixture(rebar3LibRepo({ tag: '2.3.4' }));
    const run = await runBuild(repo);

    expect(run.result).toMatchObject({ status: 'succeeded', tool: 'rebar3', appVsn: '2.3.4' });
    const loaded = await loadBeamsInErl(run.artifact);
    expect(loaded).toMatchObject({ loaded: ['rebar_lib'], appName: 'rebar_lib', appVsn: '2.3.4', appModules: ['rebar_lib'] });
    const entries = await readEpEntries(run.artifact);
    expect(entries).toEqual(expect.arrayContaining(['ebin/rebar_lib.app', 'ebin/rebar_lib.beam', 'src/rebar_lib.erl']));
    expect(entries.some((e) => e.startsWith('_build'))).toBe(false);
    expect(run.log).toContain('$ rebar3 compile');
  });

  it('builds a project with include/ (by -include and a self -include_lib) and priv/, and ships both', async () => {
    const repo = await fixture(includePrivRepo());
    const run = await runBuild(repo);

    expect(run.result).toMatchObject({ status: 'succeeded', tool: 'erlc' });
    expect(await readEpEntries(run.artifact)).toEqual(expect.arrayContaining([
      'include/', 'include/inc_lib.hrl', 'include/inc_lib_lib.hrl', 'priv/', 'priv/inc_lib.txt', 'ebin/inc_lib.beam',
    ]));
    expect((await loadBeamsInErl(run.artifact)).loaded).toEqual(['inc_lib']);
  });

  it('builds a Makefile project with make and generates the .app its Makefile did not', async () => {
    const repo = await fixture(makeRepo());
    const run = await runBuild(repo);

    expect(run.result).toMatchObject({ status: 'succeeded', tool: 'make', appVsn: '1.0.0' });
    expect(await loadBeamsInErl(run.artifact)).toMatchObject({ loaded: ['make_lib'], appModules: ['make_lib'] });
  });

  it('completes the repository\'s own enot_config.json: keeps its app_vsn, deps and extra fields, sets the rest', async () => {
    const repo = await fixture(enotConfigRepo());
    const run = await runBuild(repo);

    expect(run.result).toMatchObject({ status: 'succeeded', appVsn: '1.0.0' });
    expect(await readEnotConfig(run.artifact)).toEqual({
      name: 'enot_lib',
      fullname: repo.fullName,
      tag: '1.0.0',
      url: repo.cloneUrl,
      app_vsn: PARTIAL_ENOT_CONFIG.app_vsn,
      deps: PARTIAL_ENOT_CONFIG.deps,
      link_all: false,
      erlang: [localRelease],
      with_source: true,
    });
  });

  it('fails an erlang.mk project whose git dep is not allowed, naming it (the deps step fetches before the build)', async () => {
    const repo = await fixture(erlangMkDepsRepo());
    const run = await runBuild(repo);

    // The fetch and enot_config.json's listing of fetched deps are tested in build-deps.test.ts.
    expect(run.result).toMatchObject({ status: 'failed', failure: 'deps' });
    expect(run.result.message).toMatch(/^dependency cowlib: https:\/\/example\.com\/cowlib\.git is not allowed/);
    expect(run.log).not.toContain('$ make deps');
  });

  it('the log stops at ENOT_LOG_MAX_BYTES with a last line saying so, and the build still succeeds', async () => {
    const repo = await fixture(plainLibRepo({ name: 'capped_lib' }));
    const run = await runBuild(repo, { ENOT_LOG_MAX_BYTES: '400' });

    expect(run.result.status).toBe('succeeded');
    const note = '[log truncated at 400 bytes]\n';
    expect(run.log.endsWith(note)).toBe(true);
    expect(Buffer.byteLength(run.log)).toBeLessThanOrEqual(400 + note.length + 1);
    expect(run.log.split(note)).toHaveLength(2);
  });
});

describe('OTP releases', () => {
  it('refuses a release this builder lacks, naming the ones it has', async () => {
    const repo = await fixture(plainLibRepo({ name: 'old_otp_lib' }));
    const run = await runBuild(repo, { ENOT_ERL_VERSION: '24' });

    expect(run.result).toMatchObject({
      status: 'failed',
      failure: 'release',
      message: `OTP 24 is not available on this builder (available: ${localVersion})`,
      availableReleases: [localVersion],
    });
    expect(existsSync(run.artifact)).toBe(false);
  });

  it('picks from ENOT_OTP_INSTALLS by release name or by a prefix of the full version', async () => {
    const installs = join(scratch, 'otp-installs');
    await mkdir(installs, { recursive: true });
    await symlink(localRoot, join(installs, localRelease));
    const repo = await fixture(plainLibRepo({ name: 'installs_lib' }));

    const byName = await runBuild(repo, { ENOT_OTP_INSTALLS: installs });
    expect(byName.result).toMatchObject({ status: 'succeeded', otpRelease: localVersion });
    expect(byName.log).toContain(`OTP ${localVersion} from ${join(installs, localRelease)}`);

    const byVersion = await runBuild(repo, { ENOT_OTP_INSTALLS: installs, ENOT_ERL_VERSION: localVersion });
    expect(byVersion.result).toMatchObject({ status: 'succeeded', otpRelease: localVersion });

    const missing = await runBuild(repo, { ENOT_OTP_INSTALLS: installs, ENOT_ERL_VERSION: '24.3' });
    expect(missing.result).toMatchObject({
      status: 'failed',
      failure: 'release',
      message: `OTP 24.3 is not available on this builder (available: ${localRelease})`,
      availableReleases: [localRelease],
    });
  });

  it('takes the installation the runner names (ENOT_OTP_ROOT, ENOT_OTP_VERSION) without asking erl, else asks erl', async () => {
    const repo = await fixture(plainLibRepo({ name: 'named_otp_lib' }));
    // A version no `erl` would answer: only the runner's word can have put it in the result.
    const named = await runBuild(repo, { ENOT_OTP_ROOT: localRoot, ENOT_OTP_VERSION: `${localRelease}.99.1` });
    expect(named.result).toMatchObject({ status: 'succeeded', otpRelease: `${localRelease}.99.1` });
    expect(named.log).toContain(`OTP ${localRelease}.99.1 from ${localRoot}`);

    // Without a version, the installation's own OTP_VERSION file.
    const rootOnly = await runBuild(repo, { ENOT_OTP_ROOT: localRoot });
    expect(rootOnly.result).toMatchObject({ status: 'succeeded', otpRelease: localVersion });

    // A root with no erl in it: the build asks the erl on PATH, as without the variables.
    const wrong = await runBuild(repo, { ENOT_OTP_ROOT: join(scratch, 'no-otp-here'), ENOT_OTP_VERSION: '99.1' });
    expect(wrong.result).toMatchObject({ status: 'succeeded', otpRelease: localVersion });
  });
});

describe('failed builds', () => {
  let evilRef: Promise<ErlangRepo> | undefined;
  const evilRefRepo = () => (evilRef ??= fixture(plainLibRepo({ name: 'evil_ref_lib' })));

  it('reports a compile error with its file and line, and ships nothing', async () => {
    const repo = await fixture(brokenRepo());
    const run = await runBuild(repo);

    expect(run.result).toMatchObject({ status: 'failed', failure: 'compile', tool: 'erlc' });
    expect(run.result.message).toMatch(/^compile failed \(erlc exited 1\): src\/broken_lib\.erl:4:\d+: syntax error before: /);
    expect(run.result.artifactSha256).toBeUndefined();
    expect(existsSync(run.artifact)).toBe(false);
    expect(run.log).toMatch(/src\/broken_lib\.erl:4:\d+: syntax error before/);
    expect(run.log).toContain('==> package: skipped (the build failed in an earlier step)');
    expect(run.log).toContain(`==> result: failed: ${run.result.message}`);
  });

  it('reports an unknown ref after trying the clone; publish still writes result.json', async () => {
    const repo = await fixture(plainLibRepo({ name: 'ref_lib' }));
    const run = await runBuild(repo, { ENOT_REF: '9.9.9' });

    expect(run.result).toEqual({
      buildId: expect.any(String),
      status: 'failed',
      failure: 'ref',
      message: `unknown ref 9.9.9: no such tag or branch in ${repo.cloneUrl}`,
    });
    expect(run.log).toContain('$ git clone --depth 1 --branch 9.9.9 -- ');
    expect(run.log).toContain('==> compile: skipped');
  });

  it('reports a repository that cannot be cloned with git\'s reason', async () => {
    const repo = await fixture(plainLibRepo({ name: 'gone_lib' }));
    const run = await runBuild(repo, { ENOT_CLONE_URL: `${repo.cloneUrl}-missing` });

    expect(run.result).toMatchObject({ status: 'failed', failure: 'clone' });
    expect(run.result.message).toMatch(new RegExp(`^clone of ${repo.cloneUrl}-missing failed: .*(not|does not) .*repository`));
  });

  it.each([
    ['an option', (m: string) => `--upload-pack=touch ${m}`],
    ['a command substitution', (m: string) => `$(touch ${m})`],
    ['a second command', (m: string) => `1.0.0; touch ${m}`],
    ['a path', () => '../../etc'],
  ])('refuses a ref that is %s before git ever runs', async (_what, makeRef) => {
    const repo = await evilRefRepo();
    const marker = join(scratch, `marker-${buildCount + 1}`);
    const run = await runBuild(repo, { ENOT_REF: makeRef(marker) });

    expect(run.result).toMatchObject({ status: 'failed', failure: 'ref' });
    expect(run.result.message).toMatch(/^refusing ref ".*": must be a git tag/);
    expect(run.log).not.toContain('git clone');
    expect(existsSync(marker)).toBe(false);
  });

  it('refuses clone URLs other than https:// and file://', async () => {
    const repo = await fixture(plainLibRepo({ name: 'evil_url_lib' }));
    const marker = join(scratch, 'url-marker');
    const run = await runBuild(repo, { ENOT_CLONE_URL: `ext::sh -c touch% ${marker}` });

    expect(run.result).toMatchObject({ status: 'failed', failure: 'clone' });
    expect(run.result.message).toMatch(/^refusing clone URL .*only https:\/\/ and file:\/\/ URLs are built$/);
    expect(existsSync(marker)).toBe(false);
  });
});

describe('the compile sandbox', () => {
  it('keeps the compile from writing outside the clone when bubblewrap works, and says which way it ran', async () => {
    // `make` tries to leave a file next to the clone: on the host only when not sandboxed.
    const repo = await fixture(makeRepo({ name: 'escape_lib', recipe: ['-touch ../escape-marker'] }));
    const sandboxed = await runBuild(repo, { ENOT_SANDBOX: 'auto' });
    const plain = await runBuild(repo, { ENOT_SANDBOX: 'off' });

    expect(sandboxed.result.status).toBe('succeeded');
    expect(plain.result.status).toBe('succeeded');
    expect(plain.log).toContain('sandbox: off (ENOT_SANDBOX=off); compiling without it');
    expect(existsSync(join(plain.workDir, 'escape-marker'))).toBe(true);
    if (await bwrapUsable()) {
      expect(sandboxed.log).toContain('sandbox: bubblewrap, no network');
      expect(sandboxed.log).toContain('[sandbox]');
      expect(existsSync(join(sandboxed.workDir, 'escape-marker'))).toBe(false);
    } else {
      expect(sandboxed.log).toContain('sandbox: not used:');
    }
  });
});

describe('publish on CodeBuild: POSTs through the presigned forms of the build\'s own keys (s3rver behind the checker, nothing mocked)', () => {
  let checked: CheckedS3;
  let blobs: S3BlobStore;

  beforeAll(async () => {
    checked = await startCheckedS3();
    ({ blobs } = checked);
  });
  afterAll(() => checked?.close());

  /** The forms the dispatcher would pass, by UPLOAD_FORM_ENV name. */
  async function formsFor(buildId: string, keys = buildBlobKeys(buildId)): Promise<Record<string, UploadForm>> {
    const outputs = ['artifact', 'log', 'result'] as const;
    return Object.fromEntries(await Promise.all(outputs.map(async (output) => [
      UPLOAD_FORM_ENV[output], await blobs.presignPost(keys[output], OUTPUT_CONTENT_TYPES[output], 600, UPLOAD_MAX_BYTES[output]),
    ])));
  }
  const asEnv = (forms: Record<string, UploadForm>) =>
    Object.fromEntries(Object.entries(forms).map(([name, form]) => [name, JSON.stringify(form)]));

  it('uploads the package, the log and the result where completion reads them', async () => {
    const repo = await fixture(plainLibRepo({ name: 'uploaded_lib' }));
    const buildId = `b-${buildCount + 1}`;
    const run = await runBuild(repo, asEnv(await formsFor(buildId)));
    expect(run.phasesOk.post_build).toBe(true);
    const keys = buildBlobKeys(buildId);
    const result = parseBuildResult((await blobs.get(keys.result))!.toString('utf8'));
    expect(result).toMatchObject({ buildId, status: 'succeeded' });
    const artifact = (await blobs.get(keys.artifact))!;
    expect(createHash('sha256').update(artifact).digest('hex')).toBe(result!.artifactSha256);
    expect((await blobs.get(keys.log))!.toString('utf8')).toContain('==> result: succeeded');
    // Each upload carried its SHA-256, which S3 (the checker, for s3rver) verified and keeps: digest() reads it.
    expect(checked.checker.refused).toEqual([]);
    const head = await checked.client.send(new HeadObjectCommand({ Bucket: checked.s3.bucket, Key: keys.artifact, ChecksumMode: 'ENABLED' }));
    expect(head.ChecksumSHA256).toBe(Buffer.from(result!.artifactSha256!, 'hex').toString('base64'));
    expect(head.ContentType).toBe(OUTPUT_CONTENT_TYPES.artifact);
    expect((await blobs.digest(keys.result))?.sha256).toBe(createHash('sha256').update((await blobs.get(keys.result))!).digest('hex'));
    expect(run.log).not.toContain('X-Amz-Signature');
  });

  it('fails the builder (post_build non-zero) when a form is refused, and says which file', async () => {
    const repo = await fixture(plainLibRepo({ name: 'refused_lib' }));
    const buildId = `b-${buildCount + 1}`;
    // Forms signed for another build's keys: the checker refuses them once the key field is rewritten to ours.
    const their = buildBlobKeys('someone-else');
    const theirs = await formsFor('someone-else', their);
    const ours = buildBlobKeys(buildId);
    const forged = Object.fromEntries(Object.entries(theirs).map(([name, form]) => {
      const output = (Object.keys(UPLOAD_FORM_ENV) as (keyof typeof UPLOAD_FORM_ENV)[]).find((o) => UPLOAD_FORM_ENV[o] === name)!;
      expect(form.fields.key, name).toBe(their[output]);
      return [name, { ...form, fields: { ...form.fields, key: ours[output] } }];
    }));
    const refusedBefore = checked.checker.refused.length;
    const run = await runBuild(repo, asEnv(forged));
    expect(run.phasesOk.post_build).toBe(false);
    // The first upload (the package) was refused by its policy, naming the file and S3's code, and nothing landed.
    expect(run.log).toMatch(/uploading package\.ep to \/[^ ]+ failed \(HTTP 403 AccessDenied\)/);
    expect(checked.checker.refused.slice(refusedBefore).map((r) => r.reason)).toEqual([expect.stringContaining('Policy Condition failed')]);
    for (const key of Object.values(ours)) expect(await blobs.get(key), key).toBeNull();
  });
});

