// ERTS on AWS: the builder image packs the ERTS of each OTP release it carries; a `publish-erts` build
// uploads them to erts/ with an index (erts/index.jsonl, one JSON object per line). When that build
// ends, its index is read here and each release is recorded, so /download_erts serves it. Each is recorded with its
// signed statement, and the signed ERTS checksum index (index/erts.txt) is written again.
import * as z from 'zod';
import { ERTS_INDEX_KEY } from './build-contract.js';
import { ERTS_INDEX, refreshIndex } from './index-files.js';
import type { Erts } from './model.js';
import type { BlobStore, ErtsRecords, IndexStore, Log, Signer, StoredSignature } from './ports.js';
import { signStatement, storedSignature } from './signing.js';

/** What registering ERTS needs to sign it; without a signer (a test's hand-made dependencies) it is recorded unsigned. */
export interface ErtsSigningDeps {
  store: IndexStore;
  signer?: Signer;
  config: { arch: string };
  log: Log;
}

/**
 * The signed statement of an ERTS tarball registered `at`. An ERTS is not built from a repository: it is named
 * `erlang/erts` at ref `<erts version>`, with no commit.
 */
export async function signErts(
  deps: ErtsSigningDeps,
  erts: { release: string; ertsVersion: string; otpVersion: string; sha256: string; size: number },
  at: Date,
): Promise<StoredSignature | null> {
  if (!deps.signer) return null;
  const signed = await signStatement({ signer: deps.signer, store: deps.store }, {
    namespace: 'erlang', name: 'erts', ref: erts.ertsVersion, commit: null,
    erl_version: erts.release, otp_version: erts.otpVersion, arch: deps.config.arch,
    sha256: erts.sha256, size: erts.size, built_at: at.toISOString(),
  });
  return storedSignature(signed);
}

/** Writes the ERTS checksum index again after registrations (a failure is logged: the next registration rewrites it). */
export async function refreshErtsIndex(deps: ErtsSigningDeps & { blobs: BlobStore }): Promise<void> {
  if (deps.signer) await refreshIndex({ ...deps, signer: deps.signer }, ERTS_INDEX);
}

const entrySchema = z.object({
  release: z.string().regex(/^[0-9]+(\.[0-9]+){0,3}$/),
  ertsVersion: z.string().regex(/^[0-9]+(\.[0-9]+)*$/),
  key: z.string().regex(/^erts\/[0-9.]+\/erts-[0-9.]+\.tar$/),
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});

/**
 * Records every release of the published index whose tarball is in the BlobStore. A malformed line or a
 * missing tarball is an error (the image and its upload disagree; someone must look), after the good
 * lines have been recorded.
 */
export async function registerPublishedErts(
  deps: ErtsSigningDeps & { store: Pick<ErtsRecords, 'putErts'>; blobs: BlobStore },
): Promise<Erts[]> {
  const index = await deps.blobs.get(ERTS_INDEX_KEY);
  if (!index) throw new Error(`${ERTS_INDEX_KEY} is missing: the publish-erts build uploaded no index`);
  const recorded: Erts[] = [];
  const problems: string[] = [];
  const lines = index.toString('utf8').split('\n').filter((line) => line.trim() !== '');
  for (const [i, line] of lines.entries()) {
    let parsed: z.ZodSafeParseResult<z.infer<typeof entrySchema>>;
    try {
      parsed = entrySchema.safeParse(JSON.parse(line));
    } catch {
      problems.push(`line ${i + 1} is not JSON`);
      continue;
    }
    if (!parsed.success) {
      problems.push(`line ${i + 1}: ${parsed.error.issues.map((x) => `${x.path.join('.')} ${x.message}`).join(', ')}`);
      continue;
    }
    const entry = parsed.data;
    if (!(await deps.blobs.stat(entry.key))) {
      problems.push(`${entry.key} (OTP ${entry.release}) is listed but not uploaded`);
      continue;
    }
    const at = new Date();
    // The image's index gives the release, not the full OTP version: the release is what the statement can say.
    const signed = await signErts(deps, { ...entry, otpVersion: entry.release }, at);
    recorded.push(await deps.store.putErts({ ...entry, createdAt: at, signed }));
  }
  if (recorded.length > 0) await refreshErtsIndex(deps);
  if (problems.length > 0) throw new Error(`ERTS index: ${problems.join('; ')}`);
  return recorded;
}
