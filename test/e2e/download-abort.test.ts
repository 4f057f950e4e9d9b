// Downloads whose client goes away at the wrong moment: every file the local server opens is closed again,
// and every request leaves the in-flight count, whether the answer was sent, cut off, or never started.
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { FsBlobStore } from '#adapters/blob/fs-blob-store.js';
import { InMemoryMetrics } from '#adapters/metrics/memory-metrics.js';
import { openPgliteStore } from '#adapters/postgres/open-store.js';
import type { BlobStore, DownloadOptions, Store } from '#core/ports.js';
import { loadConfig } from '#functions/config.js';
import { startLocalServer, type LocalServer } from '#functions/local/server.js';
import { idlePipeline } from '#support/pipeline-deps.js';

// Counting descriptors needs /proc (Linux, as in CI); elsewhere these tests have nothing to count with.
const canCountFds = existsSync('/proc/self/fd');

/** A gate that a test opens by hand: holds a request at one step while the client does something. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => { open = resolve; });
  return { opened, open };
}

let dataDir: string;
let blobDir: string;
let store: Store;
let server: LocalServer;
const small = randomBytes(50_000);
// Above the size the blob store reads whole, so this one is streamed from the open file.
const large = randomBytes(3 * 1024 * 1024);
const ids = { small: '', large: '' };

/** Steps a test can hold: the store lookup (before any file is open) and the blob store's answer (file open). */
const holds: { lookup?: Promise<void>; opened?: Promise<void> } = {};
let downloadsStarted = 0;

const gcWarnings: string[] = [];
const onWarning = (w: Error) => {
  if (/garbage collection/i.test(w.message)) gcWarnings.push(w.message);
};

function openBlobFds(): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith(blobDir)) n++;
    } catch {
      // closed between listing and reading: not open
    }
  }
  return n;
}

/** Waits (bounded) until no request is in flight and no blob file is open; returns what is left. */
async function settled(): Promise<{ inFlight: number; fds: number }> {
  const now = () => ({ inFlight: server.inFlight(), fds: openBlobFds() });
  // What is left after 5 s is returned rather than thrown, so the assertion shows it.
  return vi.waitFor(() => {
    const left = now();
    if (left.inFlight !== 0 || left.fds !== 0) throw new Error('still busy');
    return left;
  }, { timeout: 5000, interval: 20 }).catch(now);
}

beforeAll(async () => {
  process.on('warning', onWarning);
  dataDir = await mkdtemp(join(tmpdir(), 'enot-download-abort-'));
  blobDir = join(dataDir, 'blobs');
  const real = await openPgliteStore();
  store = real;
  const blobs = new FsBlobStore(blobDir);
  for (const [name, bytes] of [['small', small], ['large', large]] as const) {
    const repo = await real.upsertRepository({ namespace: 'abort', name, cloneUrl: `https://github.com/abort/${name}` });
    const version = await real.upsertVersion({ repositoryId: repo.id, ref: '1.0.0', erlVersion: '26' });
    const build = await real.createBuild({ versionId: version.id });
    await real.transitionBuild(build.id, ['queued'], 'running');
    const artifactKey = `artifacts/${build.id}.ep`;
    const { sha256: artifactSha256 } = await blobs.put(artifactKey, bytes, 'application/x-tar');
    await real.transitionBuild(build.id, ['running'], 'succeeded', { artifactKey, artifactSize: bytes.length, artifactSha256 });
    ids[name] = build.id;
  }
  // The real store and blob store, with places where a test can hold a request.
  const heldStore = new Proxy(real, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      if (prop !== 'getBuild' && prop !== 'findLatestSuccessfulBuild') return value.bind(target);
      return async (...args: unknown[]) => {
        await holds.lookup;
        return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
      };
    },
  }) as Store;
  const heldBlobs: BlobStore = {
    put: (...a) => blobs.put(...a),
    putFile: (...a) => blobs.putFile(...a),
    get: (k) => blobs.get(k),
    stat: (k) => blobs.stat(k),
    digest: (k) => blobs.digest(k),
    delete: (k) => blobs.delete(k),
    async download(key: string, options: DownloadOptions) {
      downloadsStarted++;
      const answer = await blobs.download(key, options);
      await holds.opened;
      return answer;
    },
  };
  server = await startLocalServer({
    deps: {
      config: loadConfig({ ENOT_DATA_DIR: dataDir, ENOT_LOG_LEVEL: 'silent', PORT: '0' }),
      store: heldStore,
      blobs: heldBlobs,
      ...idlePipeline(),
      metrics: new InMemoryMetrics(),
    },
    port: 0,
  });
});

