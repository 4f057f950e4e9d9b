// The build sandbox against hostile packages: real builds through the local builder (buildspec.yml's phases, the
// build scripts, bubblewrap, make) of fixture repositories whose Makefile each tries one escape. Every build ends, its
// log shows the attempt refused (or the limit that stopped it), and the service's data is byte-identical afterwards.
import { execFileSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '#adapters/blob/fs-blob-store.js';
import { LocalBuilder } from '#adapters/builder/local-builder.js';
import { buildBlobKeys, type BuildEnded } from '#core/build-contract.js';
import type { ErlangRepo } from '#support/erlang-repos.js';
import { hostileRecipes, hostileRepo, type HostileTargets } from '#support/hostile-repos.js';

const LIMITS = { memoryMb: 1024, diskMb: 64, maxProcesses: 64, logLineMaxBytes: 4096 };
const DATABASE_URL = process.env.DATABASE_URL;

let root: string;
let dataDir: string;
let builder: LocalBuilder;
let blobs: FsBlobStore;
let server: Server;
let serviceConnections = 0;
let targets: HostileTargets;
let db: pg.Client | undefined;
let before: Record<string, string>;
const ends = new Map<string, (e: BuildEnded) => void>();
const repos: ErlangRepo[] = [];

/** sha256 of every file under `dir` but the builder's own outputs (logs/, artifacts/) and its scratch (builds/). */
function snapshot(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (at: string) => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const full = join(at, entry.name);
      const rel = relative(dir, full);
      if (['builds', 'blobs/logs', 'blobs/artifacts'].includes(rel)) continue;
      if (entry.isDirectory()) walk(full);
      else files[rel] = createHash('sha256').update(readFileSync(full)).digest('hex');
    }
  };
  walk(dir);
  return files;
}

async function victimRows(): Promise<unknown[]> {
  if (!db) return [];
  return (await db.query(`SELECT id, value FROM ${targets.victimTable} ORDER BY id`)).rows;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'enot-hostile-'));
  dataDir = join(root, 'data');
  await mkdir(join(dataDir, 'blobs', 'erts'), { recursive: true });
  await writeFile(join(dataDir, 'secret.txt'), 'the service\'s own secret\n');
  await writeFile(join(dataDir, 'blobs', 'erts', 'victim.tar'), 'bytes a user downloads\n');
  blobs = new FsBlobStore(join(dataDir, 'blobs'));

  server = createServer((_req, res) => res.end('service'));
  server.on('connection', () => { serviceConnections += 1; });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));

  const id = randomUUID().slice(0, 8);
  targets = {
    dataDir,
    servicePort: (server.address() as AddressInfo).port,
    victimTable: `sandbox_victim_${id}`,
    hostMarker: join(tmpdir(), `enot-hostile-marker-${id}`),
    sleeperMarker: `enot-hostile-sleeper-${id}`,
  };
  if (DATABASE_URL) {
    db = new pg.Client({ connectionString: DATABASE_URL });
    await db.connect();
    await db.query(`CREATE TABLE ${targets.victimTable} (id int PRIMARY KEY, value text NOT NULL)`);
    await db.query(`INSERT INTO ${targets.victimTable} VALUES (1, 'artifacts/victim.ep')`);
  }

  const [release, otpRoot] = execFileSync('erl', [
    '-noshell', '-eval', 'io:format("~s~n~s~n", [erlang:system_info(otp_release), code:root_dir()]), halt().',
  ], { encoding: 'utf8' }).trim().split('\n');
  builder = new LocalBuilder({
    blobs, buildsDir: join(dataDir, 'builds'), otp: { release, root: otpRoot }, sandbox: 'auto',
    logMaxBytes: 256 * 1024, limits: LIMITS, killGraceMs: 1000,
    onEnded: (e) => ends.get(e.buildId)?.(e),
  });
  before = snapshot(dataDir);
});

afterAll(async () => {
  await builder?.stopAll();
  await Promise.all(repos.map((r) => r.cleanup()));
  if (db) {
    await db.query(`DROP TABLE IF EXISTS ${targets.victimTable}`);
    await db.end();
  }
  await new Promise((resolve) => server?.close(resolve));
  if (targets) await rm(targets.hostMarker, { force: true });
  if (root) await rm(root, { recursive: true, force: true });
});

/** Builds the fixture whose Makefile runs the escape `name`; resolves with how it ended and its log. */
async function buildHostile(name: string): Promise<{ ended: BuildEnded; log: string }> {
  const repo = await hostileRepo(name, hostileRecipes(targets)[name]);
  repos.push(repo);
  const buildId = randomUUID();
  const ended = new Promise<BuildEnded>((resolve) => ends.set(buildId, resolve));
  await builder.start({
    buildId, namespace: repo.namespace, name: repo.name, cloneUrl: repo.cloneUrl, ref: repo.tag, erlVersion: '25', timeoutS: 60,
  });
  const end = await ended;
  const log = (await blobs.get(buildBlobKeys(buildId).log))?.toString('utf8') ?? '';
  return { ended: end, log };
}

/** The attempts a log reports, by name. */
function attempts(log: string): Record<string, string> {
  return Object.fromEntries([...log.matchAll(/^ATTEMPT ([\w-]+): (\w+)$/gm)].map((m) => [m[1], m[2]]));
}

function processesWith(marker: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(marker)) found.push(Number(entry));
    } catch {
      // gone
    }
  }
  return found;
}

