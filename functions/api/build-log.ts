// GET /build_log?build_id=: the full log of a build as plain text, or 410 once retention removed it.
// API Gateway -> readBuildLog -> Store + BlobStore.
import * as z from 'zod';
import { readBuildLog } from '#core/read-artifacts.js';
import { endpoint } from '#functions/service-endpoint.js';
import { plainText } from '#http/envelope.js';
import { uuid } from '#http/schemas.js';

const query = z.object({ build_id: uuid });

export const handler = endpoint({ query }, async ({ query, deps }) =>
  plainText(200, await readBuildLog(deps, query.build_id)),
);
