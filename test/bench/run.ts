// `npm run bench [-- --quick]`: the performance figures of the issue, measured in one run on this
// machine (seeding, read path against ceilings and a peer, PGlite, scaling, Lambda cold start, build path), printed
// as tables and written to test/bench/results/ (full runs) or test/bench/.out/results/ (quick runs).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { FsBlobStore } from '#adapters/blob/fs-blob-store.js';
import { openPgliteStore, openPgStore } from '#adapters/postgres/open-store.js';
import { BUILD_PATH_SIZES, measureBuildPath, type BuildPathSizes } from './build-path.js';
import { measureColdStarts } from './cold-start.js';
import { runLoad, type LoadSettings } from './load.js';
import { NAME_WORDS, repositoryNames } from './names.js';
import {
  judgeTargets, renderMarkdown, renderText, SCALING_SCENARIOS, tables, type BenchResults, type Measured,
} from './report.js';
import { ceilingRequests, peerScenarios, probe, readScenarios, type ReadScenarioId, type Scenario } from './scenarios.js';
import { drawPools, growTo, scaleOf, type Pools, type SeedStep } from './seed.js';
import { startTarget, stopAllTargets, type RunningServer } from './servers.js';
import { PEER_PACKAGE, startVerdaccio } from './verdaccio.js';

interface Plan {
  mode: 'full' | 'quick';
  postgresSteps: number[];
  pgliteBuilds: number;
  load: LoadSettings;
  poolSize: number;
  coldStartRepetitions: number;
  buildPath: BuildPathSizes;
  /** The whole run is stopped (and cleaned up) past this. */
  hardLimitMs: number;
}

const ARTIFACT_BYTES = 50_000;

const PLANS: Record<'full' | 'quick', Plan> = {
  full: {
    mode: 'full',
    postgresSteps: [10_000, 100_000, 1_000_000],
    pgliteBuilds: 100_000,
    load: { connections: 16, durationS: 10, warmupS: 1 },
    poolSize: 200,
    coldStartRepetitions: 7,
    buildPath: BUILD_PATH_SIZES.full,
    hardLimitMs: 20 * 60_000,
  },
  quick: {
    mode: 'quick',
    postgresSteps: [1_000, 10_000, 100_000],
    pgliteBuilds: 10_000,
    load: { connections: 16, durationS: 1, warmupS: 0.25 },
    poolSize: 50,
    coldStartRepetitions: 3,
    buildPath: BUILD_PATH_SIZES.quick,
    hardLimitMs: 4 * 60_000,
  },
};

const BENCH_DIR = fileURLToPath(new URL('./', import.meta.url));
const RESULTS_DIR = join(BENCH_DIR, 'results');
const OUT_DIR = join(BENCH_DIR, '.out');
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);
/** Postgres settings for the loading transaction only: bigger sorts for the index inserts, no fsync wait per commit. */
const LOAD_SETTINGS = { maintenance_work_mem: '256MB', work_mem: '64MB', synchronous_commit: 'off' };

// --- cleanup: everything started is stopped, everything created removed, also on failure or Ctrl-C ---

const cleanups: { name: string; fn: () => Promise<void> }[] = [];
function onCleanup(name: string, fn: () => Promise<void>): void {
  cleanups.push({ name, fn });
}
async function cleanupAll(): Promise<void> {
  await stopAllTargets().catch(() => {});
  while (cleanups.length > 0) {
    const { name, fn } = cleanups.pop()!;
    await fn().catch((e: unknown) => console.error(`cleanup (${name}) failed: ${String(e)}`));
  }
}

function log(message: string): void {
  const elapsed = ((Date.now() - startedMs) / 1000).toFixed(0).padStart(4);
  console.log(`[${elapsed}s] ${message}`);
}

const startedMs = Date.now();

// --- the bench database ---

function adminUrl(): string {
  const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const host = new URL(url).hostname;
  if (!LOOPBACK.has(host)) throw new Error(`DATABASE_URL must point at this machine (127.0.0.1), not ${host}`);
  return url;
}

async function adminQuery(sql: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: adminUrl() });
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}

/** A throwaway database on the DATABASE_URL server, dropped at cleanup. */
async function createBenchDatabase(): Promise<string> {
  const name = `enot_bench_${randomBytes(5).toString('hex')}`;
  await adminQuery(`CREATE DATABASE ${name}`);
  onCleanup(`drop database ${name}`, async () => {
    await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  });
  const url = new URL(adminUrl());
  url.pathname = `/${name}`;
  return url.toString();
}

