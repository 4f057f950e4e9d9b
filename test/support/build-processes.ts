// Finds the processes of local builds: those working in, or pointing at, a scratch dir under a data dir.
// Suites use it to check that a killed build, or a killed service, leaves no process behind.
import { readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';

/** Pids of live processes whose working directory or environment is under `<dataDir>/builds/`. */
export async function buildProcesses(dataDir: string): Promise<number[]> {
  const marker = join(dataDir, 'builds') + '/';
  const found: number[] = [];
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      // Zombies and dead tasks hold nothing any more.
      if (/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2))) continue;
      const cwd = await readlink(`/proc/${entry}/cwd`).catch(() => '');
      const environ = await readFile(`/proc/${entry}/environ`).catch(() => Buffer.alloc(0));
      if (`${cwd}/`.startsWith(marker) || environ.includes(marker)) found.push(Number(entry));
    } catch {
      // the process ended while it was being read
    }
  }
  return found;
}
