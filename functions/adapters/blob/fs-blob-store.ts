// BlobStore on the local filesystem (local mode): one file per key under a root directory.
import { createHash, randomBytes } from 'node:crypto';
import fs, { createReadStream, createWriteStream } from 'node:fs';
import { link, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BlobExistsError } from '#core/errors.js';
import type { BlobDigest, BlobInfo, BlobStore, DownloadOptions, DownloadResponse } from '#core/ports.js';
import { assertValidBlobKey, isWriteOnceKey } from './blob-key.js';

// '~' is not allowed in keys, so a temp file can never be mistaken for (or collide with) an object.
const TEMP_MARKER = '.tmp~';

/** Downloads up to this size are read whole into memory; larger ones (ERTS tarballs) are streamed. */
const WHOLE_READ_MAX_BYTES = 1024 * 1024;
/** Read size when streaming a larger file: fewer reads and socket writes than the 64 kB default. */
const STREAM_CHUNK_BYTES = 256 * 1024;

/** Default memory for recently downloaded small blobs: packages are tens of kB, so a few thousand of them. */
export const DOWNLOAD_CACHE_BYTES = 64 * 1024 * 1024;

/** A small blob's bytes as read, with the version (fileVersion) of the file they were read from. */
interface RecentBlob {
  bytes: Buffer;
  version: string;
}

/**
 * The most recently downloaded small blobs, newest last (a Map keeps insertion order), up to a byte budget.
 * Keys are immutable, so a cached body never goes stale; a put to a key drops it anyway, and so does a digest that
 * finds the file changed under it (repaired or replaced by hand).
 */
class RecentBlobs {
  private readonly entries = new Map<string, RecentBlob>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  get(key: string): RecentBlob | undefined {
    const blob = this.entries.get(key);
    if (blob) {
      // Touched: it moves to the newest end.
      this.entries.delete(key);
      this.entries.set(key, blob);
    }
    return blob;
  }

  set(key: string, blob: RecentBlob): void {
    if (blob.bytes.length > this.maxBytes) return;
    this.delete(key);
    this.entries.set(key, blob);
    this.bytes += blob.bytes.length;
    for (const [oldest, old] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.bytes -= old.bytes.length;
    }
  }

  delete(key: string): void {
    const blob = this.entries.get(key);
    if (!blob) return;
    this.entries.delete(key);
    this.bytes -= blob.bytes.length;
  }
}

/** How many times digest() hashes a file that keeps changing while it is read before it gives up. */
const DIGEST_ATTEMPTS = 3;

export interface FsBlobStoreOptions {
  /** Memory for recently downloaded blobs up to WHOLE_READ_MAX_BYTES each; 0 turns the cache off. */
  downloadCacheBytes?: number;
}

export class FsBlobStore implements BlobStore {
  // Serving a popular package from memory spares an open, a stat, a read and a close on the thread pool.
  private readonly recent: RecentBlobs | null;

  constructor(private readonly rootDir: string, options: FsBlobStoreOptions = {}) {
    const budget = options.downloadCacheBytes ?? DOWNLOAD_CACHE_BYTES;
    this.recent = budget > 0 ? new RecentBlobs(budget) : null;
  }

