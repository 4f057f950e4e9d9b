// Blob key rules and small helpers shared by the filesystem and S3 blob stores.
import { ERTS_INDEX_KEY } from '#core/build-contract.js';

/** Thrown for a key that does not follow the rules below; a bug in the caller, never user data. */
export class InvalidBlobKeyError extends Error {
  constructor(key: string, reason: string) {
    super(`invalid blob key ${JSON.stringify(key)}: ${reason}`);
    this.name = 'InvalidBlobKeyError';
  }
}

// S3's own limit; the filesystem store inherits it so a key valid on one backend is valid on both.
const MAX_KEY_BYTES = 1024;
const SEGMENT = /^[A-Za-z0-9._-]+$/;

/**
 * Checks that `key` is relative, made of '/'-separated segments of [A-Za-z0-9._-], with no empty,
 * '.' or '..' segment, so that it can never name anything outside the store's root.
 */
export function assertValidBlobKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0) throw new InvalidBlobKeyError(String(key), 'empty');
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw new InvalidBlobKeyError(key, `longer than ${MAX_KEY_BYTES} bytes`);
  if (key.startsWith('/')) throw new InvalidBlobKeyError(key, 'absolute');
  for (const segment of key.split('/')) {
    if (segment === '') throw new InvalidBlobKeyError(key, 'empty segment');
    if (segment === '.' || segment === '..') throw new InvalidBlobKeyError(key, `'${segment}' segment`);
    if (!SEGMENT.test(segment)) throw new InvalidBlobKeyError(key, 'characters outside [A-Za-z0-9._-/]');
  }
}

/**
 * Keys written once and never replaced: packages (artifacts/) and ERTS tarballs (erts/), whose bytes are recorded,
 * signed and served by their sha256. Not erts/index.jsonl, which each publish-erts run writes again, nor logs/ or
 * index/.
 */
export function isWriteOnceKey(key: string): boolean {
  return key.startsWith('artifacts/') || (key.startsWith('erts/') && key !== ERTS_INDEX_KEY);
}

/**
 * `attachment; filename="..."`. Characters that could break out of the quoted string or the
 * header (quotes, backslashes, control and non-ASCII characters) become '_'.
 */
export function attachmentDisposition(filename: string): string {
  const safe = filename.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${safe}"`;
}
