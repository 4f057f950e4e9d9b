// POST /buildAsync: queue builds of a package's versions and answer at once. API Gateway -> requestBuilds -> Store, BuildQueue.
import { requestBuilds } from '#core/request-builds.js';
import { endpoint } from '#functions/service-endpoint.js';
import { ok } from '#http/envelope.js';
import { buildAsyncRequest } from '#http/schemas.js';

export const handler = endpoint({ body: buildAsyncRequest }, async ({ body, deps, log }) =>
  ok(await requestBuilds({ ...deps, log }, {
    pkg: body.full_name,
    cloneUrl: body.clone_url,
    versions: body.versions,
    notifyEmail: body.notify_email,
  })),
);