async function directorySize(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath ?? entry.path, entry.name))).size;
  }
  return total;
}

/** The name words present in the first `repositories` names: the substrings worth searching at that scale. */
function substringsAt(repositories: number): string[] {
  const names = repositoryNames(repositories).map((r) => r.name.toLowerCase());
  return NAME_WORDS.filter((w) => names.some((n) => n.includes(w)));
}

// --- measuring ---

async function measure(baseUrl: string, scenario: Scenario, settings: LoadSettings): Promise<Measured & { median: Buffer; contentType: string }> {
  const checked = await probe(baseUrl, scenario);
  const result = await runLoad(baseUrl, scenario.requests, settings);
  log(`  ${scenario.label.padEnd(36)} ${Math.round(result.rps).toString().padStart(6)} req/s  p50 ${result.p50Ms.toFixed(2)} ms  p99 ${result.p99Ms.toFixed(2)} ms  errors ${result.errors}  non-2xx ${result.non2xx}`);
  return { label: scenario.label, result, responseBytes: checked.median.body.length, median: checked.median.body, contentType: checked.median.contentType };
}

/** The endpoint answers captured by the probes at the largest step, for the ceiling's bodies. */
const bodies = new Map<string, Measured & { median: Buffer; contentType: string }>();

async function withServer<T>(start: () => Promise<RunningServer>, use: (server: RunningServer) => Promise<T>): Promise<T> {
  const server = await start();
  try {
    return await use(server);
  } finally {
    await server.stop();
  }
}

const plan = PLANS[process.argv.includes('--quick') ? 'quick' : 'full'];

