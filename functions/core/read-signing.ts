// Read use cases of /v2/keys and /v2/index: the public keys that signed, and the stored checksum indexes.
import { NotFoundError } from './errors.js';
import { ERTS_INDEX, INDEX_CONTENT_TYPE, SIGNATURE_CONTENT_TYPE, indexBlobKeys, parseIndexFile } from './index-files.js';
import type { BlobStore, DownloadResponse, PublicKey, PublicKeyRecords } from './ports.js';

/** Every key that ever signed, oldest first, with its validity (GET /v2/keys). */
export function listSigningKeys(deps: { store: Pick<PublicKeyRecords, 'listPublicKeys'> }): Promise<PublicKey[]> {
  return deps.store.listPublicKeys();
}

/**
 * Delivers `/v2/index/<file>`: `<release>.txt`, `erts.txt`, or either's `.sig`.
 * Errors: NotFoundError for a file name that names no index, and for an index not written yet.
 */
export async function downloadIndexFile(deps: { blobs: BlobStore }, file: string): Promise<DownloadResponse> {
  const parsed = parseIndexFile(file);
  if (!parsed) {
    throw new NotFoundError(`no index file ${JSON.stringify(file)}: they are <release>.txt, erts.txt and their .txt.sig`);
  }
  const keys = indexBlobKeys(parsed.name);
  const download = await deps.blobs.download(parsed.part === 'text' ? keys.text : keys.signature, {
    contentType: parsed.part === 'text' ? INDEX_CONTENT_TYPE : SIGNATURE_CONTENT_TYPE,
    redirectStatus: 302,
    ...(parsed.part === 'signature' ? { filename: file } : {}),
  });
  if (!download) {
    throw new NotFoundError(parsed.name === ERTS_INDEX
      ? 'no ERTS index yet: no ERTS tarball has been registered'
      : `no index for OTP ${parsed.name} yet: no build for it has succeeded`);
  }
  return download;
}
