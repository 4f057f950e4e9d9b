// One owner per PGlite data directory: a lock file beside it names the process that has it open. A second opener
// refuses at once (naming that process); a lock left by a process that is gone (a crash, kill -9) is taken over.
import { readFileSync } from 'node:fs';
import { link, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { DataDirectoryInUseError } from '#core/errors.js';

/** What the lock file holds. */
interface LockOwner {
  pid: number;
  /** When the owner took the lock (ISO 8601). */
  startedAt: string;
  host: string;
  /** The owner's start time in clock ticks since boot (/proc/<pid>/stat), so a reused pid is not taken for it. */
  processStart?: string;
}

export interface DataDirLock {
  readonly path: string;
  /** Removes the lock file if it is still this process's. */
  release(): Promise<void>;
}

/** The 22nd field of /proc/<pid>/stat (after the command, which may hold spaces and parentheses). */
function processStartOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Whether the process that wrote `owner` is still running. */
function isAlive(owner: LockOwner): boolean {
  if (owner.host !== hostname()) return true; // Another machine's process (a shared disk): it cannot be checked, so it counts.
  try {
    process.kill(owner.pid, 0);
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const start = processStartOf(owner.pid);
  return owner.processStart === undefined || start === undefined || start === owner.processStart;
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const owner = JSON.parse(text) as Partial<LockOwner>;
    if (typeof owner.pid !== 'number' || typeof owner.startedAt !== 'string' || typeof owner.host !== 'string') return undefined;
    return owner as LockOwner;
  } catch {
    return undefined;
  }
}

/**
 * Takes the lock of `dir` (the file `<dir>.lock`), or throws DataDirectoryInUseError when a live process holds it.
 * The file appears whole or not at all (written aside, then hard-linked into place, which fails if one exists).
 */
export async function lockDataDir(dir: string): Promise<DataDirLock> {
  const path = `${dir}.lock`;
  const me: LockOwner = {
    pid: process.pid, startedAt: new Date().toISOString(), host: hostname(), processStart: processStartOf(process.pid),
  };
  const text = `${JSON.stringify(me)}\n`;
  const aside = `${path}.${process.pid}.${Date.now()}`;
  await writeFile(aside, text, { mode: 0o644 });
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await link(aside, path);
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 3) throw error;
      }
      let found: string;
      try {
        found = await readFile(path, 'utf8');
      } catch {
        continue; // Released in between: try again.
      }
      const owner = parseOwner(found);
      // An unreadable lock is one a crash cut short while writing it: nobody holds it.
      if (owner && isAlive(owner)) throw new DataDirectoryInUseError(dir, owner);
      // Stale: removed only if it is still the file judged stale (another starter may have taken it over meanwhile).
      if ((await readFile(path, 'utf8').catch(() => '')) === found) await unlink(path).catch(() => {});
    }
  } finally {
    await rm(aside, { force: true });
  }
  return {
    path,
    async release() {
      const current = await readFile(path, 'utf8').catch(() => undefined);
      if (current === text) await unlink(path).catch(() => {});
    },
  };
}