async function main(): Promise<void> {
  const sectionSeconds: Record<string, number> = {};
  const section = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const t = Date.now();
    log(`== ${name}`);
    try {
      return await fn();
    } finally {
      sectionSeconds[name] = (Date.now() - t) / 1000;
    }
  };
  log(`enot-builder benchmark, ${plan.mode} mode: Postgres ${plan.postgresSteps.join(' → ')} builds, PGlite ${plan.pgliteBuilds}, `
    + `${plan.load.connections} connections × ${plan.load.durationS} s`);

  const tmp = await mkdtemp(join(tmpdir(), 'enot-bench-'));
  onCleanup('remove temp dir', () => rm(tmp, { recursive: true, force: true }));
  await mkdir(OUT_DIR, { recursive: true });

  const results: Omit<BenchResults, 'targets' | 'wallSeconds' | 'sectionSeconds' | 'seeding' | 'buildPath'> & {
    seeding: { postgres: SeedStep[]; pglite?: SeedStep };
  } = {
    mode: plan.mode,
    startedAt: new Date(startedMs).toISOString(),
    machine: {
      node: process.version,
      cpus: cpus().length,
      cpu: cpus()[0]?.model ?? 'unknown',
      memoryGB: Math.round(totalmem() / 1e9),
      platform: `${process.platform} ${process.arch}`,
      commit: gitCommit(),
    },
    settings: {
      ...plan.load,
      poolSize: plan.poolSize,
      artifactBytes: ARTIFACT_BYTES,
      coldStartRepetitions: plan.coldStartRepetitions,
      postgresSteps: plan.postgresSteps,
      pgliteBuilds: plan.pgliteBuilds,
    },
    seeding: { postgres: [] },
    readPath: {},
    peer: {},
    pglite: {},
    scaling: [],
    coldStart: [],
  };

  // --- Postgres: grow in steps; scaling figures at each, everything at the last ---
  const databaseUrl = await createBenchDatabase();
  const pgDataDir = join(tmp, 'pg-data');
  const blobs = new FsBlobStore(join(pgDataDir, 'blobs'));
  const store = await openPgStore(databaseUrl);
  let storeOpen = true;
  const closeStore = async () => {
    if (storeOpen) await store.close();
    storeOpen = false;
  };
  onCleanup('close seeding store', closeStore);
  results.machine.postgres = String((await store.client.query('SHOW server_version'))[0].server_version);
  let pools: Pools | undefined;

  for (const [i, builds] of plan.postgresSteps.entries()) {
    const last = i === plan.postgresSteps.length - 1;
    pools = await section(`Postgres at ${builds} builds`, async () => {
      const step = await growTo(store.client, scaleOf(builds), { sessionSettings: LOAD_SETTINGS });
      const size = await store.client.query('SELECT pg_database_size(current_database()) AS bytes');
      const seeded = { ...step, databaseBytes: Number(size[0].bytes) };
      results.seeding.postgres.push(seeded);
      log(`  seeded +${step.added.builds} builds in ${step.seconds.toFixed(1)} s; ${JSON.stringify(step.counted)}; ${(seeded.databaseBytes / 1e6).toFixed(0)} MB`);
      const drawn = await drawPools(store.client, blobs, plan.poolSize, ARTIFACT_BYTES, substringsAt(step.scale.repositories));
      const scenarios = readScenarios(drawn, ARTIFACT_BYTES);
      const scaling: BenchResults['scaling'][number] = { builds, scenarios: {} };
      results.scaling.push(scaling);
      await withServer(() => startTarget({ kind: 'enot', databaseUrl, dataDir: pgDataDir }), async (server) => {
        for (const scenario of scenarios) {
          // Every scenario at the last step, and at the PGlite scale so the embedded figures have a peer.
          const all = last || builds === plan.pgliteBuilds;
          if (!all && !SCALING_SCENARIOS.includes(scenario.id)) continue;
          const measured = await measure(server.url, scenario, plan.load);
          scaling.scenarios[scenario.id] = stripBody(measured);
          if (last) bodies.set(scenario.id, measured);
        }
      });
      if (last) {
        await measureCeilings(databaseUrl, drawn, scenarios, plan.load);
        await measurePeer(tmp, plan.load);
      }
      return drawn;
    });
  }

  // Ceilings and peer, in the same run and with the same settings as the read path.
  async function measureCeilings(url: string, drawn: Pools, scenarios: Scenario<ReadScenarioId>[], settings: LoadSettings): Promise<void> {
    log('  baselines: bare node:http, plain and with one query');
    const config = {
      kind: 'ceiling' as const,
      databaseUrl: url,
      buildIds: drawn.downloads,
      bodies: Object.fromEntries([...bodies].map(([id, m]) => [id, { contentType: m.contentType, base64: m.median.toString('base64') }])),
    };
    await withServer(() => startTarget(config), async (server) => {
      for (const scenario of scenarios) {
        const endpoint = bodies.get(scenario.id)!;
        const expected = endpoint.median.length;
        const same = (variant: 'plain' | 'query'): Scenario => ({
          id: `${variant}-${scenario.id}`,
          label: `bare${variant === 'query' ? ' + query' : ''} as ${scenario.label}`,
          requests: ceilingRequests(scenario, variant),
          check: (a) => (a.status === 200 && a.body.length === expected ? null : `status ${a.status}, ${a.body.length} bytes`),
        });
        const plain = stripBody(await measure(server.url, same('plain'), settings));
        const query = stripBody(await measure(server.url, same('query'), settings));
        results.readPath[scenario.id] = { ...stripBody(endpoint), ceilingPlain: plain, ceilingQuery: query };
      }
    });
  }

  async function measurePeer(dir: string, settings: LoadSettings): Promise<void> {
    log('  peer: Verdaccio 5');
    await withServer(() => startVerdaccio(join(dir, 'verdaccio'), ARTIFACT_BYTES), async (server) => {
      for (const scenario of peerScenarios(PEER_PACKAGE, ARTIFACT_BYTES)) {
        results.peer[scenario.id] = stripBody(await measure(server.url, scenario, settings));
      }
    });
  }

  // --- Lambda cold start, against the Data API test server over the same database ---
  results.coldStart = await section('Lambda cold start', async () => {
    const fixture = pools!.hits[0];
    const rows = await measureColdStarts({
      outDir: join(OUT_DIR, 'cold-start'),
      databaseUrl,
      fixture,
      repetitions: plan.coldStartRepetitions,
      artifactBytes: ARTIFACT_BYTES,
    });
    for (const row of rows) log(`  ${row.name.padEnd(16)} ${(row.bundleBytes / 1000).toFixed(1).padStart(7)} kB  import+event ${row.coldMs.toFixed(1)} ms  status ${row.statusCode}`);
    return rows;
  });
  await closeStore();

  // --- PGlite, the embedded default ---
  await section(`PGlite at ${plan.pgliteBuilds} builds`, async () => {
    const dataDir = join(tmp, 'pglite-data');
    const lite = await openPgliteStore(join(dataDir, 'pglite'));
    let drawn: Pools;
    try {
      const step = await growTo(lite.client, scaleOf(plan.pgliteBuilds));
      drawn = await drawPools(lite.client, new FsBlobStore(join(dataDir, 'blobs')), plan.poolSize, ARTIFACT_BYTES, substringsAt(step.scale.repositories));
      results.seeding.pglite = step;
    } finally {
      await lite.close();
    }
    results.seeding.pglite.databaseBytes = await directorySize(join(dataDir, 'pglite'));
    log(`  seeded ${plan.pgliteBuilds} builds in ${results.seeding.pglite.seconds.toFixed(1)} s; ${(results.seeding.pglite.databaseBytes / 1e6).toFixed(0)} MB on disk`);
    await withServer(() => startTarget({ kind: 'enot', dataDir }), async (server) => {
      for (const scenario of readScenarios(drawn, ARTIFACT_BYTES)) {
        results.pglite[scenario.id] = stripBody(await measure(server.url, scenario, plan.load));
      }
    });
  });

  const buildPath = await section('Build path', () => measureBuildPath({ sizes: plan.buildPath, log, onCleanup }));
  if (!buildPath.measured) log(`  ${buildPath.note}`);

  const complete: BenchResults = {
    ...results,
    seeding: { postgres: results.seeding.postgres, pglite: results.seeding.pglite! },
    buildPath,
    sectionSeconds,
    wallSeconds: (Date.now() - startedMs) / 1000,
    targets: [],
  };
  complete.targets = judgeTargets(complete);
  await writeResults(complete);
}

