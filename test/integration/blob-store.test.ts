// The BlobStore contract, run against the filesystem adapter and the S3 adapter (on s3rver).
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidBlobKeyError } from '#adapters/blob/blob-key.js';
import { FsBlobStore } from '#adapters/blob/fs-blob-store.js';
import { S3BlobStore } from '#adapters/blob/s3-blob-store.js';
import type { BlobStore } from '#core/ports.js';
import { startS3rver, type TestS3 } from '#support/s3rver.js';

const PRESIGN_TTL_S = 437;
const BAD_KEYS = ['../x', '/abs', 'a//b', 'a/../b', '', 'a/', './a', 'a/./b', 'a\\b', 'a b', 'é'];

interface Harness {
  blobs: BlobStore;
  close(): Promise<void>;
}

const sha256Hex = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** Every byte value, in a non-trivial order, so encoding slips (utf-8, CRLF, NUL) would show. */
function binarySample(): Buffer {
  const bytes = Buffer.alloc(4096 + 17);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + (i >> 8)) & 0xff;
  return bytes;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Every file under `dir`, as '/'-separated paths relative to it. */
async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)).split('\\').join('/'))
    .sort();
}

// Scratch space for source files (putFile) and the filesystem store's roots.
let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'enot-blob-test-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

const adapters: Array<{ name: string; open(): Promise<Harness> }> = [
  {
    name: 'FsBlobStore',
    async open() {
      const root = await mkdtemp(join(scratch, 'fs-'));
      return { blobs: new FsBlobStore(join(root, 'blobs')), close: () => rm(root, { recursive: true, force: true }) };
    },
  },
  {
    name: 'S3BlobStore',
    async open() {
      const s3 = await startS3rver();
      return {
        blobs: new S3BlobStore({ client: s3.client, bucket: s3.bucket, presignTtlS: PRESIGN_TTL_S }),
        close: () => s3.close(),
      };
    },
  },
];

