// GET /v2/index/{file}: a signed checksum index (<release>.txt, erts.txt) or its detached signature (.txt.sig),
// streamed locally, redirected to S3 on AWS. API Gateway -> downloadIndexFile -> BlobStore.
import * as z from 'zod';
import { downloadIndexFile } from '#core/read-signing.js';
import { downloadResult } from '#http/download.js';
import { endpoint } from '#functions/service-endpoint.js';
import { problemFor } from '#http/problem.js';

// Any text: a name that is no index file is a 404 problem, answered by the use case.
const path = z.object({ file: z.string() });

export const handler = endpoint({ path }, async ({ path, deps, requestId, log }) => {
  try {
    return downloadResult(await downloadIndexFile(deps, path.file));
  } catch (error) {
    const answer = problemFor(error, requestId);
    if (answer.statusCode >= 500) log.error('GET /v2/index failed', error, { file: path.file });
    return answer;
  }
});
