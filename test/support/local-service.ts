// `npm start` as a real process, for end-to-end suites: started the way npm does it (tsx), on an environment the
// suite chooses, found listening through its JSON log, and signalled or killed at the end.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const projectRoot = fileURLToPath(new URL('../../', import.meta.url));

export interface RunningService {
  child: ChildProcess;
  url: string;
  output: () => string;
}

const children = new Set<ChildProcess>();

/**
 * Starts functions/local/main.ts with this process's environment minus DATABASE_URL, plus `env` (a value of
 * undefined removes a variable), and resolves with the URL it logs as listening.
 */
export async function startService(env: Record<string, string | undefined>, startTimeoutMs = 90_000): Promise<RunningService> {
  const merged: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) merged[k] = v;
  delete merged.DATABASE_URL;
  for (const [k, v] of Object.entries({ PORT: '0', ENOT_LOG_LEVEL: 'info', ENOT_RUNTIME: 'local', ...env })) {
    if (v === undefined) delete merged[k];
    else merged[k] = v;
  }
  const child = spawn(process.execPath, ['--import', 'tsx', 'functions/local/main.ts'], {
    cwd: projectRoot, env: merged, stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in time:\n${output}`)), startTimeoutMs);
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
      const listening = /"message":"listening".*?"url":"([^"]+)"/.exec(output);
      if (listening) {
        clearTimeout(timer);
        resolve(listening[1]);
      }
    });
    child.stderr!.on('data', (c: Buffer) => { output += c.toString('utf8'); });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening:\n${output}`));
    });
  });
  return { child, url, output: () => output };
}

/** Sends `signal` and resolves with the exit code (or the signal that ended it), failing past `ms`. */
export function signalService(running: RunningService, signal: NodeJS.Signals, ms = 30_000): Promise<number | string | null> {
  return new Promise((resolve, reject) => {
    if (running.child.exitCode !== null) return resolve(running.child.exitCode);
    const timer = setTimeout(() => reject(new Error(`no exit within ${ms} ms:\n${running.output()}`)), ms);
    running.child.once('exit', (code, sig) => {
      clearTimeout(timer);
      resolve(code ?? sig);
    });
    running.child.kill(signal);
  });
}

/** Kills every service still running (a failed assertion must not leave one behind). */
export function killAllServices(): void {
  for (const child of children) child.kill('SIGKILL');
}