describe.each(adapters)('$name', ({ open }) => {
  let harness: Harness;
  let blobs: BlobStore;
  beforeAll(async () => {
    harness = await open();
    blobs = harness.blobs;
  });
  afterAll(async () => {
    await harness?.close();
  });

  it('returns exactly the bytes put, with their size and sha256', async () => {
    const bytes = binarySample();
    const info = await blobs.put('artifacts/round/trip.ep', bytes, 'application/x-tar');
    expect(info).toEqual({ size: bytes.length, sha256: sha256Hex(bytes) });

    const back = await blobs.get('artifacts/round/trip.ep');
    expect(back).not.toBeNull();
    expect(Buffer.compare(back!, bytes)).toBe(0);
  });

  it('accepts a Uint8Array and a string body', async () => {
    const u8 = new Uint8Array([0, 255, 10, 13, 0, 128]);
    expect(await blobs.put('logs/u8', u8, 'application/octet-stream')).toEqual({ size: 6, sha256: sha256Hex(u8) });
    expect(Buffer.compare((await blobs.get('logs/u8'))!, Buffer.from(u8))).toBe(0);

    const text = 'compiling… ok\n';
    const utf8 = Buffer.from(text, 'utf8');
    expect(await blobs.put('logs/text.log', text, 'text/plain')).toEqual({ size: utf8.length, sha256: sha256Hex(utf8) });
    expect((await blobs.get('logs/text.log'))!.toString('utf8')).toBe(text);
  });

  it('stores an empty object', async () => {
    expect(await blobs.put('logs/empty', Buffer.alloc(0), 'text/plain')).toEqual({ size: 0, sha256: sha256Hex(Buffer.alloc(0)) });
    expect((await blobs.get('logs/empty'))!.length).toBe(0);
    expect((await blobs.stat('logs/empty'))?.size).toBe(0);
  });

  it('uploads a ~5 MB file with putFile', async () => {
    const bytes = randomBytes(5 * 1024 * 1024 + 4099);
    const source = join(scratch, `source-${randomBytes(4).toString('hex')}.ep`);
    await writeFile(source, bytes);

    const info = await blobs.putFile('artifacts/big/pkg.ep', source, 'application/x-tar');
    expect(info).toEqual({ size: bytes.length, sha256: sha256Hex(bytes) });
    expect((await blobs.stat('artifacts/big/pkg.ep'))?.size).toBe(bytes.length);
    const back = await blobs.get('artifacts/big/pkg.ep');
    expect(back?.length).toBe(bytes.length);
    expect(Buffer.compare(back!, bytes)).toBe(0);
  });

  it('stats an object', async () => {
    await blobs.put('erts/26.tar', Buffer.from('twelve bytes'), 'application/x-tar');
    const info = await blobs.stat('erts/26.tar');
    expect(info?.size).toBe(12);
  });

  it('answers null for a missing key (get, stat, download)', async () => {
    await blobs.put('artifacts/present/x.ep', Buffer.from('x'), 'application/x-tar');
    for (const key of ['artifacts/absent.ep', 'artifacts/present/y.ep', 'artifacts/present', 'artifacts/present/x.ep/z']) {
      expect(await blobs.get(key), key).toBeNull();
      expect(await blobs.stat(key), key).toBeNull();
      expect(await blobs.download(key, { contentType: 'application/x-tar', redirectStatus: 302 }), key).toBeNull();
    }
  });

  it.each(BAD_KEYS)('rejects the bad key %j everywhere', async (key) => {
    const source = join(scratch, 'bad-key-source');
    await writeFile(source, 'x');
    await expect(blobs.put(key, Buffer.from('x'), 'text/plain')).rejects.toThrow(InvalidBlobKeyError);
    await expect(blobs.putFile(key, source, 'text/plain')).rejects.toThrow(InvalidBlobKeyError);
    await expect(blobs.get(key)).rejects.toThrow(InvalidBlobKeyError);
    await expect(blobs.stat(key)).rejects.toThrow(InvalidBlobKeyError);
    await expect(blobs.download(key, { contentType: 'text/plain', redirectStatus: 302 })).rejects.toThrow(InvalidBlobKeyError);
  });

  it('overwrites an object', async () => {
    await blobs.put('logs/over.log', 'first version, longer than the second', 'text/plain');
    const info = await blobs.put('logs/over.log', 'second', 'text/plain');
    expect(info.size).toBe(6);
    expect((await blobs.get('logs/over.log'))!.toString()).toBe('second');
    expect((await blobs.stat('logs/over.log'))?.size).toBe(6);
  });
});

