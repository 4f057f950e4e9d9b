// Every input the local server can be sent gets an answer in the envelope, over raw sockets (what an HTTP client
// library will not send): bad request lines and header bytes, `//` and absolute-form targets, invalid bytes in
// parameters; and its limits, each with a short value: headers and whole-request time, body idle time, header
// size, connection cap. A client that leaves is an info line, never an error.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FsBlobStore } from '#adapters/blob/fs-blob-store.js';
import { InMemoryMetrics } from '#adapters/metrics/memory-metrics.js';
import { openPgliteStore } from '#adapters/postgres/open-store.js';
import type { Store } from '#core/ports.js';
import { loadConfig } from '#functions/config.js';
import { startLocalServer, type LocalServer } from '#functions/local/server.js';
import { JSON_TYPE } from '#support/envelope-assertions.js';
import { idlePipeline } from '#support/pipeline-deps.js';

const LIMITS = {
  ENOT_HTTP_HEADERS_TIMEOUT_S: '1',
  ENOT_HTTP_REQUEST_TIMEOUT_S: '2',
  ENOT_HTTP_BODY_IDLE_TIMEOUT_S: '0.5',
  ENOT_HTTP_MAX_CONNECTIONS: '6',
  ENOT_HTTP_MAX_HEADER_BYTES: '2048',
};

let dataDir: string;
let store: Store;
let server: LocalServer;
let largeBuildId = '';
/** Every line the server logs, kept here instead of printed. */
const lines: Record<string, unknown>[] = [];