describe('the build sandbox against hostile packages', () => {
  it('reports bubblewrap isolating here, and every build log says so with its limits', async () => {
    const status = await builder.sandboxStatus();
    expect(status.mode, status.reason).toBe('bubblewrap');
    await expect(builder.check()).resolves.toBeUndefined();
    const { log, ended } = await buildHostile('read-secrets');
    expect(ended.state).toBe('FAILED');
    expect(log).toContain('limits: time 60 s; memory 1024 MB per process; disk 64 MB (clone, HOME and /tmp); processes 64;');
    expect(log).toMatch(/sandbox: bubblewrap, no network, uid \d+/);
    expect(log).toContain('[sandbox]');
    expect(attempts(log)).toEqual({
      'read-shadow': 'refused', 'read-root': 'refused', 'read-data-dir': 'refused', 'list-run': 'refused', 'list-home': 'refused',
    });
  });

  it('refuses the Postgres socket and TCP to 127.0.0.1 (Postgres and the service\'s port)', async () => {
    const socket = await buildHostile('postgres-socket');
    expect(attempts(socket.log)).toEqual({ 'postgres-socket-visible': 'refused', 'postgres-socket': 'refused' });
    const tcp = await buildHostile('tcp-loopback');
    expect(attempts(tcp.log)).toEqual({ 'tcp-postgres': 'refused', 'tcp-postgres-raw': 'refused', 'tcp-service': 'refused' });
    expect(serviceConnections).toBe(0);
    if (db) expect(await victimRows()).toEqual([{ id: 1, value: 'artifacts/victim.ep' }]);
  });

  it('keeps every write inside the sandbox', async () => {
    const { log } = await buildHostile('write-outside');
    // Next to the clone, the data dir's path and /tmp exist in the sandbox only as its own scratch: what is written
    // there never reaches the host. The system is read-only.
    expect(attempts(log)).toEqual({
      'write-next-to-clone': 'written', 'write-data-dir': 'written', 'write-host-tmp': 'written', 'write-usr': 'refused',
    });
    expect(existsSync(targets.hostMarker)).toBe(false);
    expect(existsSync(join(dataDir, 'pwned'))).toBe(false);
    expect(existsSync('/usr/enot-pwned')).toBe(false);
  });

  it('leaves no process behind', async () => {
    const { log, ended } = await buildHostile('process-left-behind');
    expect(attempts(log)).toEqual({ 'process-left-behind': 'started' });
    expect(ended.state).toBe('FAILED');
    // The sandbox's PID namespace ended with the make that started it: the sleeper is gone before the build ends.
    expect(processesWith(targets.sleeperMarker)).toEqual([]);
  });

  it('stops memory, disk and process exhaustion at their limits, and says which limit', async () => {
    const memory = await buildHostile('memory');
    expect(memory.log).toContain('sandbox: limit hit: memory: 1024 MB of address space per process');
    const disk = await buildHostile('disk');
    expect(attempts(disk.log)).toEqual({ 'disk-clone': 'refused', 'disk-tmp': 'refused' });
    expect(disk.log).toContain('sandbox: limit hit: disk: the clone, HOME and /tmp may hold 64 MB');
    const fork = await buildHostile('fork-200');
    expect(attempts(fork.log)).toEqual({});
    expect(fork.log).toContain('sandbox: limit hit: processes: 64 processes and threads');
    for (const run of [memory, disk, fork]) expect(run.ended.state).toBe('FAILED');
  });

  it('cuts a huge log line at the line limit', async () => {
    const { log, ended } = await buildHostile('huge-line');
    expect(ended.state).toBe('FAILED');
    expect(log).toContain(`${'a'.repeat(100)} [line cut at 4096 bytes (ENOT_BUILD_LOG_LINE_MAX_BYTES)]\n`);
    expect(log).not.toContain('a'.repeat(4097));
    expect(attempts(log)).toEqual({ 'huge-line': 'printed' });
  });

  it('says so loudly in the log when ENOT_SANDBOX=off, and refuses builds where bubblewrap is missing', async () => {
    const plain = new LocalBuilder({
      blobs, buildsDir: join(root, 'plain-builds'), otp: null, sandbox: 'off', logMaxBytes: 64 * 1024,
      onEnded: () => {},
    });
    const off = await plain.sandboxStatus();
    expect(off.mode).toBe('off');
    expect(off.reason).toContain('sandbox: off (ENOT_SANDBOX=off); compiling without it. WARNING');

    // The check step on a builder without bwrap (a PATH of node and git only): the build is refused before the clone.
    const bin = join(root, 'bin-without-bwrap');
    await mkdir(bin, { recursive: true });
    for (const tool of ['git', 'node']) execFileSync('ln', ['-s', execFileSync('which', [tool], { encoding: 'utf8' }).trim(), join(bin, tool)]);
    const work = join(root, 'refused', 'work');
    const out = join(root, 'refused', 'out');
    execFileSync(process.execPath, [fileURLToPath(new URL('../../buildspec/build.mjs', import.meta.url)), 'check', 'clone'], {
      env: { PATH: bin, ENOT_WORK_DIR: work, ENOT_OUT_DIR: out, ENOT_BUILD_ID: 'refused', ENOT_CLONE_URL: 'file:///nowhere', ENOT_REF: '1.0.0' },
    });
    const log = readFileSync(join(out, 'build.log'), 'utf8');
    expect(log).toContain('sandbox: unavailable (bwrap, prlimit, setpriv not installed); builds are refused here unless ENOT_SANDBOX=off is set');
    expect(log).toContain('==> clone: skipped');
    const state = JSON.parse(readFileSync(join(work, 'state', 'state.json'), 'utf8')) as { failure: { failure: string } };
    expect(state.failure.failure).toBe('internal');
  });

  it('left the service\'s data byte-identical', async () => {
    expect(snapshot(dataDir)).toEqual(before);
    if (db) expect(await victimRows()).toEqual([{ id: 1, value: 'artifacts/victim.ep' }]);
    // And no build left its scratch directory behind.
    expect(readdirSync(join(dataDir, 'builds'))).toEqual([]);
  });
});