afterEach(() => {
  holds.lookup = undefined;
  holds.opened = undefined;
});

afterAll(async () => {
  process.off('warning', onWarning);
  await server?.close();
  await store?.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

function rawConnection(): Promise<Socket> {
  const { port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

function getRequest(path: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`;
}

function postGet(name: string): string {
  const body = JSON.stringify({ full_name: `abort/${name}`, versions: { ref: '1.0.0' } });
  return `POST /get HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/** Waits until the server has started `n` more downloads than `before`. */
function downloadsReach(n: number): Promise<void> {
  return vi.waitFor(() => {
    if (downloadsStarted < n) throw new Error(`only ${downloadsStarted} of ${n} downloads started`);
  }, { timeout: 5000, interval: 5 });
}

describe.skipIf(!canCountFds)('downloads cut off by the client', () => {
  it('still serves both sizes whole, and closes their files', async () => {
    for (const [name, bytes] of [['small', small], ['large', large]] as const) {
      const res = await fetch(`${server.url}/download/${ids[name]}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-length')).toBe(String(bytes.length));
      expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);
      const got = await fetch(`${server.url}/get`, {
        method: 'POST', body: JSON.stringify({ full_name: `abort/${name}`, versions: { ref: '1.0.0' } }),
      });
      expect(Buffer.from(await got.arrayBuffer()).equals(bytes)).toBe(true);
    }
    expect(await settled()).toEqual({ inFlight: 0, fds: 0 });
  });

  it('closes the file when the client left before it was opened', async () => {
    for (const name of ['small', 'large'] as const) {
      const held = gate();
      holds.lookup = held.opened;
      const before = downloadsStarted;
      const socket = await rawConnection();
      socket.write(name === 'small' ? postGet(name) : getRequest(`/download/${ids[name]}`));
      await new Promise((r) => setTimeout(r, 50));
      socket.destroy();
      await new Promise((r) => setTimeout(r, 50));
      held.open();
      await downloadsReach(before + 1);
      expect(await settled(), name).toEqual({ inFlight: 0, fds: 0 });
    }
  });

  it('closes the file when the client left between its opening and the answer', async () => {
    for (const name of ['small', 'large'] as const) {
      const held = gate();
      holds.opened = held.opened;
      const before = downloadsStarted;
      const socket = await rawConnection();
      socket.write(getRequest(`/download/${ids[name]}`));
      await downloadsReach(before + 1);
      socket.destroy();
      await new Promise((r) => setTimeout(r, 50));
      held.open();
      expect(await settled(), name).toEqual({ inFlight: 0, fds: 0 });
    }
  });

  it('closes the file when the client leaves in the middle of the body', async () => {
    const socket = await rawConnection();
    socket.write(getRequest(`/download/${ids.large}`));
    // Some of the body, then nothing more read: the server is mid-stream when the client goes.
    await new Promise<void>((resolve) => socket.once('data', () => resolve()));
    socket.pause();
    await new Promise((r) => setTimeout(r, 50));
    socket.destroy();
    expect(await settled()).toEqual({ inFlight: 0, fds: 0 });
  });

  it('closes the files of answers still queued behind another on a connection that goes away', async () => {
    // Pipelined on one keep-alive connection: the first answer is held, the others wait behind it,
    // and node never closes a waiting answer whose connection is gone.
    const held = gate();
    holds.opened = held.opened;
    const before = downloadsStarted;
    const socket = await rawConnection();
    socket.write(getRequest(`/download/${ids.large}`) + getRequest(`/download/${ids.large}`) + postGet('small'));
    await downloadsReach(before + 3);
    socket.destroy();
    await new Promise((r) => setTimeout(r, 50));
    held.open();
    expect(await settled()).toEqual({ inFlight: 0, fds: 0 });
  });

  it('leaves nothing for the garbage collector to close', async () => {
    const collect = (globalThis as { gc?: () => void }).gc;
    if (collect) collect();
    await new Promise((r) => setTimeout(r, 50));
    expect(gcWarnings).toEqual([]);
    expect(await settled()).toEqual({ inFlight: 0, fds: 0 });
  });
});
