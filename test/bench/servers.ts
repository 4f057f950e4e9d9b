// Starts and stops the processes under load (target-server.ts children), each with bounded waits.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { TargetConfig, TargetMessage } from './target-server.js';

export interface RunningServer {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

const TARGET_SCRIPT = fileURLToPath(new URL('./target-server.ts', import.meta.url));
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;

/** Every child started and not yet stopped, so a failing run can still stop them all. */
const children = new Set<ChildProcess>();

/** Waits for `child` to exit; after `ms`, kills it (SIGKILL) and waits for that. */
export function waitForExit(child: ChildProcess, ms: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Starts a server under load in a fresh process (the same TypeScript loader as this one). */
export async function startTarget(config: TargetConfig): Promise<RunningServer> {
  // The child's output goes to this terminal: a server that fails says why.
  const child = fork(TARGET_SCRIPT, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${config.kind} server did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
      child.on('message', (message: TargetMessage) => {
        clearTimeout(timer);
        if (message.type === 'ready') resolve(message.url);
        else reject(new Error(`${config.kind} server failed: ${message.error}`));
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${config.kind} server exited (${code}) before it was ready`));
      });
      child.send({ type: 'start', config });
    });
    return { url, pid: child.pid!, stop: () => stopChild(child) };
  } catch (error) {
    await stopChild(child);
    throw error;
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.connected) child.send({ type: 'stop' });
  else child.kill('SIGTERM');
  await waitForExit(child, STOP_TIMEOUT_MS);
  children.delete(child);
}

/** Stops every target still running (the end of a run, or a failure). */
export async function stopAllTargets(): Promise<void> {
  await Promise.all([...children].map((child) => stopChild(child)));
}