describe('FsBlobStore specifics', () => {
  let root: string;
  let blobs: FsBlobStore;
  beforeAll(async () => {
    root = join(await mkdtemp(join(scratch, 'fs-only-')), 'blobs');
    blobs = new FsBlobStore(root);
  });

  it('streams a download with exactly the bytes, the content type and the filename', async () => {
    const bytes = binarySample();
    await blobs.put('artifacts/dl/pkg.ep', bytes, 'application/x-tar');
    const res = await blobs.download('artifacts/dl/pkg.ep', {
      contentType: 'application/x-tar', filename: 'pkg.ep', redirectStatus: 303,
    });
    if (res?.kind !== 'stream') throw new Error(`expected a stream, got ${JSON.stringify(res)}`);
    expect(res.size).toBe(bytes.length);
    expect(res.contentType).toBe('application/x-tar');
    expect(res.filename).toBe('pkg.ep');
    expect(Buffer.compare(await readAll(res.body), bytes)).toBe(0);
  });

  it('leaves a download without filename without one', async () => {
    await blobs.put('logs/plain.log', 'log', 'text/plain');
    const res = await blobs.download('logs/plain.log', { contentType: 'text/plain', redirectStatus: 302 });
    if (res?.kind !== 'stream') throw new Error('expected a stream');
    expect(res.filename).toBeUndefined();
    expect((await readAll(res.body)).toString()).toBe('log');
  });

  it('keeps objects as plain files at their key and leaves no temp files behind', async () => {
    const source = join(scratch, 'atomic-source');
    await writeFile(source, randomBytes(300_000));
    // Packages are written once: of two different writes racing for one key, exactly one lands, whole (logs may be
    // replaced, and the last whole write wins). The same bytes twice are no conflict.
    const settled = await Promise.allSettled([
      blobs.put('artifacts/a/one.ep', randomBytes(1000), 'application/x-tar'),
      blobs.put('artifacts/a/one.ep', randomBytes(2000), 'application/x-tar'),
      blobs.putFile('artifacts/a/two.ep', source, 'application/x-tar'),
      blobs.putFile('artifacts/a/two.ep', source, 'application/x-tar'),
      blobs.put('logs/a/three.log', randomBytes(1000), 'text/plain'),
      blobs.put('logs/a/three.log', randomBytes(2000), 'text/plain'),
      blobs.put('erts/27.tar', randomBytes(10), 'application/x-tar'),
    ]);
    expect(settled.filter((r) => r.status === 'rejected')).toHaveLength(1);
    expect(settled.slice(0, 2).filter((r) => r.status === 'rejected')).toHaveLength(1);
    const files = await listFiles(root);
    expect(files).toEqual(expect.arrayContaining(['artifacts/a/one.ep', 'artifacts/a/two.ep', 'logs/a/three.log', 'erts/27.tar']));
    expect(files.filter((f) => f.includes('tmp'))).toEqual([]);
    expect([1000, 2000]).toContain((await blobs.stat('artifacts/a/one.ep'))?.size);
    expect([1000, 2000]).toContain((await blobs.stat('logs/a/three.log'))?.size);
  });

  it('leaves neither an object nor a temp file when putFile fails', async () => {
    await expect(blobs.putFile('artifacts/failed/x.ep', join(scratch, 'no-such-source'), 'application/x-tar')).rejects.toThrow();
    expect(await blobs.stat('artifacts/failed/x.ep')).toBeNull();
    expect((await listFiles(root)).filter((f) => f.startsWith('artifacts/failed/'))).toEqual([]);
  });

  it('never writes outside its root for a traversing key', async () => {
    await expect(blobs.put('../escaped', 'x', 'text/plain')).rejects.toThrow(InvalidBlobKeyError);
    await expect(blobs.put('a/../../escaped', 'x', 'text/plain')).rejects.toThrow(InvalidBlobKeyError);
    expect(existsSync(join(root, '..', 'escaped'))).toBe(false);
  });

  describe('the memory of recent downloads', () => {
    const dl = { contentType: 'application/x-tar', redirectStatus: 302 } as const;
    async function body(store: FsBlobStore, key: string): Promise<Buffer | null> {
      const res = await store.download(key, dl);
      if (res === null) return null;
      if (res.kind !== 'stream') throw new Error('expected a stream');
      return readAll(res.body);
    }

    it('serves a repeated download from memory (the file is gone, the bytes still come), unless turned off', async () => {
      const dir = await mkdtemp(join(scratch, 'recent-'));
      const cached = new FsBlobStore(dir);
      const uncached = new FsBlobStore(dir, { downloadCacheBytes: 0 });
      const bytes = randomBytes(5000);
      await cached.put('artifacts/r/hot.ep', bytes, 'application/x-tar');
      expect(Buffer.compare((await body(cached, 'artifacts/r/hot.ep'))!, bytes)).toBe(0);
      expect(Buffer.compare((await body(uncached, 'artifacts/r/hot.ep'))!, bytes)).toBe(0);
      await rm(join(dir, 'artifacts/r/hot.ep'));
      expect(Buffer.compare((await body(cached, 'artifacts/r/hot.ep'))!, bytes)).toBe(0);
      expect(await body(uncached, 'artifacts/r/hot.ep')).toBeNull();
    });

    it('forgets a key that is written again', async () => {
      const store = new FsBlobStore(await mkdtemp(join(scratch, 'recent-')));
      await store.put('logs/r.log', 'first', 'text/plain');
      expect((await body(store, 'logs/r.log'))?.toString()).toBe('first');
      await store.put('logs/r.log', 'second', 'text/plain');
      expect((await body(store, 'logs/r.log'))?.toString()).toBe('second');
    });

    it('keeps within its budget by dropping the least recently downloaded', async () => {
      const dir = await mkdtemp(join(scratch, 'recent-'));
      const store = new FsBlobStore(dir, { downloadCacheBytes: 2500 });
      for (const name of ['a', 'b', 'c']) await store.put(`artifacts/lru/${name}.ep`, randomBytes(1000), 'application/x-tar');
      for (const name of ['a', 'b', 'a', 'c']) await body(store, `artifacts/lru/${name}.ep`);
      for (const name of ['a', 'b', 'c']) await rm(join(dir, `artifacts/lru/${name}.ep`));
      expect(await body(store, 'artifacts/lru/a.ep')).not.toBeNull();
      expect(await body(store, 'artifacts/lru/b.ep')).toBeNull();
      expect(await body(store, 'artifacts/lru/c.ep')).not.toBeNull();
    });
  });
});

