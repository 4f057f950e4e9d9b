// Structured logging: one JSON object per line, filtered by the configured level.
import type { Config } from '#functions/config.js';

export type LogLevel = Config['logLevel'];
type MessageLevel = Exclude<LogLevel, 'silent'>;

const rank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

/** Writes `{time, level, ...fields}` as one line when `level` passes `threshold`. */
export function logJson(threshold: LogLevel, level: MessageLevel, fields: Record<string, unknown>): void {
  if (rank[level] < rank[threshold]) return;
  const line = JSON.stringify({ time: new Date().toISOString(), level, ...fields }) + '\n';
  // Errors go to stderr so a terminal still shows them when stdout is redirected.
  (level === 'error' || level === 'warn' ? process.stderr : process.stdout).write(line);
}
