// What this process knows of stored bytes: the digests it computed (so a verified object is not hashed again) and
// the downloads it refused because bytes and recorded checksum disagree (for /health and the operator).
import type { BlobDigest, BlobStore } from './ports.js';

/** A download refused because the stored bytes do not match the recorded checksum. */
export interface ChecksumMismatch {
  /** What was refused, as the answer named it: "the stored package of build <id>". */
  subject: string;
  key: string;
  /** The recorded sha256 (null when none was recorded). */
  expected: string | null;
  /** The stored bytes' sha256. */
  actual: string;
  at: Date;
}

/** Digests kept per blob store: about 200 bytes each, so the default costs at most some tens of MB. */
export const MAX_KNOWN_DIGESTS = 100_000;
/** Mismatches kept for /health and the log; more are still counted. */
export const MAX_KNOWN_MISMATCHES = 100;

/**
 * The digests of one blob store's objects, by key, each with the stored version it was computed from. Keys are
 * immutable, so a digest stays true while the object's version is the same; the oldest go first past the limit.
 */
export class BlobDigests {
  private readonly digests = new Map<string, BlobDigest>();
  private readonly mismatches = new Map<string, ChecksumMismatch>();

  constructor(private readonly maxDigests = MAX_KNOWN_DIGESTS) {}

  /** The digest of `key` computed from exactly `version` of it, or undefined when none is known. */
  known(key: string, version: string | undefined): BlobDigest | undefined {
    if (version === undefined) return undefined;
    const digest = this.digests.get(key);
    return digest?.version === version ? digest : undefined;
  }

  remember(key: string, digest: BlobDigest): void {
    this.digests.delete(key);
    this.digests.set(key, digest);
    for (const oldest of this.digests.keys()) {
      if (this.digests.size <= this.maxDigests) break;
      this.digests.delete(oldest);
    }
  }

  /** Records a refused download; the newest per key replaces an older one. */
  mismatchSeen(mismatch: ChecksumMismatch): void {
    this.mismatches.delete(mismatch.key);
    this.mismatches.set(mismatch.key, mismatch);
    for (const oldest of this.mismatches.keys()) {
      if (this.mismatches.size <= MAX_KNOWN_MISMATCHES) break;
      this.mismatches.delete(oldest);
    }
  }

  /** The key was served verified again (repaired on disk, or its record corrected): it is no longer a problem. */
  matchSeen(key: string): void {
    this.mismatches.delete(key);
  }

  /** The mismatches not repaired since, oldest first. */
  currentMismatches(): ChecksumMismatch[] {
    return [...this.mismatches.values()];
  }
}

// One record per blob store instance: every endpoint of a process shares its store, so downloads and /health see the
// same record, and a store made for a test starts with an empty one. Held weakly: a dropped store takes its record.
const ledgers = new WeakMap<BlobStore, BlobDigests>();

/** The record of what `blobs` was found to hold, made on first use. */
export function blobDigestsOf(blobs: BlobStore): BlobDigests {
  let ledger = ledgers.get(blobs);
  if (!ledger) {
    ledger = new BlobDigests();
    ledgers.set(blobs, ledger);
  }
  return ledger;
}
