// POST /get: the enot client's package fetch; the newest matching successful build, or 200 `No such build`.
// API Gateway -> downloadLatestPackage -> Store + BlobStore.
import { downloadLatestPackage } from '#core/read-artifacts.js';
import { downloadResult } from '#http/download.js';
import { endpoint } from '#functions/service-endpoint.js';
import { plainText } from '#http/envelope.js';
import { packageRequest } from '#http/schemas.js';

export const handler = endpoint({ body: packageRequest }, async ({ body, deps, log }) => {
  // Only the first version counts, as in the original; none means "any version".
  const download = await downloadLatestPackage({ ...deps, log }, body.full_name, body.versions[0] ?? {});
  // The client compares these exact bytes with HTTP 200; anything else would be taken for a package.
  return download ? downloadResult(download) : plainText(200, 'No such build');
});
