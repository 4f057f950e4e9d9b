// Request loggers cost nothing at a level that is off: no Powertools call (which reads the environment
// every time), no attributes merged; lines at a level that is on still go out whole.
import { Logger } from '@aws-lambda-powertools/logger';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { logEnabled, requestLogger, type LogLevel } from '#functions/log.js';

afterEach(() => vi.restoreAllMocks());

/** Attributes that count how often something reads them. */
function countingAttributes() {
  let reads = 0;
  const attributes = {};
  Object.defineProperty(attributes, 'detail', { enumerable: true, get: () => { reads++; return 'x'; } });
  return { attributes, reads: () => reads };
}

function silenceOutput() {
  const written: string[] = [];
  for (const stream of ['stdout', 'stderr'] as const) {
    vi.spyOn(process[stream], 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
  }
  return written;
}

describe('logEnabled', () => {
  it('orders the levels debug < info < warn < error < silent', () => {
    const levels: LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];
    for (const [i, level] of levels.entries()) {
      for (const [j, line] of (['debug', 'info', 'warn', 'error'] as const).entries()) {
        expect(logEnabled(line, level), `${line} at ${level}`).toBe(j >= i);
      }
    }
  });
});

describe('requestLogger', () => {
  it('does not reach Powertools, nor read the attributes, for lines below the level', () => {
    const written = silenceOutput();
    const calls = (['debug', 'info', 'warn', 'error'] as const).map((m) => vi.spyOn(Logger.prototype, m));
    const { attributes, reads } = countingAttributes();
    const log = requestLogger({ correlation_id: 'c-1', route: 'search' }, () => 'error');
    log.debug('d', attributes);
    log.info('i', attributes);
    log.warn('w', attributes);
    expect(calls.every((c) => c.mock.calls.length === 0)).toBe(true);
    expect(reads()).toBe(0);
    expect(written).toEqual([]);

    log.error('e', new Error('boom'), attributes);
    expect(calls[3]).toHaveBeenCalledTimes(1);
    expect(calls[3].mock.calls[0][1]).toMatchObject({ correlation_id: 'c-1', route: 'search', detail: 'x' });
    expect(reads()).toBe(1);
    const line = JSON.parse(written.join('')) as Record<string, unknown>;
    expect(line).toMatchObject({ level: 'ERROR', message: 'e', correlation_id: 'c-1', detail: 'x', error: { message: 'boom' } });
  });

  it('asks for the level at each line: a config loaded later applies to a logger made before', () => {
    const written = silenceOutput();
    let level: LogLevel | undefined;
    const log = requestLogger({ route: 'r' }, () => level);
    level = 'silent';
    log.error('not shown');
    expect(written).toEqual([]);
    level = 'info';
    log.info('shown', { n: 1 });
    expect(written).toHaveLength(1);
    expect(JSON.parse(written[0])).toMatchObject({ level: 'INFO', message: 'shown', route: 'r', n: 1 });
  });
});