beforeAll(async () => {
  const keep = (chunk: string | Uint8Array) => {
    for (const line of String(chunk).split('\n')) {
      if (line.startsWith('{')) lines.push(JSON.parse(line) as Record<string, unknown>);
    }
    return true;
  };
  vi.spyOn(process.stdout, 'write').mockImplementation(keep);
  vi.spyOn(process.stderr, 'write').mockImplementation(keep);
  dataDir = await mkdtemp(join(tmpdir(), 'enot-http-inputs-'));
  store = await openPgliteStore();
  const blobs = new FsBlobStore(join(dataDir, 'blobs'));
  // A package large enough to be streamed, for a client that leaves mid-download.
  const large = randomBytes(4 * 1024 * 1024);
  const repo = await store.upsertRepository({ namespace: 'inputs', name: 'large', cloneUrl: 'https://github.com/inputs/large' });
  const version = await store.upsertVersion({ repositoryId: repo.id, ref: '1.0.0', erlVersion: '26' });
  const build = await store.createBuild({ versionId: version.id });
  await store.transitionBuild(build.id, ['queued'], 'running');
  await blobs.put(`artifacts/${build.id}.ep`, large, 'application/x-tar');
  await store.transitionBuild(build.id, ['running'], 'succeeded', {
    artifactKey: `artifacts/${build.id}.ep`, artifactSize: large.length,
    artifactSha256: createHash('sha256').update(large).digest('hex'),
  });
  largeBuildId = build.id;
  server = await startLocalServer({
    deps: {
      config: loadConfig({ ENOT_DATA_DIR: dataDir, ENOT_LOG_LEVEL: 'info', PORT: '0', ...LIMITS }),
      store, blobs, ...idlePipeline(), metrics: new InMemoryMetrics(),
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

function open(): Promise<Socket> {
  const { port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Whether the server closed the connection after this answer. */
  closed: boolean;
}

/** Reads one Content-Length framed answer off `socket`; `closed` once the server has ended the connection too. */
function readAnswer(socket: Socket, waitForClose = false): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    let data = Buffer.alloc(0);
    let answer: RawAnswer | undefined;
    const parse = () => {
      const headEnd = data.indexOf('\r\n\r\n');
      if (headEnd < 0) return;
      const [statusLine, ...rest] = data.subarray(0, headEnd).toString('latin1').split('\r\n');
      const headers = Object.fromEntries(rest.map((l) => {
        const i = l.indexOf(':');
        return [l.slice(0, i).toLowerCase(), l.slice(i + 1).trim()];
      }));
      const length = Number(headers['content-length']);
      if (data.length < headEnd + 4 + length) return;
      answer = { status: Number(statusLine.split(' ')[1]), headers, body: data.subarray(headEnd + 4, headEnd + 4 + length).toString('utf8'), closed: false };
      if (!waitForClose) {
        socket.off('data', onData);
        resolve(answer);
      }
    };
    const onData = (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      parse();
    };
    socket.on('data', onData);
    socket.once('close', () => {
      if (answer) resolve({ ...answer, closed: true });
      else reject(new Error(`connection closed without an answer: ${JSON.stringify(data.toString('latin1'))}`));
    });
    socket.once('error', () => undefined);
  });
}

async function exchange(raw: string | Buffer, waitForClose = false): Promise<RawAnswer> {
  const socket = await open();
  const answer = readAnswer(socket, waitForClose);
  socket.write(raw);
  try {
    return await answer;
  } finally {
    socket.destroy();
  }
}

const get = (target: string) => `GET ${target} HTTP/1.1\r\nHost: localhost\r\n\r\n`;

/** Asserts the envelope of a failure: status, JSON content type, `result: false`, a string `response`; returns it. */
function failure(a: RawAnswer, status: number): string {
  expect(a.status, a.body).toBe(status);
  expect(a.headers['content-type']).toBe(JSON_TYPE);
  expect(a.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  const body = JSON.parse(a.body) as { result: unknown; response: unknown };
  expect(Object.keys(body).sort()).toEqual(['response', 'result']);
  expect(body.result).toBe(false);
  expect(typeof body.response).toBe('string');
  return body.response as string;
}

const errorsLogged = () => lines.filter((l) => l.level === 'ERROR');

describe('request targets', () => {
  it('routes a target that starts with // literally: no host is read out of it', async () => {
    expect(failure(await exchange(get('//evil.example/health')), 404)).toBe('No route for GET //evil.example/health');
    expect(failure(await exchange(get('//a%/x')), 404)).toBe('No route for GET //a%/x');
    expect(failure(await exchange(get('//search?name=x')), 404)).toBe('No route for GET //search');
    expect(failure(await exchange(get('/health//')), 404)).toBe('No route for GET /health//');
  });

  it('serves an absolute-form target by its path, whatever its host, and refuses other forms', async () => {
    const health = await exchange(get('http://evil.example/health'));
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toMatchObject({ result: true, response: { status: 'ok' } });
    expect(failure(await exchange(get('HTTP://evil.example//health')), 404)).toBe('No route for GET //health');
    const refused = 'Bad request: the request target must be a path such as /search?name=x';
    expect(failure(await exchange(get('http://a%/health')), 400)).toBe(refused);
    expect(failure(await exchange(get('ftp://x/health')), 400)).toBe(refused);
    expect(failure(await exchange('OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n'), 400)).toBe(refused);
  });
});

describe('invalid bytes in parameters', () => {
  const message = (source: string, name: string) =>
    `Validation failed: ${source} parameter ${name} must not contain NUL or other control characters, malformed %-escapes or bytes that are not UTF-8`;

  it.each([
    ['a NUL', '%00'], ['a NUL inside', 'a%00b'], ['a control character', 'a%01b'], ['DEL', '%7F'], ['a C1 control', '%C2%85'],
    ['a malformed escape', '%zz'], ['a lone %', 'ab%'], ['a short escape', '%f'], ['a byte that is not UTF-8', '%ff'],
    ['an encoded surrogate', '%ED%A0%80'], ['an overlong encoding', '%C0%AF'], ['a newline', 'a%0Ab'],
  ])('a query parameter with %s is a 400 naming it', async (_what, value) => {
    expect(failure(await exchange(get(`/search?name=${value}`)), 400)).toBe(message('query', 'name'));
    expect(failure(await exchange(get(`/search?name=pkg&namespace=${value}`)), 400)).toBe(message('query', 'namespace'));
  });

  it('checks path parameters, parameters no schema names, and parameter names', async () => {
    expect(failure(await exchange(get('/download/%00')), 400)).toBe(message('path', 'id'));
    expect(failure(await exchange(get('/download_erts/%ff')), 400)).toBe(message('path', 'version'));
    expect(failure(await exchange(get('/health?debug=%00')), 400)).toBe(message('query', 'debug'));
    expect(failure(await exchange(get('/health?%00=1')), 400)).toMatch(/^Validation failed: query parameter names must not contain .* \(got "\\u0000"\)$/);
    // Repeated: API Gateway's single-value map keeps the last, but every value is checked.
    expect(failure(await exchange(get('/search?name=%00&name=pkg')), 400)).toBe(message('query', 'name'));
  });

  it('lets tabs, spaces and any well-formed text through to the schemas', async () => {
    for (const value of ['a%09b', 'a+b', '%C3%BF', '%F0%9F%98%80', 'a%25zz']) {
      const a = await exchange(get(`/search?name=${value}`));
      expect(a.status, value).toBe(200);
      expect(JSON.parse(a.body)).toEqual({ result: true, response: [] });
    }
    expect(errorsLogged()).toEqual([]);
  });
});

describe("node's parser errors", () => {
  it.each([
    ['a request line that is not HTTP', 'GARBAGE\r\n\r\n'],
    ['a NUL in the target', 'GET /se\x00arch HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['a space in the target', 'GET /a b/c HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['an unknown method', 'BREW / HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['a bad HTTP version', 'GET / HTTP/9.9\r\nHost: x\r\n\r\n'],
    ['a control byte in a header name', 'GET / HTTP/1.1\r\nHost: x\r\nBa\x01d: y\r\n\r\n'],
    ['a control byte in a header value', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n'],
    ['a header without a colon', 'GET / HTTP/1.1\r\nHost: x\r\nnocolon\r\n\r\n'],
    ['a Content-Length that is not a number', 'POST /builds HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n'],
    ['two different Content-Lengths', 'POST /builds HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab'],
    ['a bad chunk size', 'POST /builds HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'],
    ['a bare LF inside a header line', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\nb\r\n\r\n'],
  ])('%s is a 400 in the envelope, and the connection closes', async (_what, raw) => {
    const a = await exchange(Buffer.from(raw, 'latin1'), true);
    expect(failure(a, 400)).toMatch(/^Bad request: [\x20-\x7e]+$/);
    expect(a.headers.connection).toBe('close');
    expect(a.closed).toBe(true);
  });

  it('answers headers over the limit with a 431 in the envelope', async () => {
    const a = await exchange(`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(3000)}\r\n\r\n`, true);
    expect(failure(a, 431)).toBe('Request header fields too large (limit 2048 bytes for the request line and headers)');
    expect(a.closed).toBe(true);
    // Below the limit the same request is served.
    expect((await exchange(`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(1500)}\r\n\r\n`)).status).toBe(200);
  });

  it('logs them as info, never as errors', () => {
    expect(lines.some((l) => l.message === 'request refused by the HTTP parser' && l.level === 'INFO')).toBe(true);
    expect(errorsLogged()).toEqual([]);
  });
});

describe('time limits', () => {
  it('cuts off a client whose headers do not arrive in time with a 408 and closes', async () => {
    const socket = await open();
    const answer = readAnswer(socket, true);
    const started = performance.now();
    socket.write('GET /health HTTP/1.1\r\nHost: x\r\n');
    const a = await answer;
    expect(failure(a, 408)).toBe('Request timeout: headers must arrive within 1 s and the whole request within 2 s');
    expect(a.closed).toBe(true);
    // The limit, plus at most node's check interval (a tenth of it) and some slack for a loaded machine.
    expect(performance.now() - started).toBeGreaterThan(900);
    expect(performance.now() - started).toBeLessThan(4000);
  });

  it('cuts off a body that stops arriving with a 408 after the idle limit and closes', async () => {
    const socket = await open();
    const answer = readAnswer(socket, true);
    const started = performance.now();
    socket.write('POST /builds HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n{"full_name"');
    const a = await answer;
    expect(failure(a, 408)).toBe('Request timeout: no part of the body arrived for 0.5 s');
    expect(a.closed).toBe(true);
    expect(performance.now() - started).toBeGreaterThan(450);
    expect(performance.now() - started).toBeLessThan(1900);
  });

  it('cuts off a body that trickles in, under the idle limit, once the whole request takes too long', async () => {
    const socket = await open();
    const answer = readAnswer(socket, true);
    const started = performance.now();
    socket.write('POST /builds HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n');
    // One byte every 200 ms (under the 0.5 s idle limit) for at most 8 s: far more than the 2 s request limit.
    let sent = 0;
    const trickle = setInterval(() => {
      if (socket.destroyed || ++sent > 40) clearInterval(trickle);
      else socket.write(' ');
    }, 200);
    try {
      const a = await answer;
      expect(failure(a, 408)).toBe('Request timeout: headers must arrive within 1 s and the whole request within 2 s');
      expect(a.closed).toBe(true);
      expect(performance.now() - started).toBeGreaterThan(1900);
      expect(performance.now() - started).toBeLessThan(5000);
    } finally {
      clearInterval(trickle);
    }
    await vi.waitFor(() => expect(server.inFlight()).toBe(0));
  });
});

describe('clients that leave', () => {
  it('a client that leaves mid-body is an info line, not an error', async () => {
    const from = lines.length;
    const socket = await open();
    socket.write('POST /buildAsync HTTP/1.1\r\nHost: x\r\nX-Correlation-Id: leaves-mid-body\r\nContent-Length: 200\r\n\r\n{"full_name":"a/b"');
    await vi.waitFor(() => expect(server.inFlight()).toBe(1));
    socket.destroy();
    await vi.waitFor(() => expect(server.inFlight()).toBe(0));
    const mine = lines.slice(from).filter((l) => l.correlation_id === 'leaves-mid-body');
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ level: 'INFO', message: 'request', disconnected: 'before its request body was complete', route: 'build-async' });
    expect(mine[0].status).toBeUndefined();
    expect(errorsLogged()).toEqual([]);
  });

  it('a client that leaves mid-download is an info line, not an error', async () => {
    const from = lines.length;
    const socket = await open();
    socket.write(`GET /download/${largeBuildId} HTTP/1.1\r\nHost: x\r\nX-Correlation-Id: leaves-mid-download\r\n\r\n`);
    await new Promise<void>((resolve) => socket.once('data', () => resolve()));
    socket.pause();
    socket.destroy();
    await vi.waitFor(() => expect(lines.slice(from).some((l) => l.correlation_id === 'leaves-mid-download' && l.message === 'request')).toBe(true));
    const mine = lines.slice(from).filter((l) => l.correlation_id === 'leaves-mid-download');
    expect(mine.map((l) => l.level)).toEqual(mine.map(() => 'INFO'));
    expect(mine.find((l) => l.message === 'request')).toMatchObject({ status: 200, disconnected: 'before the whole answer was sent' });
    expect(errorsLogged()).toEqual([]);
  });
});

// Last: until the server has seen the held connections close, new ones may still be refused.
describe('the connection cap', () => {
  it('closes connections over the cap unanswered, warns, and serves again once one is free', async () => {
    // Each holds a served keep-alive connection open.
    const held: Socket[] = [];
    try {
      for (let i = 0; i < 6; i++) {
        const s = await open();
        const a = readAnswer(s);
        s.write(get('/health'));
        expect((await a).status).toBe(200);
        held.push(s);
      }
      const over = await open();
      const closed = await new Promise<string>((resolve) => {
        let data = '';
        over.on('data', (c: Buffer) => { data += c.toString('latin1'); });
        over.once('close', () => resolve(data));
        over.once('error', () => undefined);
        over.write(get('/health'));
      });
      expect(closed).toBe('');
      await vi.waitFor(() => expect(lines.some((l) => l.level === 'WARN'
        && l.message === 'connections refused: the server is at its connection cap' && l.maxConnections === 6)).toBe(true));
      held.pop()!.destroy();
      await vi.waitFor(async () => expect((await exchange(get('/health'))).status).toBe(200), { timeout: 5000, interval: 50 });
    } finally {
      for (const s of held) s.destroy();
    }
  });
});
