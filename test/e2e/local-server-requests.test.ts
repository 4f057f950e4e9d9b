// The local server's handling of raw requests: odd request targets read as the URL standard reads them,
// repeated query parameters, pipelined requests answered in order, and one summary line per request.
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FsBlobStore } from '#adapters/blob/fs-blob-store.js';
import { InMemoryMetrics } from '#adapters/metrics/memory-metrics.js';
import { openPgliteStore } from '#adapters/postgres/open-store.js';
import type { Store } from '#core/ports.js';
import { loadConfig } from '#functions/config.js';
import { startLocalServer, type LocalServer } from '#functions/local/server.js';
import { idlePipeline } from '#support/pipeline-deps.js';

let dataDir: string;
let store: Store;
let server: LocalServer;
/** What the server writes to stdout (its info lines), kept here instead of printed. */
const stdout: string[] = [];

beforeAll(async () => {
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout.push(String(chunk));
    return true;
  });
  dataDir = await mkdtemp(join(tmpdir(), 'enot-local-requests-'));
  store = await openPgliteStore();
  server = await startLocalServer({
    deps: {
      config: loadConfig({ ENOT_DATA_DIR: dataDir, ENOT_LOG_LEVEL: 'info', PORT: '0' }),
      store,
      blobs: new FsBlobStore(join(dataDir, 'blobs')),
      ...idlePipeline(),
      metrics: new InMemoryMetrics(),
    },
    port: 0,
  });
});

afterAll(async () => {
  vi.restoreAllMocks();
  await server?.close();
  await store?.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Sends `raw` as is on one connection and reads `count` answers (Content-Length framed) off it. */
function exchange(raw: string, count = 1): Promise<RawAnswer[]> {
  const { port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => socket.write(raw));
    let data = Buffer.alloc(0);
    const answers: RawAnswer[] = [];
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      for (;;) {
        const headEnd = data.indexOf('\r\n\r\n');
        if (headEnd < 0) return;
        const [statusLine, ...lines] = data.subarray(0, headEnd).toString('latin1').split('\r\n');
        const headers = Object.fromEntries(lines.map((l) => {
          const i = l.indexOf(':');
          return [l.slice(0, i).toLowerCase(), l.slice(i + 1).trim()];
        }));
        const length = Number(headers['content-length']);
        if (data.length < headEnd + 4 + length) return;
        answers.push({
          status: Number(statusLine.split(' ')[1]),
          headers,
          body: data.subarray(headEnd + 4, headEnd + 4 + length).toString('utf8'),
        });
        data = data.subarray(headEnd + 4 + length);
        if (answers.length === count) {
          socket.destroy();
          resolve(answers);
          return;
        }
      }
    });
    socket.once('error', reject);
    socket.once('close', () => reject(new Error(`connection closed after ${answers.length} of ${count} answers`)));
  });
}

const get = (target: string, headers = '') => `GET ${target} HTTP/1.1\r\nHost: localhost\r\n${headers}\r\n`;

describe('request targets', () => {
  it('reads dot segments and escapes as the URL standard does', async () => {
    const [dots] = await exchange(get('/search/../last_builds?n=1'));
    expect(dots.status).toBe(200);
    expect(JSON.parse(dots.body)).toEqual({ result: true, response: [] });
    const [escaped] = await exchange(get('/download_erts/26%2E2'));
    expect(escaped).toMatchObject({ status: 200, body: 'No such erlang' });
    // `//x` is a path, never a host: it matches no route (test/e2e/http-inputs.test.ts has the other forms).
    const [hostLike] = await exchange(get('//search?name=x'));
    expect(hostLike.status).toBe(404);
    expect(JSON.parse(hostLike.body)).toEqual({ result: false, response: 'No route for GET //search' });
  });

  it('keeps the last value of a repeated query parameter, as API Gateway does', async () => {
    const [lastValid] = await exchange(get('/last_builds?n=abc&n=2'));
    expect(lastValid.status).toBe(200);
    const [lastInvalid] = await exchange(get('/last_builds?n=2&n=abc'));
    expect(lastInvalid.status).toBe(400);
    expect(JSON.parse(lastInvalid.body).response).toBe('Validation failed: query parameter n must be a positive integer');
    const [plus] = await exchange(get('/search?name=a+b%2Fc&namespace='));
    expect(plus.status).toBe(200);
  });
});

describe('connections', () => {
  it('answers pipelined requests in order, each with its own ids', async () => {
    const raw = get('/last_builds?n=1', 'X-Correlation-Id: first\r\n')
      + get('/nope')
      + get('/get')
      + `POST /versions HTTP/1.1\r\nHost: localhost\r\nContent-Length: 20\r\n\r\n{"full_name": "a/b"}`;
    const answers = await exchange(raw, 4);
    expect(answers.map((a) => a.status)).toEqual([200, 404, 405, 200]);
    expect(answers[0].headers['x-correlation-id']).toBe('first');
    expect(answers[2].headers.allow).toBe('POST');
    const ids = answers.map((a) => a.headers['x-request-id']);
    expect(new Set(ids).size).toBe(4);
    for (const a of answers.slice(1)) expect(a.headers['x-correlation-id']).toBe(a.headers['x-request-id']);
  });

  it('takes a deep pipeline on one connection without piling listeners on it', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    try {
      const answers = await exchange(get('/last_builds?n=1').repeat(25), 25);
      expect(answers.map((a) => a.status)).toEqual(Array(25).fill(200));
      // A MaxListenersExceededWarning is emitted on the next tick: let one pass before looking (an absence).
      await new Promise((r) => setTimeout(r, 20));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).toEqual([]);
  });
});

describe('the summary line', () => {
  it('writes one line per request with its ids, route, status and time', async () => {
    const from = stdout.length;
    const answers = await exchange(get('/download_erts/25', 'X-Correlation-Id: sum-1\r\n') + get('/missing'), 2);
    // The line is written once the answer is closed, a moment after the client has it.
    const requestLines = () => stdout.slice(from).map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.message === 'request');
    await vi.waitFor(() => expect(requestLines()).toHaveLength(2), { timeout: 5000, interval: 10 });
    const entries = requestLines();
    expect(entries).toHaveLength(2);
    expect(entries[0]).toMatchObject({
      level: 'INFO', correlation_id: 'sum-1', route: 'download-erts', requestId: answers[0].headers['x-request-id'],
      method: 'GET', path: '/download_erts/25', status: 200, ms: expect.any(Number),
    });
    expect(entries[1]).toMatchObject({ route: 'unknown', path: '/missing', status: 404 });
  });
});
