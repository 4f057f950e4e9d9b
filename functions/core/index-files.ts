// Checksum indexes (hexpm/bob's builds.txt, signed): per OTP release, one line per version's latest success, and one
// for the ERTS tarballs; each written to the blob store with a detached signature beside it, under an advisory lock.
import type { Erts } from './model.js';
import type { BlobStore, IndexEntry, IndexStore, Log, Signer } from './ports.js';
import { signBytes } from './signing.js';

export const INDEX_CONTENT_TYPE = 'text/plain; charset=utf-8';
export const SIGNATURE_CONTENT_TYPE = 'application/octet-stream';
/** The index of ERTS tarballs; no OTP release is spelled so. */
export const ERTS_INDEX = 'erts';

/** An OTP release as builds name it ("25", "26.2"): digits and dots, so it is a safe blob key segment. */
const RELEASE = /^[0-9]{1,4}(\.[0-9]{1,4}){0,3}$/;

export function isIndexRelease(release: string): boolean {
  return RELEASE.test(release);
}

/** Where an index and its signature are stored: `index/<name>.txt` and `index/<name>.txt.sig`. */
export function indexBlobKeys(name: string): { text: string; signature: string } {
  if (name !== ERTS_INDEX && !isIndexRelease(name)) throw new Error(`not an index name: ${JSON.stringify(name)}`);
  return { text: `index/${name}.txt`, signature: `index/${name}.txt.sig` };
}

/**
 * What a request for `/v2/index/<file>` names: an index (`25.txt`, `erts.txt`) or its signature (`.txt.sig`);
 * null for anything else.
 */
export function parseIndexFile(file: string): { name: string; part: 'text' | 'signature' } | null {
  const m = /^(.+)\.txt(\.sig)?$/.exec(file);
  if (!m) return null;
  const [, name, sig] = m;
  if (name !== ERTS_INDEX && !isIndexRelease(name)) return null;
  return { name, part: sig ? 'signature' : 'text' };
}

/**
 * The index of a release: `namespace/name ref commit built_at sha256 size`, one line per version, sorted, each
 * ending in "\n". A field is never moved: new ones are only ever appended at the end of a line. A commit that was not
 * recorded is `-`; built_at is ISO 8601 UTC with milliseconds.
 */
export function renderReleaseIndex(entries: readonly IndexEntry[]): string {
  const lines = entries.map((e) =>
    `${e.namespace}/${e.name} ${e.ref} ${e.commitSha ?? '-'} ${e.builtAt.toISOString()} ${e.sha256} ${e.size}`);
  return sortedLines(lines);
}

/** The ERTS index: `release erts_version registered_at sha256 size`, one line per OTP release, sorted. */
export function renderErtsIndex(erts: readonly Erts[]): string {
  return sortedLines(erts.map((e) => `${e.release} ${e.ertsVersion} ${e.createdAt.toISOString()} ${e.sha256} ${e.size}`));
}

/** Byte order (the lines are ASCII), so any tool's plain sort agrees. */
function sortedLines(lines: string[]): string {
  return lines.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map((line) => `${line}\n`).join('');
}

export interface IndexDeps {
  store: IndexStore;
  blobs: BlobStore;
  signer: Signer;
  log: Log;
}

/**
 * Writes index `name` again from the database, signed, under the index's advisory lock: a writer that finishes
 * second waits for the first and then reads what it committed, so the stored index never loses a line.
 * Output: the text written. The text goes first and its signature after, so a reader between the two sees a
 * signature that does not verify (and asks again), never a stale text that does.
 */
export function regenerateIndex(deps: IndexDeps, name: string): Promise<string> {
  const keys = indexBlobKeys(name);
  return deps.store.transaction(async (tx) => {
    await tx.lockIndex(name);
    const text = name === ERTS_INDEX
      ? renderErtsIndex(await tx.listErts())
      : renderReleaseIndex(await tx.listIndexEntries(name));
    const bytes = Buffer.from(text, 'utf8');
    const signed = await signBytes({ signer: deps.signer, store: tx }, bytes);
    await deps.blobs.put(keys.text, bytes, INDEX_CONTENT_TYPE);
    await deps.blobs.put(keys.signature, signed.signature, SIGNATURE_CONTENT_TYPE);
    return text;
  });
}

/**
 * regenerateIndex for the completion path: a failure is logged, not thrown, because the build is recorded already
 * and the next completion writes the whole index again from the database.
 */
export async function refreshIndex(deps: IndexDeps, name: string): Promise<void> {
  try {
    await regenerateIndex(deps, name);
  } catch (error) {
    deps.log.error('the checksum index could not be written; the next completion writes it again', error, { index: name });
  }
}
