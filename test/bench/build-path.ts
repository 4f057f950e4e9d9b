// The build path (request -> queue -> build -> artifact), measured in one run on this machine: the local
// server with its local builds, as `npm start` runs them, building a small library tag after tag, against
// the same library compiled by `erlc` alone; and the answer time of a repeated request (build once).
// Runs inside `npm run bench`; `npx tsx test/bench/build-path.ts [--quick]` runs this section alone.
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { cpus, devNull, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import { LocalBuildQueue } from '#adapters/queue/local-build-queue.js';
import { defaultScriptsDir } from '#adapters/builder/local-builder.js';
import { loadConfig } from '#functions/config.js';
import { BUILD_LIMIT_DEFAULTS } from '#core/build-contract.js';
import type { Log } from '#core/ports.js';
import { startLocalBuilds, type LocalBuilds } from '#functions/local/build-worker.js';
import { detectLocalOtp, type LocalOtp } from '#functions/local/local-erlang.js';
import { startLocalServer, type LocalServer } from '#functions/local/server.js';
import { buildDeps, type Deps } from '#functions/wiring.js';
import { createTestDatabase, type TestDatabase } from '#support/databases.js';
import { gitRepo, type ErlangRepo } from '#support/erlang-repos.js';

const run = promisify(execFile);

export interface BuildPathSizes {
  /** Timed runs of each baseline (erl, node, erlc) and timed builds, each after one untimed warm-up. */
  repetitions: number;
  /** Timed repeated requests, after `warmupRequests` untimed ones. */
  requests: number;
  warmupRequests: number;
}

export const BUILD_PATH_SIZES: Record<'full' | 'quick', BuildPathSizes> = {
  full: { repetitions: 7, requests: 300, warmupRequests: 20 },
  quick: { repetitions: 2, requests: 150, warmupRequests: 10 },
};

/** Sequential timings of one thing, in ms. */
export interface Timing {
  n: number;
  medianMs: number;
  minMs: number;
  maxMs: number;
  p99Ms: number;
}

/** One build step's share of the build (from the timestamps the instrumented buildspec writes), medians in ms. */
export interface StepTiming {
  step: string;
  medianMs: number;
}

export interface BuildPathMeasured {
  measured: true;
  database: 'PGlite' | 'Postgres';
  otp: string;
  /** The build log's sandbox line, e.g. "sandbox: bubblewrap, ...". */
  sandbox: string;
  fixture: { name: string; modules: number; sourceLines: number };
  pollMs: number;
  /** The 1-minute load average when the section started, and the cores: the machine may be shared. */
  loadAverage: number;
  cpus: number;
  /** `erl -noshell -eval 'halt().'`: what every step that starts the VM pays. */
  erlStart: Timing;
  /** `node -e 0`: what every build step pays (one node process per step). */
  nodeStart: Timing;
  /** `erlc +debug_info -o ebin src/*.erl` in a clone. */
  rawCompile: Timing;
  /**
   * The compile step's commands run alone in a clone, as the step runs them: its helper escript compiling src/
   * (without and with the sandbox), the sandbox probe, and the helper writing the .app. Sandbox rows are absent
   * where bubblewrap does not work.
   */
  compilePieces: { helperCompile: Timing; sandboxProbe?: Timing; sandboxedCompile?: Timing; helperApp: Timing };
  /** POST /buildAsync of a new tag until GET /download/<id> has answered 200 with the package. */
  build: Timing;
  /** median(build) - median(rawCompile). */
  overheadMs: number;
  /** median(build) / median(rawCompile). */
  ratio: number;
  /** Medians in ms of the build's parts, in order: request to start, each step, between steps, end to download. */
  parts: {
    /** created -> claimed by the worker (the store's timestamps). */
    queuedMs: number;
    /** The request sent -> the first step starts (request, queue, claim, scratch dir, bash). */
    toFirstStepMs: number;
    steps: StepTiming[];
    /** Sum of the gaps between one step's end and the next one's start (bash, the phase script). */
    betweenStepsMs: number;
    /** The last step's end -> the build recorded finished (the runner's end: leftovers killed, outputs stored, result recorded). */
    toFinishedMs: number;
    /** Recorded finished -> the download answered (the next poll, /builds, the download). */
    toDownloadMs: number;
  };
  /** POST /buildAsync repeated, same body, for a version already built. */
  repeatBuilt: Timing;
  /** The same for a version whose build is queued (the worker stopped). */
  repeatQueued: Timing;
  /** POST /versions of the same package on the same server: the baseline of a small read. */
  versions: Timing;
}

export type BuildPathResult = BuildPathMeasured | { measured: false; note: string };

export interface BuildPathOptions {
  sizes: BuildPathSizes;
  log?: (line: string) => void;
  /**
   * Registers what must go even when the run is stopped before this returns (the caller's Ctrl-C handler);
   * each is safe to run after this has cleaned up itself.
   */
  onCleanup?: (name: string, fn: () => Promise<void>) => void;
}

const POLL_MS = 20;
const BUILD_DEADLINE_MS = 120_000;
const FIXTURE_NAME = 'bench_lib';
/** bash's $EPOCHREALTIME is a builtin: the timestamps cost no process. */
const MARKS_VARIABLE = 'ENOT_BENCH_MARKS';

// --- the fixture: five modules of an ordinary OTP library ---

const FIXTURE_FILES: Record<string, string> = {
  [`src/${FIXTURE_NAME}.app.src`]: `{application, ${FIXTURE_NAME},
 [{description, "benchmark fixture library"},
  {vsn, git},
  {registered, [${FIXTURE_NAME}_server]},
  {mod, {${FIXTURE_NAME}, []}},
  {applications, [kernel, stdlib]},
  {env, []}]}.
`,
  [`src/${FIXTURE_NAME}.erl`]: `-module(${FIXTURE_NAME}).
-behaviour(application).
-export([start/2, stop/1, put/2, get/1, encode/1, decode/1]).

start(_Type, _Args) -> ${FIXTURE_NAME}_sup:start_link().
stop(_State) -> ok.

put(Key, Value) -> ${FIXTURE_NAME}_server:put(Key, Value).
get(Key) -> ${FIXTURE_NAME}_server:get(Key).

encode(Term) -> ${FIXTURE_NAME}_codec:encode(Term).
decode(Bin) -> ${FIXTURE_NAME}_codec:decode(Bin).
`,
  [`src/${FIXTURE_NAME}_sup.erl`]: `-module(${FIXTURE_NAME}_sup).
-behaviour(supervisor).
-export([start_link/0, init/1]).

start_link() -> supervisor:start_link({local, ?MODULE}, ?MODULE, []).

init([]) ->
    Server = #{id => ${FIXTURE_NAME}_server,
               start => {${FIXTURE_NAME}_server, start_link, []},
               restart => permanent, shutdown => 5000, type => worker},
    {ok, {#{strategy => one_for_one, intensity => 5, period => 10}, [Server]}}.
`,
  [`src/${FIXTURE_NAME}_server.erl`]: `-module(${FIXTURE_NAME}_server).
-behaviour(gen_server).
-export([start_link/0, put/2, get/1, size/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2, code_change/3]).

-record(state, {table = #{} :: map(), writes = 0 :: non_neg_integer()}).

start_link() -> gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

put(Key, Value) -> gen_server:call(?MODULE, {put, Key, Value}).
get(Key) -> gen_server:call(?MODULE, {get, Key}).
size() -> gen_server:call(?MODULE, size).

init([]) -> {ok, #state{}}.

handle_call({put, Key, Value}, _From, State = #state{table = T, writes = W}) ->
    {reply, ok, State#state{table = maps:put(Key, Value, T), writes = W + 1}};
handle_call({get, Key}, _From, State = #state{table = T}) ->
    {reply, maps:find(Key, T), State};
handle_call(size, _From, State = #state{table = T}) ->
    {reply, maps:size(T), State};
handle_call(_Other, _From, State) ->
    {reply, {error, unknown_call}, State}.

handle_cast(_Msg, State) -> {noreply, State}.
handle_info(_Info, State) -> {noreply, State}.
terminate(_Reason, _State) -> ok.
code_change(_OldVsn, State, _Extra) -> {ok, State}.
`,
  [`src/${FIXTURE_NAME}_codec.erl`]: `-module(${FIXTURE_NAME}_codec).
-export([encode/1, decode/1]).

%% A small tagged binary format: integers, binaries, lists and tuples.
encode(I) when is_integer(I) -> <<1, I:64/signed>>;
encode(B) when is_binary(B) -> <<2, (byte_size(B)):32, B/binary>>;
encode(L) when is_list(L) -> iolist_to_binary([<<3, (length(L)):32>> | [encode(E) || E <- L]]);
encode(T) when is_tuple(T) -> iolist_to_binary([<<4, (tuple_size(T)):8>> | [encode(E) || E <- tuple_to_list(T)]]).

decode(Bin) ->
    {Term, <<>>} = decode_one(Bin),
    Term.

decode_one(<<1, I:64/signed, Rest/binary>>) -> {I, Rest};
decode_one(<<2, N:32, B:N/binary, Rest/binary>>) -> {B, Rest};
decode_one(<<3, N:32, Rest/binary>>) -> decode_many(N, Rest, []);
decode_one(<<4, N:8, Rest/binary>>) ->
    {Elements, Rest1} = decode_many(N, Rest, []),
    {list_to_tuple(Elements), Rest1}.

decode_many(0, Rest, Acc) -> {lists:reverse(Acc), Rest};
decode_many(N, Bin, Acc) ->
    {Term, Rest} = decode_one(Bin),
    decode_many(N - 1, Rest, [Term | Acc]).
`,
  [`src/${FIXTURE_NAME}_util.erl`]: `-module(${FIXTURE_NAME}_util).
-export([chunks/2, join/2, trim/1, frequencies/1]).

chunks(_N, []) -> [];
chunks(N, L) when length(L) =< N -> [L];
chunks(N, L) ->
    {Chunk, Rest} = lists:split(N, L),
    [Chunk | chunks(N, Rest)].

join(_Sep, []) -> [];
join(Sep, [H | T]) -> lists:flatten([H | [[Sep, E] || E <- T]]).

trim(S) -> string:trim(S, both, " \\t\\n").

frequencies(L) ->
    lists:foldl(fun(E, Acc) -> maps:update_with(E, fun(C) -> C + 1 end, 1, Acc) end, #{}, L).
`,
  'README.md': `# ${FIXTURE_NAME}\n`,
};

// --- statistics ---

function sorted(values: number[]): number[] {
  return [...values].sort((a, b) => a - b);
}

function median(values: number[]): number {
  const s = sorted(values);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Nearest-rank percentile. */
function percentile(values: number[], p: number): number {
  const s = sorted(values);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

function timing(values: number[]): Timing {
  const s = sorted(values);
  return { n: s.length, medianMs: median(s), minMs: s[0] ?? NaN, maxMs: s[s.length - 1] ?? NaN, p99Ms: percentile(s, 99) };
}

/** Wall-clock time in ms with sub-millisecond resolution (comparable with bash's $EPOCHREALTIME). */
function wallMs(): number {
  return performance.timeOrigin + performance.now();
}

/** One untimed run, then `n` timed ones, one after the other. */
async function repeat(n: number, fn: () => Promise<unknown>): Promise<number[]> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  return times;
}

// --- the instrumented buildspec ---

/**
 * A copy of buildspec.yml whose every command appends a start and an end timestamp (with the command's step name)
 * to `$ENOT_BENCH_MARKS/$ENOT_BUILD_ID`, outside the build's own files. Derived from the real one at each run,
 * so it follows it; the commands themselves are unchanged.
 */
async function instrumentedBuildspec(dir: string, marksDir: string): Promise<string> {
  const source = join(defaultScriptsDir(), 'buildspec.yml');
  const doc = parse(await readFile(source, 'utf8')) as {
    env?: { variables?: Record<string, string> };
    phases: Record<string, { commands?: string[] }>;
  };
  doc.env = { ...doc.env, variables: { ...doc.env?.variables, [MARKS_VARIABLE]: marksDir } };
  let index = 0;
  for (const phase of Object.values(doc.phases)) {
    if (!phase?.commands) continue;
    phase.commands = phase.commands.map((command) => {
      // `node build.mjs check clone release` is one process running three steps: named check+clone+release.
      const step = /build\.mjs"?((?:\s+[a-z_-]+)+)\s*$/.exec(command)?.[1].trim().split(/\s+/).join('+') ?? `command_${index}`;
      index++;
      const mark = (what: string) => `printf '%s ${what} ${step}\\n' "$EPOCHREALTIME" >> "$${MARKS_VARIABLE}/$ENOT_BUILD_ID"`;
      return `${mark('start')}; ${command}; __bench_rc=$?; ${mark('end')}; (exit $__bench_rc)`;
    });
  }
  const file = join(dir, 'buildspec.yml');
  await writeFile(file, stringify(doc));
  return file;
}

interface Mark {
  atMs: number;
  what: 'start' | 'end';
  step: string;
}

async function readMarks(marksDir: string, buildId: string): Promise<Mark[]> {
  const text = await readFile(join(marksDir, buildId), 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).map((line) => {
    const [at, what, step] = line.split(' ');
    return { atMs: Number(at) * 1000, what: what as Mark['what'], step };
  }).filter((m) => Number.isFinite(m.atMs));
}

// --- the compile step, piece by piece ---

/** The runner's settings as buildspec/sandbox.mjs reads them (the parts it reads). */
interface SandboxSettings {
  job: { buildId: string; timeoutS: number };
  sandbox: 'auto';
  basePath: string;
  stateDir: string;
  workDir: string;
  repoDir: string;
  homeDir: string;
  logMaxBytes: number;
  limits: typeof BUILD_LIMIT_DEFAULTS;
}

interface BuildScripts {
  helper: string;
  probeSandbox(settings: SandboxSettings): { mode: string; uid: number };
  prepareForUid(settings: SandboxSettings, uid: number): void;
  sandboxedCommand(settings: SandboxSettings, how: { uid: number; cwd: string; readOnly?: string[] }, command: string, args: string[]): { command: string; args: string[] };
}

/** What the compile step uses, from the build scripts themselves (plain .mjs, hence loaded by path). */
async function buildScripts(): Promise<BuildScripts> {
  const dir = defaultScriptsDir();
  const erlang = (await import(pathToFileURL(join(dir, 'erlang.mjs')).href)) as { HELPER_ESCRIPT: string };
  const sandbox = (await import(pathToFileURL(join(dir, 'sandbox.mjs')).href)) as Omit<BuildScripts, 'helper'>;
  return { helper: erlang.HELPER_ESCRIPT, ...sandbox };
}

async function measureCompilePieces(sizes: BuildPathSizes, otp: LocalOtp, root: string, clone: string): Promise<BuildPathMeasured['compilePieces']> {
  const scripts = await buildScripts();
  const helper = join(root, 'helper.escript');
  await writeFile(helper, scripts.helper);
  const home = join(root, 'home');
  const libs = join(home, '.enot-libs');
  await mkdir(libs, { recursive: true });
  await symlink(clone, join(libs, FIXTURE_NAME));
  const escript = join(otp.root, 'bin', 'escript');
  const env = { env: { PATH: `${join(otp.root, 'bin')}:${process.env.PATH ?? ''}`, HOME: home }, cwd: clone };
  const compileArgs = [helper, 'compile', 'src', 'ebin', 'include', join(libs, FIXTURE_NAME, 'ebin')];
  const fresh = () => rm(join(clone, 'ebin'), { recursive: true, force: true });

  const helperCompile = timing(await repeat(sizes.repetitions, async () => {
    await fresh();
    await run(escript, compileArgs, env);
  }));
  const helperApp = timing(await repeat(sizes.repetitions, () =>
    run(escript, [helper, 'app', join('src', `${FIXTURE_NAME}.app.src`), 'ebin', '1.0.0', FIXTURE_NAME, join(root, 'generated.app')], env)));

  // The sandbox as the compile step runs it: the clone and HOME under a work dir that becomes a size-limited tmpfs.
  const workDir = join(root, 'sandboxed');
  const settings: SandboxSettings = {
    job: { buildId: 'bench', timeoutS: 120 }, sandbox: 'auto', basePath: process.env.PATH ?? '/usr/bin:/bin',
    stateDir: join(root, 'sandbox-state'), workDir, repoDir: join(workDir, 'repo'), homeDir: join(workDir, 'home'),
    logMaxBytes: 1024 * 1024, limits: BUILD_LIMIT_DEFAULTS,
  };
  for (const dir of [settings.stateDir, join(workDir, 'tmp'), settings.homeDir]) await mkdir(dir, { recursive: true });
  await cp(clone, settings.repoDir, { recursive: true });
  const probe = scripts.probeSandbox(settings);
  if (probe.mode !== 'bubblewrap') return { helperCompile, helperApp };
  scripts.prepareForUid(settings, probe.uid);
  const sandboxed = (command: string, args: string[]) => {
    const wrapped = scripts.sandboxedCommand(settings, { uid: probe.uid, cwd: settings.repoDir, readOnly: [helper, otp.root] }, command, args);
    return run(wrapped.command, wrapped.args, { env: env.env, cwd: settings.repoDir });
  };
  const sandboxedArgs = [helper, 'compile', 'src', 'ebin', 'include', join(settings.repoDir, 'ebin')];
  const sandboxProbe = timing(await repeat(sizes.repetitions, () => sandboxed('true', [])));
  const sandboxedCompile = timing(await repeat(sizes.repetitions, () => sandboxed(escript, sandboxedArgs)));
  return { helperCompile, sandboxProbe, sandboxedCompile, helperApp };
}

// --- the server and its builds ---

interface Running {
  deps: Deps;
  server: LocalServer;
  builds: LocalBuilds;
  warnings: string[];
}

async function api<T>(base: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const res = await fetch(base + path, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${method} ${path} answered ${res.status}: ${text.slice(0, 300)}`);
  return (JSON.parse(text) as { response: T }).response;
}

interface RequestedBuild { build_id: string; status: string }
interface BuildAnswer { versions: { builds: RequestedBuild[] }[] }

function buildBody(repo: ErlangRepo, ref: string) {
  return { full_name: repo.fullName, clone_url: repo.cloneUrl, versions: [{ ref }], notify_email: false };
}

/** Requests a build of `ref` and waits until its package downloads; returns the build id and the request's wall time. */
async function buildAndDownload(running: Running, repo: ErlangRepo, ref: string): Promise<{ id: string; sentAt: number; ms: number }> {
  const base = running.server.url;
  const sentAt = wallMs();
  const t = performance.now();
  const answer = await api<BuildAnswer>(base, 'POST', '/buildAsync', buildBody(repo, ref));
  const id = answer.versions[0].builds[0].build_id;
  const deadline = Date.now() + BUILD_DEADLINE_MS;
  for (let polls = 1; ; polls++) {
    const listed = await api<{ build_id: string }[]>(base, 'POST', '/builds', { full_name: repo.fullName, versions: { ref } });
    if (listed.some((b) => b.build_id === id)) break;
    // A failed build never shows in /builds: look at it now and then, and say why it failed.
    if (polls % 25 === 0 || Date.now() > deadline) {
      const build = await running.deps.store.getBuild(id);
      if (build?.status === 'failed' || Date.now() > deadline) {
        const log = await fetch(`${base}/build_log?build_id=${id}`).then((r) => r.text()).catch(() => '');
        throw new Error(`build ${id} of ${ref} ${build?.status === 'failed' ? `failed: ${build.message}` : 'did not finish in time'}\n`
          + `${log.slice(-2000)}${running.warnings.length ? `\nworker: ${running.warnings.join('; ')}` : ''}`);
      }
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  const res = await fetch(`${base}/download/${id}`);
  const bytes = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200 || bytes.length === 0) throw new Error(`GET /download/${id} answered ${res.status} with ${bytes.length} bytes`);
  return { id, sentAt, ms: performance.now() - t };
}

/** Sequential answer times of one request, after a warm-up. */
async function answerTimes(base: string, path: string, body: unknown, sizes: BuildPathSizes, check: (answer: unknown) => void): Promise<Timing> {
  const once = async () => check(await api<unknown>(base, 'POST', path, body));
  for (let i = 0; i < sizes.warmupRequests; i++) await once();
  const times: number[] = [];
  for (let i = 0; i < sizes.requests; i++) {
    const t = performance.now();
    await once();
    times.push(performance.now() - t);
  }
  return timing(times);
}

function sameBuild(id: string, status: string): (answer: unknown) => void {
  return (answer) => {
    const build = (answer as BuildAnswer).versions[0].builds[0];
    if (build.build_id !== id || build.status !== status) {
      throw new Error(`a repeated request answered build ${build.build_id} (${build.status}), not ${id} (${status})`);
    }
  };
}

// --- the measurement ---

export async function measureBuildPath(options: BuildPathOptions): Promise<BuildPathResult> {
  const say = options.log ?? (() => {});
  const otp = await detectLocalOtp();
  if (!otp) return { measured: false, note: 'not measured: no Erlang/OTP here (erl on PATH)' };
  try {
    return await measure(options.sizes, otp, say, options.onCleanup ?? (() => {}));
  } catch (error) {
    // The last section of a long run: its failure is reported, not allowed to lose the rest.
    say(`  build path failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
    return { measured: false, note: `not measured: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}` };
  }
}

async function measure(
  sizes: BuildPathSizes, otp: LocalOtp, say: (line: string) => void, onCleanup: NonNullable<BuildPathOptions['onCleanup']>,
): Promise<BuildPathMeasured> {
  const loadAverage = loadavg()[0];
  const root = await mkdtemp(join(tmpdir(), 'enot-bench-build-'));
  onCleanup('remove the build path\'s temp dir', () => rm(root, { recursive: true, force: true }));
  let repo: ErlangRepo | undefined;
  let database: TestDatabase | undefined;
  let running: Running | undefined;
  try {
    repo = await gitRepo(FIXTURE_NAME, '1.0.0', FIXTURE_FILES);
    onCleanup('remove the build path\'s fixture repository', repo.cleanup);
    const fixture = repo;
    const tags = Array.from({ length: sizes.repetitions }, (_, i) => `1.0.${i + 1}`);
    const queuedTag = '1.1.0';
    for (const tag of [...tags, queuedTag]) {
      await run('git', ['-c', 'tag.gpgSign=false', 'tag', tag], { cwd: fixture.dir, env: { PATH: process.env.PATH, HOME: root, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: devNull } });
    }
    const sources = Object.entries(FIXTURE_FILES).filter(([path]) => path.endsWith('.erl'));
    const fixtureInfo = {
      name: FIXTURE_NAME,
      modules: sources.length,
      sourceLines: sources.reduce((n, [, text]) => n + text.split('\n').length - 1, 0),
    };

    // Baselines: the VM's and node's start, and the compile alone.
    // A bare environment, as the build steps get: no loader options of this process's own.
    const bare = { env: { PATH: process.env.PATH, HOME: root } };
    const erlStart = timing(await repeat(sizes.repetitions, () => run('erl', ['-noshell', '-eval', 'halt().'], bare)));
    const nodeStart = timing(await repeat(sizes.repetitions, () => run(process.execPath, ['-e', '0'], bare)));
    const clone = join(root, 'raw');
    await run('git', ['clone', '-q', '--depth', '1', '--branch', '1.0.0', '--', fixture.cloneUrl, clone]);
    const erlFiles = (await readdir(join(clone, 'src'))).filter((f) => f.endsWith('.erl')).sort().map((f) => join('src', f));
    // With debug_info, as the build's compile has it.
    const rawCompile = timing(await repeat(sizes.repetitions, async () => {
      await rm(join(clone, 'ebin'), { recursive: true, force: true });
      await mkdir(join(clone, 'ebin'));
      await run('erlc', ['+debug_info', '-o', 'ebin', ...erlFiles], { ...bare, cwd: clone });
    }));
    const compilePieces = await measureCompilePieces(sizes, otp, root, clone);
    say(`  erl start ${erlStart.medianMs.toFixed(0)} ms, node start ${nodeStart.medianMs.toFixed(0)} ms, `
      + `erlc of ${fixtureInfo.modules} modules ${rawCompile.medianMs.toFixed(0)} ms (medians of ${sizes.repetitions})`);

    // The local server with its builds, as `npm start` wires them, one build at a time.
    const dataDir = join(root, 'data');
    const marksDir = join(root, 'marks');
    await mkdir(marksDir, { recursive: true });
    if (process.env.DATABASE_URL) {
      database = await createTestDatabase();
      onCleanup('drop the build path\'s database', database.drop);
    }
    const config = loadConfig({
      ENOT_DATA_DIR: dataDir,
      ENOT_LOG_LEVEL: 'silent',
      PORT: '0',
      ENOT_ALLOWED_CLONE_URLS: 'file://',
      ENOT_BUILD_CONCURRENCY: '1',
      ENOT_BUILD_TIMEOUT_S: '120',
      ENOT_DEFAULT_ERL_VERSION: otp.release,
      // Repeated builds from one address: counted, never refused.
      ENOT_BUILD_REQUESTS_PER_HOUR: '1000000', ENOT_READ_REQUESTS_PER_MINUTE: '1000000000',
      ...(database ? { DATABASE_URL: database.url } : {}),
    });
    const deps = await buildDeps(config);
    const warnings: string[] = [];
    const workerLog: Log = {
      info() {},
      warn: (message, attributes) => warnings.push(`${message} ${JSON.stringify(attributes ?? {})}`),
      error: (message, error, attributes) => warnings.push(`${message} ${String(error)} ${JSON.stringify(attributes ?? {})}`),
    };
    if (!(deps.queue instanceof LocalBuildQueue)) throw new Error('the local service needs the local build queue');
    let builds: LocalBuilds;
    try {
      builds = await startLocalBuilds({
        deps, queue: deps.queue, otp, log: workerLog, buildspecPath: await instrumentedBuildspec(root, marksDir),
      });
    } catch (error) {
      await deps.store.close();
      throw error;
    }
    deps.builder = builds.builder;
    const server = await startLocalServer({ deps, port: 0 }).catch(async (error: unknown) => {
      await builds.stop();
      await deps.store.close();
      throw error;
    });
    running = { deps, server, builds, warnings };
    const base = server.url;
    const dbName = database ? 'Postgres' : 'PGlite';

    // One untimed build (first clone, first compile of the build scripts), then one per tag.
    const warm = await buildAndDownload(running, fixture, '1.0.0');
    const logText = await fetch(`${base}/build_log?build_id=${warm.id}`).then((r) => r.text());
    const sandbox = /^sandbox: .*$/m.exec(logText)?.[0] ?? 'sandbox: not reported';
    const samples: {
      ms: number; queuedMs: number; toFirstStepMs: number; steps: Map<string, number>; betweenMs: number; toFinishedMs: number; toDownloadMs: number;
    }[] = [];
    for (const tag of tags) {
      const done = await buildAndDownload(running, fixture, tag);
      const endedAt = done.sentAt + done.ms;
      const build = await deps.store.getBuild(done.id);
      const marks = await readMarks(marksDir, done.id);
      const steps = new Map<string, number>();
      let between = 0;
      let lastEnd: number | undefined;
      for (const mark of marks) {
        if (mark.what === 'start') {
          if (lastEnd !== undefined) between += mark.atMs - lastEnd;
          const end = marks.find((m) => m.what === 'end' && m.step === mark.step && m.atMs >= mark.atMs);
          if (end) steps.set(mark.step, (steps.get(mark.step) ?? 0) + end.atMs - mark.atMs);
        } else {
          lastEnd = mark.atMs;
        }
      }
      const queuedMs = build?.createdAt && build.startedAt ? build.startedAt.getTime() - build.createdAt.getTime() : NaN;
      const finishedAt = build?.finishedAt?.getTime() ?? NaN;
      samples.push({
        ms: done.ms,
        queuedMs,
        toFirstStepMs: marks.length > 0 ? marks[0].atMs - done.sentAt : NaN,
        steps,
        betweenMs: between,
        toFinishedMs: lastEnd !== undefined ? finishedAt - lastEnd : NaN,
        toDownloadMs: endedAt - finishedAt,
      });
      say(`  build ${tag}: ${done.ms.toFixed(0)} ms (${[...steps].map(([s, ms]) => `${s} ${ms.toFixed(0)}`).join(', ')})`);
    }
    const build = timing(samples.map((s) => s.ms));
    const stepNames = [...new Set(samples.flatMap((s) => [...s.steps.keys()]))];
    const parts = {
      queuedMs: median(samples.map((s) => s.queuedMs).filter(Number.isFinite)),
      toFirstStepMs: median(samples.map((s) => s.toFirstStepMs).filter(Number.isFinite)),
      steps: stepNames.map((step) => ({ step, medianMs: median(samples.map((s) => s.steps.get(step) ?? NaN).filter(Number.isFinite)) })),
      betweenStepsMs: median(samples.map((s) => s.betweenMs)),
      toFinishedMs: median(samples.map((s) => s.toFinishedMs).filter(Number.isFinite)),
      toDownloadMs: median(samples.map((s) => s.toDownloadMs).filter(Number.isFinite)),
    };

    // Build once: the same request again, for a built version; then POST /versions as the baseline.
    const repeatBuilt = await answerTimes(base, '/buildAsync', buildBody(fixture, '1.0.0'), sizes, sameBuild(warm.id, 'succeeded'));
    const versions = await answerTimes(base, '/versions', { full_name: fixture.fullName }, sizes, (answer) => {
      if (!Array.isArray(answer) || answer.length !== tags.length + 1) throw new Error(`POST /versions answered ${JSON.stringify(answer).slice(0, 200)}`);
    });
    // And for a version whose build stays queued: the worker is stopped first.
    await builds.stop();
    const queued = await api<BuildAnswer>(base, 'POST', '/buildAsync', buildBody(fixture, queuedTag));
    const queuedId = queued.versions[0].builds[0].build_id;
    const repeatQueued = await answerTimes(base, '/buildAsync', buildBody(fixture, queuedTag), sizes, sameBuild(queuedId, 'queued'));
    say(`  repeated /buildAsync p99: built ${repeatBuilt.p99Ms.toFixed(2)} ms, queued ${repeatQueued.p99Ms.toFixed(2)} ms; `
      + `/versions p99 ${versions.p99Ms.toFixed(2)} ms`);

    return {
      measured: true,
      database: dbName,
      otp: otp.version,
      sandbox,
      fixture: fixtureInfo,
      pollMs: POLL_MS,
      loadAverage,
      cpus: cpus().length,
      erlStart,
      nodeStart,
      rawCompile,
      compilePieces,
      build,
      overheadMs: build.medianMs - rawCompile.medianMs,
      ratio: build.medianMs / rawCompile.medianMs,
      parts,
      repeatBuilt,
      repeatQueued,
      versions,
    };
  } finally {
    if (running) {
      await running.builds.stop().catch(() => {});
      running.server.closeAllConnections();
      await running.server.close().catch(() => {});
      await running.deps.store.close().catch(() => {});
    }
    await database?.drop().catch(() => {});
    await repo?.cleanup();
    await rm(root, { recursive: true, force: true });
  }
}

// --- alone: `npx tsx test/bench/build-path.ts [--quick]` ---

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { buildPathTable, buildPathTargets, renderText } = await import('./report.js');
  const mode = process.argv.includes('--quick') ? 'quick' : 'full';
  const started = Date.now();
  const result = await measureBuildPath({ sizes: BUILD_PATH_SIZES[mode], log: (line) => console.log(line) });
  const targets = buildPathTargets(result);
  console.log(`\n${renderText(buildPathTable(result, targets))}\n`);
  for (const t of targets) console.log(`${t.description}: ${t.figure.toFixed(2)} ${t.unit} (${t.comparison} ${t.limit} ${t.unit}) ${t.met ? 'met' : 'MISSED'}`);
  console.log(`${mode} mode, ${((Date.now() - started) / 1000).toFixed(0)} s`);
  const out = fileURLToPath(new URL('./.out/', import.meta.url));
  await mkdir(out, { recursive: true });
  await writeFile(join(out, `build-path${mode === 'quick' ? '-quick' : ''}.json`), `${JSON.stringify({ startedAt: new Date(started).toISOString(), mode, result, targets }, null, 2)}\n`);
  process.exit(result.measured ? 0 : 1);
}
