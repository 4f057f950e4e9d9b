// The service's logging, for every runtime and entry point: one Powertools Logger per process (JSON lines,
// service enot-builder), and loggers bound to a request or a worker over it that add their keys to every line.
import { Logger } from '@aws-lambda-powertools/logger';
import type { Config } from '#functions/config.js';
import { SERVICE_NAME } from '#core/metrics.js';
import type { Log, LogAttributes } from '#core/ports.js';

export type LogLevel = Config['logLevel'];

const POWERTOOLS_LEVEL = { debug: 'DEBUG', info: 'INFO', warn: 'WARN', error: 'ERROR', silent: 'SILENT' } as const;

let root: Logger | undefined;
let rootLevel: LogLevel = 'info';

/**
 * The process's one Logger. `level` (config.logLevel) applies from this call on; without it the
 * level stays as it was (info until a config has been seen). Info goes to stdout, warnings and
 * errors to stderr, so a terminal still shows them when stdout is redirected.
 */
export function processLogger(level?: LogLevel): Logger {
  if (!root) {
    rootLevel = level ?? rootLevel;
    root = new Logger({ serviceName: SERVICE_NAME, logLevel: POWERTOOLS_LEVEL[rootLevel] });
  } else if (level && level !== rootLevel) {
    rootLevel = level;
    root.setLogLevel(POWERTOOLS_LEVEL[level]);
  }
  return root;
}

/** The core's Log bound to one request or worker: every line carries its keys (correlation_id, route). */
export interface RequestLogger extends Log {
  readonly keys: Readonly<LogAttributes>;
  debug(message: string, attributes?: LogAttributes): void;
}

type LineLevel = Exclude<LogLevel, 'silent'>;
const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3, silent: 4 };

/** Whether a `line` would be written at `level`: callers skip building lines nobody will see. */
export function logEnabled(line: LineLevel, level: LogLevel): boolean {
  return RANK[line] >= RANK[level];
}

/**
 * The process Logger when a `line` at this level is to be written, else undefined. Checked here,
 * before any attributes are merged, because Powertools itself reads the environment on every call,
 * even for a line its level drops.
 */
function loggerFor(line: LineLevel, level: LogLevel | undefined): Logger | undefined {
  if (level !== undefined && (level !== rootLevel || !root)) processLogger(level);
  return RANK[line] >= RANK[rootLevel] ? processLogger() : undefined;
}

const NO_LEVEL = (): LogLevel | undefined => undefined;

class BoundRequestLogger implements RequestLogger {
  constructor(
    readonly keys: Readonly<LogAttributes>,
    private readonly level: () => LogLevel | undefined,
  ) {}

  debug(message: string, attributes?: LogAttributes): void {
    loggerFor('debug', this.level())?.debug(message, { ...this.keys, ...attributes });
  }

  info(message: string, attributes?: LogAttributes): void {
    loggerFor('info', this.level())?.info(message, { ...this.keys, ...attributes });
  }

  warn(message: string, attributes?: LogAttributes): void {
    loggerFor('warn', this.level())?.warn(message, { ...this.keys, ...attributes });
  }

  error(message: string, error?: unknown, attributes?: LogAttributes): void {
    // The Logger formats an Error anywhere in the attributes as {name, location, message, stack}.
    loggerFor('error', this.level())?.error(message, {
      ...this.keys,
      ...attributes,
      ...(error === undefined ? {} : { error: error instanceof Error ? error : String(error) }),
    });
  }
}

/**
 * A RequestLogger over the process Logger. Keys travel with each line instead of being appended to
 * the Logger, because the local server answers many requests at once in one process.
 * `level` is asked at each line: the config is loaded after the logger is made.
 */
export function requestLogger(keys: LogAttributes, level: () => LogLevel | undefined = NO_LEVEL): RequestLogger {
  return new BoundRequestLogger(keys, level);
}
