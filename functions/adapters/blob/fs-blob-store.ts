// BlobStore on the local filesystem (local mode): one file per key under a root directory.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { BlobInfo, BlobStore, DownloadOptions, DownloadResponse } from '#core/ports.js';
import { assertValidBlobKey } from './blob-key.js';

// '~' is not allowed in keys, so a temp file can never be mistaken for (or collide with) an object.
const TEMP_MARKER = '.tmp~';

export class FsBlobStore implements BlobStore {
  constructor(private readonly rootDir: string) {}

  async put(key: string, body: Buffer | Uint8Array | string, _contentType: string): Promise<BlobInfo> {
    const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    await this.writeAtomically(key, async (tempPath) => {
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
    await this.writeAtomically(key, async (tempPath) => {
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
    return { size, sha256: hash.digest('hex') };
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

  async download(key: string, options: DownloadOptions): Promise<DownloadResponse | null> {
    let handle: FileHandle;
    try {
      handle = await open(this.pathOf(key), 'r');
    } catch (err) {
      if (isAbsent(err)) return null;
      throw err;
    }
    // Size and body come from the same open file, so an overwrite (a rename) in between cannot mix them.
    const st = await handle.stat().catch(async (err: unknown) => {
      await handle.close();
      throw err;
    });
    if (!st.isFile()) {
      await handle.close();
      return null;
    }
    return {
      kind: 'stream',
      body: handle.createReadStream(),
      size: st.size,
      contentType: options.contentType,
      ...(options.filename !== undefined ? { filename: options.filename } : {}),
    };
  }

  private pathOf(key: string): string {
    assertValidBlobKey(key);
    return join(this.rootDir, key);
  }

  /** Lets `write` fill a temp file beside the target, then renames it into place (atomic on POSIX). */
  private async writeAtomically(key: string, write: (tempPath: string) => Promise<void>): Promise<void> {
    const target = this.pathOf(key);
    const dir = dirname(target);
    await mkdir(dir, { recursive: true });
    const tempPath = join(dir, `${TEMP_MARKER}${randomBytes(8).toString('hex')}`);
    try {
      await write(tempPath);
      await rename(tempPath, target);
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

function isAbsent(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR';
}
