// POST /builds: the downloadable builds of a package, newest first. API Gateway -> listDownloadableBuilds -> Store.
import { listDownloadableBuilds } from '#core/read-packages.js';
import { endpoint } from '#functions/service-endpoint.js';
import { ok } from '#http/envelope.js';
import { packageRequest } from '#http/schemas.js';

export const handler = endpoint({ body: packageRequest }, async ({ body, deps }) =>
  ok(await listDownloadableBuilds(deps.store, body.full_name, body.versions)),
);
