// PGlite's data directory takes one owner: the lock refuses a live owner (naming it), takes over a dead one's
// (a crash, kill -9, a pid reused by another program), and a process killed with SIGKILL in the middle of writes
// leaves a directory that opens again with every committed row.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { lockDataDir } from '#adapters/postgres/data-dir-lock.js';
import { openPgliteStore } from '#adapters/postgres/open-store.js';
import { DataDirectoryInUseError } from '#core/errors.js';

const projectRoot = fileURLToPath(new URL('../../', import.meta.url));
let root: string;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'enot-pglite-dir-'));
});

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await rm(root, { recursive: true, force: true });
});

function processStartOf(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

/** A process that lives until killed (or 60 s). */
function sleeper(): ChildProcess {
  const child = spawn('sleep', ['60'], { stdio: 'ignore' });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

async function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise((resolve) => child.once('exit', resolve));
}

describe('the data directory lock', () => {
  it('refuses while a live process holds it, naming the process, and takes it over once that process is gone', async () => {
    const dir = join(root, 'held');
    const owner = sleeper();
    const startedAt = '2026-01-02T03:04:05.000Z';
    const lock = { pid: owner.pid, startedAt, host: hostname(), processStart: processStartOf(owner.pid!) };
    await writeFile(`${dir}.lock`, JSON.stringify(lock));
    const refused = await lockDataDir(dir).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(DataDirectoryInUseError);
    expect((refused as Error).message).toContain(`in use by process ${owner.pid}`);
    expect((refused as Error).message).toContain(startedAt);
    // Refusing changes nothing.
    expect(JSON.parse(await readFile(`${dir}.lock`, 'utf8'))).toEqual(lock);

    owner.kill('SIGKILL');
    await exited(owner);
    const taken = await lockDataDir(dir);
    expect(JSON.parse(await readFile(`${dir}.lock`, 'utf8'))).toMatchObject({ pid: process.pid });
    await taken.release();
    await expect(readFile(`${dir}.lock`)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('takes over a lock whose pid now belongs to another program, and one cut short while being written', async () => {
    const reused = join(root, 'reused');
    const other = sleeper();
    await writeFile(`${reused}.lock`, JSON.stringify({ pid: other.pid, startedAt: 'x', host: hostname(), processStart: '1' }));
    const takenOver = await lockDataDir(reused);
    expect(JSON.parse(await readFile(`${reused}.lock`, 'utf8'))).toMatchObject({ pid: process.pid });
    await takenOver.release();
    other.kill('SIGKILL');

    const torn = join(root, 'torn');
    await writeFile(`${torn}.lock`, '{"pid": 12');
    const lock = await lockDataDir(torn);
    expect(JSON.parse(await readFile(`${torn}.lock`, 'utf8'))).toMatchObject({ pid: process.pid });
    await lock.release();
  });

  it('lets one opener in at a time, in this process too, and releases on close', async () => {
    const dir = join(root, 'twice');
    const store = await openPgliteStore(dir);
    try {
      await expect(openPgliteStore(dir)).rejects.toBeInstanceOf(DataDirectoryInUseError);
      // The refused opener left the owner working.
      expect(await store.client.query('SELECT 1 AS ok')).toEqual([{ ok: 1 }]);
    } finally {
      await store.close();
    }
    const again = await openPgliteStore(dir);
    await again.close();
  }, 60_000);
});

describe('PGlite killed with SIGKILL in the middle of writes', () => {
  it('opens again with every committed row, after each of several kills', async () => {
    const dir = join(root, 'crash', 'pglite');
    const committed: number[] = [];
    // Each round kills the writer after a different number of commits.
    for (const [round, killAfter] of [[0, 15], [1, 60], [2, 140]] as const) {
      const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/pglite-writer.ts', dir, String(round * 100_000), '5000'], {
        cwd: projectRoot, stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.add(child);
      let output = '';
      let acked = 0;
      child.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString('utf8');
        for (const line of chunk.toString('utf8').split('\n')) {
          const n = /^committed (\d+)$/.exec(line);
          if (n) { committed.push(Number(n[1])); acked += 1; }
        }
      });
      child.stderr!.on('data', (chunk: Buffer) => { output += chunk.toString('utf8'); });
      await vi.waitFor(() => {
        if (child.exitCode !== null) throw new Error(`the writer exited early:\n${output}`);
        expect(acked).toBeGreaterThanOrEqual(killAfter);
      }, { timeout: 90_000, interval: 5 });
      child.kill('SIGKILL');
      await exited(child);
      children.delete(child);
      expect(child.signalCode, output).toBe('SIGKILL');
    }
    const store = await openPgliteStore(dir);
    try {
      const rows = await store.client.query('SELECT n FROM crash_probe ORDER BY n');
      const present = new Set(rows.map((r) => Number(r.n)));
      for (const n of committed) expect(present.has(n), `committed row ${n}`).toBe(true);
      // The database is whole: its indexes agree with the table, and it takes writes.
      expect(await store.client.query('SELECT count(*)::int AS n FROM crash_probe')).toEqual([{ n: present.size }]);
      await store.client.query('INSERT INTO crash_probe (n, pad) VALUES (-1, $1::text)', ['after']);
    } finally {
      await store.close();
    }
  }, 240_000);
});