describe('S3BlobStore specifics', () => {
  let s3: TestS3;
  let blobs: S3BlobStore;
  beforeAll(async () => {
    s3 = await startS3rver();
    blobs = new S3BlobStore({ client: s3.client, bucket: s3.bucket, presignTtlS: PRESIGN_TTL_S });
  });
  afterAll(async () => {
    await s3?.close();
  });

  it.each([302, 303] as const)('redirects (%i) to a presigned URL that serves the bytes as an attachment', async (status) => {
    const bytes = binarySample();
    await blobs.put(`artifacts/redirect/${status}.ep`, bytes, 'application/x-tar');
    const res = await blobs.download(`artifacts/redirect/${status}.ep`, {
      contentType: 'application/x-tar', filename: `my_pkg-${status}.ep`, redirectStatus: status,
    });
    if (res?.kind !== 'redirect') throw new Error(`expected a redirect, got ${JSON.stringify(res)}`);
    expect(res.status).toBe(status);

    const url = new URL(res.location);
    expect(url.origin).toBe(s3.endpoint);
    expect(url.searchParams.get('X-Amz-Expires')).toBe(String(PRESIGN_TTL_S));

    const fetched = await fetch(res.location);
    expect(fetched.status).toBe(200);
    expect(fetched.headers.get('content-type')).toBe('application/x-tar');
    expect(fetched.headers.get('content-disposition')).toBe(`attachment; filename="my_pkg-${status}.ep"`);
    expect(Buffer.compare(Buffer.from(await fetched.arrayBuffer()), bytes)).toBe(0);
  });

  it('presigns without a Content-Disposition when no filename is given', async () => {
    await blobs.put('logs/presigned.log', 'log text', 'text/plain');
    const res = await blobs.download('logs/presigned.log', { contentType: 'text/plain; charset=utf-8', redirectStatus: 302 });
    if (res?.kind !== 'redirect') throw new Error('expected a redirect');
    expect(new URL(res.location).searchParams.has('response-content-disposition')).toBe(false);
    const fetched = await fetch(res.location);
    expect(fetched.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await fetched.text()).toBe('log text');
  });

  it('quotes a hostile filename safely', async () => {
    await blobs.put('artifacts/hostile.ep', 'x', 'application/x-tar');
    const res = await blobs.download('artifacts/hostile.ep', {
      contentType: 'application/x-tar', filename: 'a"b\r\nX-Evil: 1.ep', redirectStatus: 302,
    });
    if (res?.kind !== 'redirect') throw new Error('expected a redirect');
    expect(new URL(res.location).searchParams.get('response-content-disposition'))
      .toBe('attachment; filename="a_b__X-Evil: 1.ep"');
  });

  it('stores the content type and the sha256 with the object', async () => {
    const bytes = randomBytes(777);
    await blobs.put('artifacts/meta.ep', bytes, 'application/x-tar');
    const head = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: 'artifacts/meta.ep' }));
    expect(head.ContentType).toBe('application/x-tar');
    expect(await blobs.stat('artifacts/meta.ep')).toEqual({ size: 777, sha256: sha256Hex(bytes) });
  });

  it('fails loudly, not with null, when the bucket does not exist', async () => {
    const wrong = new S3BlobStore({ client: s3.client, bucket: `${s3.bucket}-missing`, presignTtlS: PRESIGN_TTL_S });
    await expect(wrong.get('artifacts/x.ep')).rejects.toThrow();
  });
});
