// GET /download/{id}: the `.ep` artifact of a successful build, streamed or redirected.
// API Gateway -> downloadBuildArtifact -> Store + BlobStore.
import * as z from 'zod';
import { downloadBuildArtifact } from '#core/read-artifacts.js';
import { downloadResult } from '#http/download.js';
import { endpoint } from '#functions/service-endpoint.js';
import { plainText } from '#http/envelope.js';
import { isUuid } from '#http/schemas.js';

// Any id is accepted here: one that is not a UUID simply names no build (404, like an unknown one).
const path = z.object({ id: z.string() });

export const handler = endpoint({ path }, async ({ path, deps, log }) => {
  const download = isUuid(path.id) ? await downloadBuildArtifact({ ...deps, log }, path.id) : null;
  return download ? downloadResult(download) : plainText(404, 'No such build');
});
