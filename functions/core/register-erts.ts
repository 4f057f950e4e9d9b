// ERTS on AWS: the builder image packs the ERTS of each OTP release it carries; a `publish-erts` build
// uploads them to erts/ with an index (erts/index.jsonl, one JSON object per line). When that build
// ends, its index is read here and each release is recorded, so /download_erts serves it.
import * as z from 'zod';
import { ERTS_INDEX_KEY } from './build-contract.js';
import type { Erts } from './model.js';
import type { BlobStore, ErtsRecords } from './ports.js';

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
export async function registerPublishedErts(deps: { store: Pick<ErtsRecords, 'putErts'>; blobs: BlobStore }): Promise<Erts[]> {
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
    recorded.push(await deps.store.putErts(entry));
  }
  if (problems.length > 0) throw new Error(`ERTS index: ${problems.join('; ')}`);
  return recorded;
}
