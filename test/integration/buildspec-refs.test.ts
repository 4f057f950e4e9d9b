// The build refuses what is not a tag, in trusted code before anything of the package runs: a branch, HEAD, a name
// git refuses, a release in another spelling, a clone URL git would read otherwise. A name that is both a branch and
// a tag is built as the tag. buildspec.yml's phases run with bash on real repositories, as the local builder runs them.
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { BUILD_OUTPUT, buildEnvironment, parseBuildResult, type BuildResult } from '#core/build-contract.js';
import { plainLibRepo, readEpEntries, type ErlangRepo } from '#support/erlang-repos.js';

const exec = promisify(execFile);
const SCRIPTS = fileURLToPath(new URL('../../buildspec/', import.meta.url));
const buildspec = parse(readFileSync(join(SCRIPTS, 'buildspec.yml'), 'utf8')) as {
  phases: Record<string, { commands?: string[] }>;
};

let scratch: string;
let release: string;
let repo: ErlangRepo;
let tagSha: string;
let builds = 0;

const git = (...args: string[]) => exec('git', ['-c', 'user.email=t@example.org', '-c', 'user.name=t', ...args], { cwd: repo.dir });

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'enot-buildspec-refs-'));
  release = (await exec('erl', ['-noshell', '-eval', 'io:format("~s", [erlang:system_info(otp_release)]), halt().'])).stdout;
  // Tag 1.0.0 and tag `both` on a commit that compiles; branches `master` and `both` one commit on, where it does not.
  repo = await plainLibRepo({ name: 'refs_lib' });
  tagSha = (await git('rev-parse', '1.0.0^{commit}')).stdout.trim();
  await git('tag', '-a', '-m', 'both', 'both');
  await git('checkout', '-q', '-b', 'master');
  await writeFile(join(repo.dir, 'src', 'refs_lib_broken.erl'), '-module(refs_lib_broken).\nbroken(\n');
  await git('add', '-A');
  await git('commit', '-q', '-m', 'broken');
  await git('branch', 'both');
}, 60_000);

afterAll(async () => {
  await repo?.cleanup();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

function bash(command: string, env: NodeJS.ProcessEnv, cwd: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', command], { env, cwd, stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('close', (code) => resolve(code ?? 1));
  });
}

/** buildspec.yml's phases in order (a failed pre_build skips build; post_build always runs). */
async function runBuild(job: { ref: string; erlVersion?: string; cloneUrl?: string }): Promise<{ result: BuildResult; log: string; outDir: string }> {
  builds += 1;
  const dir = join(scratch, `build-${builds}`);
  const outDir = join(dir, 'out');
  await mkdir(dir, { recursive: true });
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    ...buildEnvironment({
      buildId: `refs-${builds}`, namespace: repo.namespace, name: repo.name, cloneUrl: job.cloneUrl ?? repo.cloneUrl,
      ref: job.ref, erlVersion: job.erlVersion ?? release, timeoutS: 120,
    }),
    ENOT_SCRIPTS: SCRIPTS,
    ENOT_WORK_DIR: join(dir, 'work'),
    ENOT_OUT_DIR: outDir,
    ENOT_SANDBOX: 'auto',
  };
  let preBuildOk = true;
  for (const phase of ['pre_build', 'build', 'post_build']) {
    if (phase === 'build' && !preBuildOk) continue;
    for (const command of buildspec.phases[phase]?.commands ?? []) {
      if ((await bash(command, env, dir)) !== 0) {
        if (phase === 'pre_build') preBuildOk = false;
        break;
      }
    }
  }
  const result = parseBuildResult(readFileSync(join(outDir, BUILD_OUTPUT.result), 'utf8'));
  if (!result) throw new Error('result.json does not match the contract');
  return { result, log: readFileSync(join(outDir, BUILD_OUTPUT.log), 'utf8'), outDir };
}

describe('refs at build time', () => {
  it('fails a branch: "ref master is a branch, not a tag", and builds nothing', async () => {
    const run = await runBuild({ ref: 'master' });
    expect(run.result).toMatchObject({ status: 'failed', failure: 'ref', message: 'ref master is a branch, not a tag' });
    expect(run.log).toContain('==> compile: skipped');
    expect(existsSync(join(run.outDir, BUILD_OUTPUT.artifact))).toBe(false);
  });

  it('builds a name that is both a branch and a tag as the tag', async () => {
    const run = await runBuild({ ref: 'both' });
    expect(run.result).toMatchObject({ status: 'succeeded', commitSha: tagSha });
    expect(run.log).toContain('both names a branch and a tag: building the tag');
    const entries = await readEpEntries(join(run.outDir, BUILD_OUTPUT.artifact));
    expect(entries).toContain('ebin/refs_lib.beam');
    expect(entries.some((e) => e.includes('refs_lib_broken'))).toBe(false);
  });

  it('builds a tag as before', async () => {
    const run = await runBuild({ ref: '1.0.0' });
    expect(run.result).toMatchObject({ status: 'succeeded', commitSha: tagSha });
    expect(run.log).not.toContain('names a branch and a tag');
  });

  it.each([
    ['HEAD', 'must be a git tag, not HEAD'],
    ['a.lock', 'must be a git tag: git refuses a tag name that ends with .lock'],
    ['1.0.', 'must be a git tag: git refuses a tag name that ends with .'],
  ])('refuses ref %j before git runs', async (ref, problem) => {
    const run = await runBuild({ ref });
    expect(run.result).toMatchObject({ status: 'failed', failure: 'ref', message: `refusing ref ${JSON.stringify(ref)}: ${problem}` });
    expect(run.log).not.toContain('git clone');
  });

  it.each(['25.0.0.0', '00000000000000000025', '025'])('refuses release %j in another spelling', async (erlVersion) => {
    const run = await runBuild({ ref: '1.0.0', erlVersion });
    expect(run.result).toMatchObject({ status: 'failed', failure: 'release' });
    expect(run.result.message).toMatch(/^refusing OTP release .*no leading zeros, at most three parts\)$/);
  });

  it('refuses a clone URL whose escapes git would decode into another path', async () => {
    const parent = join(repo.dir, '..');
    const run = await runBuild({ ref: '1.0.0', cloneUrl: `file://${parent}/x/..%2F${repo.name}` });
    expect(run.result).toMatchObject({ status: 'failed', failure: 'clone' });
    expect(run.result.message).toMatch(/: must not contain \.\. path segments \(also percent-encoded\)$/);
    expect(run.log).not.toContain('git clone');
  });
});
