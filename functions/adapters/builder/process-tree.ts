// Finds and ends a build's processes by reading /proc: its process group, and whatever left the group but still works in its directory.
import { readdir, readFile, readlink } from 'node:fs/promises';
import { sep } from 'node:path';

/** The processes of one build, as far as they can be found. */
export interface ProcessTree {
  /** The build's process group (the pid of its leader); undefined when unknown, as for a previous run's build. */
  pgid?: number;
  /**
   * The build's directory. A process whose working directory is in it, or whose environment names it, belongs to
   * the build even after leaving the group (a daemon that called setsid).
   */
  dir: string;
}

/**
 * The live pids of the tree, never this process's own. Zombies do not count: they hold nothing any more.
 * Null where there is no /proc to look in; then only the process group can be reached.
 */
export async function processTreePids(tree: ProcessTree): Promise<number[] | null> {
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return null;
  }
  const { pgid, dir } = tree;
  const marker = Buffer.from(dir + sep);
  const self = process.pid;
  const found: number[] = [];
  await Promise.all(entries.map(async (entry) => {
    if (!/^\d+$/.test(entry)) return;
    const pid = Number(entry);
    if (pid === self) return;
    let stat: string;
    try {
      stat = await readFile(`/proc/${entry}/stat`, 'utf8');
    } catch {
      return;
    }
    // After "(comm) ": state, ppid, pgrp, ...; comm may hold spaces and parentheses, hence the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return;
    if (pgid !== undefined && Number(fields[2]) === pgid) {
      found.push(pid);
      return;
    }
    try {
      const cwd = await readlink(`/proc/${entry}/cwd`);
      if (cwd === dir || cwd.startsWith(dir + sep)) {
        found.push(pid);
        return;
      }
    } catch {
      // gone, or not ours to read
    }
    try {
      if ((await readFile(`/proc/${entry}/environ`)).includes(marker)) found.push(pid);
    } catch {
      // gone, or not ours to read
    }
  }));
  return found;
}

/** Sends `signal` to the tree's process group and to every process of the tree found outside it. */
export async function signalProcessTree(tree: ProcessTree, signal: NodeJS.Signals): Promise<void> {
  if (tree.pgid !== undefined) {
    try {
      process.kill(-tree.pgid, signal);
    } catch {
      // the group is gone already
    }
  }
  for (const pid of (await processTreePids(tree)) ?? []) {
    try {
      process.kill(pid, signal);
    } catch {
      // gone already
    }
  }
}

/** Whether any process of the tree still runs. */
export async function processTreeAlive(tree: ProcessTree): Promise<boolean> {
  const pids = await processTreePids(tree);
  if (pids) return pids.length > 0;
  if (tree.pgid === undefined) return false;
  try {
    process.kill(-tree.pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * SIGTERM to the tree, SIGKILL to whatever is left after `graceMs`. A tree with nothing running (the usual end of a
 * build: the phase script stops its own watchdog) costs one look and no waiting.
 */
export async function endProcessTree(tree: ProcessTree, graceMs: number): Promise<void> {
  if (!(await processTreeAlive(tree))) return;
  await signalProcessTree(tree, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  // Short pauses first: most processes are gone within a few ms of the TERM.
  let pause = 5;
  let left = await processTreeAlive(tree);
  while (left && Date.now() < deadline) {
    await sleep(pause);
    pause = Math.min(100, pause * 2);
    left = await processTreeAlive(tree);
  }
  if (left) await signalProcessTree(tree, 'SIGKILL');
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
