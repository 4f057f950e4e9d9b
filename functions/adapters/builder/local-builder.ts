// The local Builder: replays buildspec/buildspec.yml's phases in one detached bash process per build, in a fresh
// scratch directory, with a scrubbed environment and a time limit, then uploads what the build left and reports
// its end. The build itself (buildspec/*.mjs) is the same code CodeBuild runs; only the runner differs.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BUILD_OUTPUT, buildBlobKeys, buildEnvironment, dependencyEnvironment, parseBuildResult, type DependencyPolicy, type BuildEnded, type BuilderState, type BuildResult,
} from '#core/build-contract.js';
import type { BlobStore, Builder, BuildJob, Log } from '#core/ports.js';
import { parseBuildspec, phaseScript, type Buildspec } from './buildspec-phases.js';
import { endProcessTree, signalProcessTree } from './process-tree.js';
import { HealthProblem } from '#core/errors.js';
import { BUILD_LIMIT_DEFAULTS, RUNNER_ENV, type BuildLimits } from '#core/build-contract.js';

/** The Erlang/OTP installed here, as the builder needs it (functions/local/local-erlang.ts detects it). */
export interface LocalOtpInfo {
  /** The OTP release, e.g. "25". */
  release: string;
  /** The installation's root directory (code:root_dir()); its bin/ goes first on the build's PATH. */
  root: string;
  /** The full OTP version ("25.2.3"), when known; the build then takes it as is. */
  version?: string;
}

export interface LocalBuilderOptions {
  blobs: BlobStore;
  /** Where scratch directories go: `<dataDir>/builds`. */
  buildsDir: string;
  /** Called once per build that ran to its end (not for builds stopped by stopAll()). */
  onEnded: (ended: BuildEnded) => Promise<void> | void;
  /** The installed OTP; null: there is none, and every build fails at once with a log saying so. */
  otp: LocalOtpInfo | null;
  sandbox: 'auto' | 'off';
  logMaxBytes: number;
  /** The sandbox's per-build limits; unset: BUILD_LIMIT_DEFAULTS. */
  limits?: BuildLimits;
  cloneRewrite?: { prefix: string; replacement: string };
  /** What the deps step may fetch; unset: the build's defaults (github.com, repo.hex.pm). */
  dependencies?: DependencyPolicy;
  /** The directory of build scripts (ENOT_SCRIPTS); default: the repository's buildspec/. */
  scriptsDir?: string;
  /** The buildspec to replay; default: `<scriptsDir>/buildspec.yml`. */
  buildspecPath?: string;
  /** The build's PATH; default: the OTP's bin/, node's directory and the standard system directories. */
  path?: string;
  /** Between SIGTERM and SIGKILL when a build is cut off. */
  killGraceMs?: number;
  /** Where a problem that must not fail the build's report (an output not stored, a directory left) is reported. */
  log?: Log;
}

/** How the package's code runs here: `off` only when configured so; `unavailable` refuses every build. */
export interface SandboxStatus {
  mode: 'bubblewrap' | 'off' | 'unavailable';
  /** The line every build log carries. */
  reason: string;
}

/** Scratch directories are named `<build id>-XXXXXX` under buildsDir. */
const SCRATCH_NAME = /^[0-9a-f-]{36}-[A-Za-z0-9]{6}$/;
const SYSTEM_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
/** What the runner keeps of its own output for a build that ended without a result. */
const RUNNER_TAIL_BYTES = 8 * 1024;

export const NO_ERLANG_MESSAGE = 'no Erlang/OTP installed on this machine (install it so that `erl` is on PATH, then restart the service)';

/**
 * The repository's buildspec/ directory: the nearest one holding buildspec.yml above this module. Found by
 * walking up rather than by a fixed relative path, so it holds under tsx, vitest and a bundled file alike.
 */