function stripBody(m: Measured & { median?: Buffer; contentType?: string }): Measured {
  return { label: m.label, result: m.result, responseBytes: m.responseBytes };
}

function gitCommit(): string {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: BENCH_DIR, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain'], { cwd: BENCH_DIR, encoding: 'utf8' }).trim() !== '';
    return dirty ? `${commit} (with uncommitted changes)` : commit;
  } catch {
    return 'unknown';
  }
}

async function writeResults(r: BenchResults): Promise<void> {
  const rendered = tables(r);
  console.log('');
  for (const t of rendered) console.log(`${renderText(t)}\n`);
  const missed = r.targets.filter((t) => !t.met);
  console.log(`Wall time ${r.wallSeconds.toFixed(0)} s. Targets met: ${r.targets.length - missed.length} of ${r.targets.length}.`);

  const stamp = r.startedAt.replace(/[:.]/g, '-');
  const full = r.mode === 'full';
  // Only full runs are results worth keeping; quick ones are smoke tests and stay in the scratch folder.
  const dir = full ? RESULTS_DIR : join(OUT_DIR, 'results');
  const suffix = full ? '' : '-quick';
  await mkdir(dir, { recursive: true });
  const json = `${JSON.stringify(r, null, 2)}\n`;
  const markdown = [
    `## Benchmark results (${r.mode} run, ${r.startedAt.slice(0, 10)})`,
    '',
    `Machine: ${r.machine.cpus} × ${r.machine.cpu}, ${r.machine.memoryGB} GB, Node ${r.machine.node}, Postgres ${r.machine.postgres}; commit ${r.machine.commit}.`,
    `Wall time ${r.wallSeconds.toFixed(0)} s. Reproduce with \`npm run bench\` (Postgres at DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test).`,
    '',
    ...rendered.map((t) => `${renderMarkdown(t)}\n`),
  ].join('\n');
  await writeFile(join(dir, `${stamp}${suffix}.json`), json);
  await writeFile(join(dir, `latest${suffix}.json`), json);
  await writeFile(join(dir, `latest${suffix}.md`), markdown);
  console.log(`Results: ${join(dir, `${stamp}${suffix}.json`)}, latest${suffix}.json, latest${suffix}.md`);
}

const watchdog = setTimeout(() => {
  console.error(`benchmark stopped: over its time limit`);
  void cleanupAll().finally(() => process.exit(2));
}, plan.hardLimitMs);
watchdog.unref();

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`benchmark interrupted (${signal}); cleaning up`);
    void cleanupAll().finally(() => process.exit(130));
  });
}

main().then(
  async () => {
    await cleanupAll();
    process.exit(0);
  },
  async (error: unknown) => {
    console.error(error);
    await cleanupAll();
    process.exit(1);
  },
);
