// POST /rebuild: queue a new build of the version an existing build built. API Gateway -> rebuild -> Store, BuildQueue.
import { rebuild } from '#core/request-builds.js';
import { endpoint } from '#functions/service-endpoint.js';
import { ok } from '#http/envelope.js';
import { rebuildRequest } from '#http/schemas.js';

export const handler = endpoint({ body: rebuildRequest }, async ({ body, deps, log }) =>
  ok(await rebuild({ ...deps, log }, body.build_id)),
);