export function defaultScriptsDir(from: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = resolve(from);
  for (;;) {
    const candidate = join(dir, 'buildspec');
    if (existsSync(join(candidate, 'buildspec.yml'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no buildspec/buildspec.yml above ${from}`);
    dir = parent;
  }
}

interface Run {
  job: BuildJob;
  scratch: string;
  child: ChildProcess;
  timer?: NodeJS.Timeout;
  timedOut: boolean;
  /** Stopped by stopAll(): nothing is uploaded or reported. */
  stopped: boolean;
  exited: Promise<number | null>;
  /** Resolves once the run is over and its scratch dir removed (and onEnded called, unless stopped). */
  done: Promise<void>;
}

export class LocalBuilder implements Builder {
  private readonly runs = new Map<string, Run>();
  /** Builds this machine cannot run, being reported as failed. */
  private readonly refusals = new Set<Promise<void>>();
  private readonly scriptsDir: string;
  private readonly buildspecPath: string;
  private readonly searchPath: string;
  private readonly killGraceMs: number;
  private stopping = false;
  private sandboxProbe?: Promise<SandboxStatus>;

  constructor(private readonly options: LocalBuilderOptions) {
    this.scriptsDir = resolve(options.scriptsDir ?? defaultScriptsDir());
    this.buildspecPath = resolve(options.buildspecPath ?? join(this.scriptsDir, 'buildspec.yml'));
    this.searchPath = options.path ?? [
      ...(options.otp ? [join(options.otp.root, 'bin')] : []),
      dirname(process.execPath),
      ...SYSTEM_PATH,
    ].filter((d, i, all) => all.indexOf(d) === i).join(':');
    this.killGraceMs = options.killGraceMs ?? 3000;
  }

  /** GET /health: this machine can build when an Erlang/OTP was found and the builder is not shutting down. */
  async check(): Promise<void> {
    if (!this.options.otp) throw new HealthProblem('NoErlang', NO_ERLANG_MESSAGE);
    if (this.stopping) throw new HealthProblem('Stopping', 'the local builder is shutting down');
    const sandbox = await this.sandboxStatus();
    if (sandbox.mode === 'unavailable') throw new HealthProblem('NoSandbox', sandbox.reason);
  }

  /**
   * Whether builds here run in the sandbox, as a build's own check step finds it (buildspec/probe-sandbox.mjs, once
   * per builder): `unavailable` means every build is refused until bubblewrap works or ENOT_SANDBOX=off is set.
   */
  sandboxStatus(): Promise<SandboxStatus> {
    this.sandboxProbe ??= this.probeSandbox();
    return this.sandboxProbe;
  }

  private async probeSandbox(): Promise<SandboxStatus> {
    await mkdir(this.options.buildsDir, { recursive: true });
    const work = await mkdtemp(join(resolve(this.options.buildsDir), 'sandbox-probe-'));
    const env = { PATH: this.searchPath, LANG: 'C.UTF-8', ENOT_WORK_DIR: work, ...this.limitEnvironment() };
    try {
      const stdout = await new Promise<string>((resolveRun, reject) => {
        execFile(process.execPath, [join(this.scriptsDir, 'probe-sandbox.mjs')], { env, timeout: 60_000 }, (error, out, err) => {
          if (error) reject(new Error(`${error.message} ${String(err).trim()}`.trim()));
          else resolveRun(String(out));
        });
      });
      const parsed = JSON.parse(stdout.trim().split('\n').pop() ?? '') as SandboxStatus;
      return { mode: parsed.mode, reason: parsed.reason };
    } catch (error) {
      return { mode: 'unavailable', reason: `sandbox: unavailable (the probe failed: ${errorText(error)}); builds are refused here unless ENOT_SANDBOX=off is set` };
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  /** The sandbox's settings as the build reads them (RUNNER_ENV). */
  private limitEnvironment(): Record<string, string> {
    const limits = this.options.limits ?? BUILD_LIMIT_DEFAULTS;
    return {
      [RUNNER_ENV.sandbox]: this.options.sandbox,
      [RUNNER_ENV.memoryMb]: String(limits.memoryMb),
      [RUNNER_ENV.diskMb]: String(limits.diskMb),
      [RUNNER_ENV.maxProcesses]: String(limits.maxProcesses),
      [RUNNER_ENV.logLineMaxBytes]: String(limits.logLineMaxBytes),
    };
  }

  /** Builds running now (from start until their end has been reported). */
  active(): number {
    return this.runs.size + this.refusals.size;
  }

  async start(job: BuildJob): Promise<{ builderId: string }> {
    if (this.stopping) throw new Error('the local builder is shutting down');
    if (!this.options.otp) return this.refuse(job, NO_ERLANG_MESSAGE);
    if (this.runs.has(job.buildId)) throw new Error(`build ${job.buildId} is already running here`);
    // Read at every start: editing buildspec.yml takes effect with the next build, as on CodeBuild.
    const spec = parseBuildspec(await readFile(this.buildspecPath, 'utf8'));

    await mkdir(this.options.buildsDir, { recursive: true });
    const scratch = await mkdtemp(join(resolve(this.options.buildsDir), `${job.buildId}-`));
    let spawned: { child: ChildProcess; exited: Promise<number | null> };
    try {
      spawned = await this.spawnPhases(job, spec, scratch);
    } catch (error) {
      await rm(scratch, { recursive: true, force: true });
      throw error;
    }
    const { child, exited } = spawned;

    const run: Run = { job, scratch, child, timedOut: false, stopped: false, exited, done: Promise.resolve() };
    run.timer = setTimeout(() => {
      run.timedOut = true;
      void this.terminate(run);
    }, job.timeoutS * 1000);
    this.runs.set(job.buildId, run);
    run.done = this.finish(run);
    return { builderId: builderIdOf(child) };
  }

  /** Prepares the scratch dir and starts the phases in a process group of their own; `exited` gives the exit code. */
  private async spawnPhases(
    job: BuildJob, spec: Buildspec, scratch: string,
  ): Promise<{ child: ChildProcess; exited: Promise<number | null> }> {
    const work = join(scratch, 'work');
    const out = join(scratch, 'out');
    const home = join(scratch, 'home');
    await Promise.all([mkdir(work), mkdir(out), mkdir(home)]);
    const script = join(scratch, 'phases.sh');
    await writeFile(script, phaseScript(spec, { watchdogParentPid: process.pid }), { mode: 0o600 });

    // Scrubbed: nothing of the service's own environment (database URL, AWS credentials, webhook secret).
    const env: Record<string, string> = {
      ...spec.variables,
      PATH: this.searchPath,
      HOME: home,
      LANG: 'C.UTF-8',
      ...buildEnvironment(job),
      ENOT_SCRIPTS: this.scriptsDir,
      ENOT_WORK_DIR: work,
      ENOT_OUT_DIR: out,
      ENOT_SANDBOX: this.options.sandbox,
      ENOT_LOG_MAX_BYTES: String(this.options.logMaxBytes),
      ...this.limitEnvironment(),
      ...(this.options.dependencies ? dependencyEnvironment(this.options.dependencies) : {}),
    };
    // The OTP detected here, named to the build: its release step need not start a VM to find it.
    const otp = this.options.otp;
    if (otp) {
      env.ENOT_OTP_ROOT = otp.root;
      if (otp.version) env.ENOT_OTP_VERSION = otp.version;
    }
    const rewrite = this.options.cloneRewrite;
    if (rewrite) env.ENOT_CLONE_REWRITE = `${rewrite.prefix}=${rewrite.replacement}`;

    const runnerLog = openSync(join(scratch, 'runner.log'), 'a');
    try {
      // Detached: its own process group (and session), so the whole build can be signalled at once.
      const child = spawn('bash', [script], { cwd: work, env, detached: true, stdio: ['ignore', runnerLog, runnerLog] });
      // Listened to at once: a failure to start is reported on the next tick.
      const exited = new Promise<number | null>((resolveExit) => {
        child.once('exit', (code) => resolveExit(code));
        child.once('error', () => resolveExit(null));
      });
      return { child, exited };
    } finally {
      closeSync(runnerLog);
    }
  }

  /** Kills every running build and waits until they are gone; their ends are not reported (the caller requeues them). */
  async stopAll(): Promise<void> {
    this.stopping = true;
    const runs = [...this.runs.values()];
    for (const run of runs) {
      run.stopped = true;
      void this.terminate(run);
    }
    await Promise.all([...runs.map((r) => r.done), ...this.refusals]);
  }

  /**
   * A build this machine cannot run ends at once as a failure of the package's release, the way the build
   * itself reports one: with a log and a result saying why, so the API, the log and the mail all tell.
   */
  private refuse(job: BuildJob, message: string): { builderId: string } {
    const builderId = `local:${process.pid}`;
    const keys = buildBlobKeys(job.buildId);
    const result: BuildResult = { buildId: job.buildId, status: 'failed', message, failure: 'release', availableReleases: [] };
    const refusal = (async () => {
      // After start() has returned, as a real build's end comes.
      await new Promise((r) => setImmediate(r));
      try {
        await this.options.blobs.put(keys.log, `${message}\n`, 'text/plain; charset=utf-8');
        await this.options.blobs.put(keys.result, JSON.stringify(result), 'application/json');
        await this.options.onEnded({ buildId: job.buildId, builderId, state: 'FAILED' });
      } catch (error) {
        this.options.log?.warn('a refused build could not be reported', { buildId: job.buildId, error: errorText(error) });
      }
    })();
    this.refusals.add(refusal);
    void refusal.finally(() => this.refusals.delete(refusal));
    return { builderId };
  }

  /**
   * Kills the processes of builds a previous run of the service left behind (found by their scratch dir under
   * buildsDir) and removes those scratch dirs. Call before the first build.
   */
  async removeLeftovers(): Promise<void> {
    const root = resolve(this.options.buildsDir);
    let names: string[];
    try {
      names = await readdir(root);
    } catch {
      return;
    }
    const ours = new Set([...this.runs.values()].map((r) => r.scratch));
    const leftovers = names.filter((n) => SCRATCH_NAME.test(n)).map((n) => join(root, n)).filter((d) => !ours.has(d));
    for (const dir of leftovers) await signalProcessTree({ dir }, 'SIGKILL');
    await Promise.all(leftovers.map((dir) => rm(dir, { recursive: true, force: true })));
  }

  /** Ends the build's processes: SIGTERM, then SIGKILL to whatever is left after the grace period. */
  private async terminate(run: Run): Promise<void> {
    await endProcessTree({ pgid: run.child.pid, dir: run.scratch }, this.killGraceMs);
  }

  private async finish(run: Run): Promise<void> {
    const code = await run.exited;
    clearTimeout(run.timer);
    // Whatever the build left running (a daemon a Makefile started) ends with it.
    await this.terminate(run);
    let ended: BuildEnded | undefined;
    if (!run.stopped) {
      try {
        ended = await this.collect(run, code);
      } catch (error) {
        this.warn('the end of a local build could not be read', run, error);
        ended = { buildId: run.job.buildId, builderId: builderIdOf(run.child), state: 'FAULT' };
      }
    }
    this.runs.delete(run.job.buildId);
    await this.removeScratch(run);
    if (!ended) return;
    try {
      await this.options.onEnded(ended);
    } catch (error) {
      this.warn('the end of a local build could not be reported', run, error);
    }
  }

  /** Uploads the build's files and decides how it ended. */
  private async collect(run: Run, code: number | null): Promise<BuildEnded> {
    const { job } = run;
    const out = join(run.scratch, 'out');
    const keys = buildBlobKeys(job.buildId);
    const builderId = builderIdOf(run.child);

    const resultText = await readOptional(join(out, BUILD_OUTPUT.result));
    const result = resultText ? parseBuildResult(resultText.toString('utf8')) : null;
    let state: BuilderState;
    if (run.timedOut) state = 'TIMED_OUT';
    else if (result) state = result.status === 'succeeded' ? 'SUCCEEDED' : 'FAILED';
    else state = 'FAULT';

    const notes: string[] = [];
    if (state === 'TIMED_OUT') notes.push(`[timed out after ${job.timeoutS} s]`);
    if (state === 'FAULT') notes.push(`[the build ended (exit status ${code ?? 'none'}) without a result.json]`);

    let log = await readOptional(join(out, BUILD_OUTPUT.log));
    const runner = (await readOptional(join(run.scratch, 'runner.log'))) ?? Buffer.alloc(0);
    if (!log) {
      log = runner;
    } else if (state === 'FAULT' && runner.length > 0) {
      // The build's own log says nothing of why it crashed; the runner's output (a stack trace) does.
      const tail = runner.subarray(Math.max(0, runner.length - RUNNER_TAIL_BYTES));
      log = Buffer.concat([log, Buffer.from('\n--- runner output (end) ---\n'), tail]);
    }
    const finalLog = withNotes(log, notes, this.options.logMaxBytes);

    try {
      const artifact = join(out, BUILD_OUTPUT.artifact);
      // A build cut off by its timeout may have left half a package: it is not kept.
      if (state !== 'TIMED_OUT' && existsSync(artifact)) await this.options.blobs.putFile(keys.artifact, artifact, 'application/x-tar');
      await this.options.blobs.put(keys.log, finalLog, 'text/plain; charset=utf-8');
      if (resultText) await this.options.blobs.put(keys.result, resultText, 'application/json');
    } catch (error) {
      this.warn('the outputs of a local build could not be stored', run, error);
      return { buildId: job.buildId, builderId, state: 'FAULT' };
    }
    return { buildId: job.buildId, builderId, state, ...(state === 'TIMED_OUT' ? { timeoutS: job.timeoutS } : {}) };
  }

  private async removeScratch(run: Run): Promise<void> {
    try {
      await rm(run.scratch, { recursive: true, force: true, maxRetries: 3 });
    } catch (error) {
      this.warn('a build scratch directory could not be removed', run, error);
    }
  }

  private warn(message: string, run: Run, error: unknown): void {
    this.options.log?.warn(message, { buildId: run.job.buildId, error: errorText(error) });
  }
}

/**
 * The log with the runner's notes at its end, within `max` bytes: when it would not fit, the log is cut (at a
 * character boundary) and says so before the notes. A log the build already cut at `max` is not cut twice.
 */
export function withNotes(log: Buffer, notes: readonly string[], max: number): Buffer {
  const truncation = Buffer.from(`[log truncated at ${max} bytes]\n`);
  const cutByBuild = log.length >= truncation.length && log.subarray(log.length - truncation.length).equals(truncation);
  const body = cutByBuild ? log.subarray(0, log.length - truncation.length) : log;
  const noteText = notes.length === 0 ? '' : `${notes.join('\n')}\n`;
  const newline = (b: Buffer) => (b.length > 0 && b[b.length - 1] !== 0x0a ? '\n' : '');
  if (!cutByBuild) {
    const whole = Buffer.concat([body, Buffer.from(noteText ? newline(body) + noteText : '')]);
    if (whole.length <= max) return whole;
  }
  const tail = Buffer.concat([truncation, Buffer.from(noteText)]);
  let cut = Math.max(0, Math.min(body.length, max - tail.length - 1));
  while (cut > 0 && (body[cut] & 0xc0) === 0x80) cut--;
  const head = body.subarray(0, cut);
  return Buffer.concat([head, Buffer.from(newline(head)), tail]);
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The builder's id for a build: the pid of its process (the leader of its process group). */
function builderIdOf(child: ChildProcess): string {
  return `local:${child.pid ?? process.pid}`;
}

async function readOptional(path: string): Promise<Buffer | null> {
  try {
    return await readFile(path);
  } catch {
    return null;
  }
}