  async put(key: string, body: Buffer | Uint8Array | string, _contentType: string): Promise<BlobInfo> {
    const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    this.recent?.delete(key);
    await this.writeAtomically(key, () => sha256, async (tempPath) => {
      const handle = await open(tempPath, 'wx');
      try {
        await handle.writeFile(bytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
    });
    return { size: bytes.byteLength, sha256 };
  }

  async putFile(key: string, path: string, _contentType: string): Promise<BlobInfo> {
    const hash = createHash('sha256');
    let size = 0;
    this.recent?.delete(key);
    let sha256: string | undefined;
    await this.writeAtomically(key, () => (sha256 ??= hash.digest('hex')), async (tempPath) => {
      // flush: fsync before close, like put's handle.sync().
      const out = createWriteStream(tempPath, { flags: 'wx', flush: true });
      await pipeline(
        createReadStream(path),
        async function* (source: AsyncIterable<Buffer>) {
          for await (const chunk of source) {
            hash.update(chunk);
            size += chunk.length;
            yield chunk;
          }
        },
        out,
      );
    });
    return { size, sha256: sha256 ?? hash.digest('hex') };
  }

  async delete(key: string): Promise<void> {
    const path = this.pathOf(key);
    this.recent?.delete(key);
    await rm(path, { force: true });
    await syncDir(dirname(path));
  }

  async get(key: string): Promise<Buffer | null> {
    try {
      return await readFile(this.pathOf(key));
    } catch (err) {
      if (isAbsent(err)) return null;
      throw err;
    }
  }

  async stat(key: string): Promise<BlobInfo | null> {
    try {
      const st = await stat(this.pathOf(key));
      return st.isFile() ? { size: st.size } : null;
    } catch (err) {
      if (isAbsent(err)) return null;
      throw err;
    }
  }

  /**
   * Size, version and body come from the same open file, so an overwrite (a rename) in between cannot mix them.
   * A file up to WHOLE_READ_MAX_BYTES (packages are tens of kB) is read in one go and closed before
   * answering: the answer holds bytes, not a descriptor, whatever the client then does. A larger one
   * is streamed from its descriptor, which the stream closes when it ends or is destroyed.
   */
  async download(key: string, options: DownloadOptions): Promise<DownloadResponse | null> {
    const path = this.pathOf(key);
    const cached = this.recent?.get(key);
    const opened = cached ?? await openBlob(path);
    if (!opened) return null;
    if (!cached && 'bytes' in opened) this.recent?.set(key, { bytes: opened.bytes, version: opened.version });
    const body = 'bytes' in opened
      ? inMemoryStream(opened.bytes)
      // Up to the size seen, in large chunks; `end` also spares the read that would only find EOF.
      : createReadStream('', { fd: opened.fd, start: 0, end: opened.size - 1, highWaterMark: STREAM_CHUNK_BYTES });
    return {
      kind: 'stream',
      body,
      size: 'bytes' in opened ? opened.bytes.length : opened.size,
      contentType: options.contentType,
      ...(options.filename !== undefined ? { filename: options.filename } : {}),
      version: opened.version,
    };
  }

  /**
   * Hashes the file from one open descriptor, with its version taken before and after: a file written in place
   * while it is read (its ctime moves) is read again. A cached copy of an older version of the file is dropped,
   * so the next download reads the file as it is now.
   */
  async digest(key: string): Promise<BlobDigest | null> {
    const path = this.pathOf(key);
    for (let attempt = 1; attempt <= DIGEST_ATTEMPTS; attempt++) {
      let handle;
      try {
        handle = await open(path, 'r');
      } catch (err) {
        if (isAbsent(err)) return null;
        throw err;
      }
      try {
        const before = await handle.stat();
        if (!before.isFile()) return null;
        const hash = createHash('sha256');
        let size = 0;
        for await (const chunk of handle.createReadStream({ autoClose: false, highWaterMark: STREAM_CHUNK_BYTES })) {
          hash.update(chunk as Buffer);
          size += (chunk as Buffer).length;
        }
        const version = fileVersion(await handle.stat());
        if (version !== fileVersion(before) || size !== before.size) continue;
        const cached = this.recent?.get(key);
        if (cached && cached.version !== version) this.recent?.delete(key);
        return { sha256: hash.digest('hex'), size, version };
      } finally {
        await handle.close();
      }
    }
    throw new Error(`blob ${key} kept changing while it was hashed`);
  }

  private pathOf(key: string): string {
    assertValidBlobKey(key);
    return join(this.rootDir, key);
  }

  /**
   * Lets `write` fill a temp file beside the target, then renames it into place (atomic on POSIX). A write-once key
   * (artifacts/, erts/) is linked into place instead, which fails when the target exists: an existing object is
   * never replaced. The same bytes written again (a retried store, `sha256Written` equal to the object's) are no
   * overwrite and succeed; other bytes throw BlobExistsError.
   */
  private async writeAtomically(
    key: string, sha256Written: () => string, write: (tempPath: string) => Promise<void>,
  ): Promise<void> {
    const target = this.pathOf(key);
    const dir = dirname(target);
    await mkdir(dir, { recursive: true });
    const tempPath = join(dir, `${TEMP_MARKER}${randomBytes(8).toString('hex')}`);
    try {
      await write(tempPath);
      if (!isWriteOnceKey(key)) {
        await rename(tempPath, target);
      } else {
        try {
          await link(tempPath, target);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
          const existing = await this.digest(key);
          if (existing?.sha256 !== sha256Written()) throw new BlobExistsError(key);
        }
        await rm(tempPath, { force: true });
      }
    } catch (err) {
      await rm(tempPath, { force: true });
      throw err;
    }
    await syncDir(dir);
  }
}

/** Makes the rename itself durable; some platforms refuse to fsync a directory, which is fine. */
async function syncDir(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // best effort
  }
}

/** A blob opened for download: small ones already read (and closed), large ones as an open descriptor. */
type OpenedBlob = { bytes: Buffer; version: string } | { fd: number; size: number; version: string };

/**
 * Names the bytes a file holds: a rename puts another inode in place, a write moves size or mtime, and ctime
 * moves on any change, even one that sets mtime back (utimes cannot set ctime).
 */
function fileVersion(st: fs.Stats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

/**
 * Opens `path` for a download; null when there is no such file. Written as one callback chain:
 * the promise-based FileHandle API costs about twice the CPU per download. Every path that does not
 * hand the descriptor over closes it.
 */
function openBlob(path: string): Promise<OpenedBlob | null> {
  return new Promise((resolve, reject) => {
    fs.open(path, 'r', (openError, fd) => {
      if (openError) {
        if (isAbsent(openError)) resolve(null);
        else reject(openError);
        return;
      }
      const closeThen = (error: unknown, value: OpenedBlob | null) => {
        fs.close(fd, (closeError) => {
          if (error || closeError) reject(error ?? closeError);
          else resolve(value);
        });
      };
      fs.fstat(fd, (statError, st) => {
        if (statError) return closeThen(statError, null);
        if (!st.isFile()) return closeThen(undefined, null);
        const version = fileVersion(st);
        if (st.size > WHOLE_READ_MAX_BYTES) return resolve({ fd, size: st.size, version });
        readFully(fd, st.size, (readError, bytes) => closeThen(readError, bytes ? { bytes, version } : null));
      });
    });
  });
}

/** The first `size` bytes of `fd` (fewer if the file is shorter), in as few reads as the OS allows. */
function readFully(fd: number, size: number, done: (error: Error | null, bytes?: Buffer) => void): void {
  const bytes = Buffer.allocUnsafe(size);
  const readFrom = (filled: number): void => {
    if (filled === size) return done(null, bytes);
    fs.read(fd, bytes, filled, size - filled, filled, (error, bytesRead) => {
      if (error) return done(error);
      if (bytesRead === 0) return done(null, bytes.subarray(0, filled));
      readFrom(filled + bytesRead);
    });
  };
  readFrom(0);
}

/** A stream that already holds all of `bytes` and has ended: a reader may take them in one read(). */
function inMemoryStream(bytes: Buffer): Readable {
  const stream = new Readable({ read() {} });
  if (bytes.length > 0) stream.push(bytes);
  stream.push(null);
  return stream;
}

function isAbsent(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR';
}
