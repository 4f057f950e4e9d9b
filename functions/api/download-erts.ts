// GET /download_erts/{version}: the packed ERTS of an OTP release, or 200 `No such erlang`.
// API Gateway -> downloadErts -> Store + BlobStore.
import * as z from 'zod';
import { downloadErts } from '#core/read-artifacts.js';
import { downloadResult } from '#http/download.js';
import { endpoint } from '#functions/service-endpoint.js';
import { plainText } from '#http/envelope.js';
import { erlVersion } from '#http/schemas.js';

const path = z.object({ version: erlVersion });

export const handler = endpoint({ path }, async ({ path, deps, log }) => {
  const download = await downloadErts({ ...deps, log }, path.version);
  // The client compares these exact bytes with HTTP 200.
  return download ? downloadResult(download) : plainText(200, 'No such erlang');
});
