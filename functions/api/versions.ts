// POST /versions: the versions of a package that have a successful build (the enot client's listing).
// API Gateway -> listInstallableVersions -> Store.
import { listInstallableVersions } from '#core/read-packages.js';
import { endpoint } from '#functions/service-endpoint.js';
import { ok } from '#http/envelope.js';
import { packageRequest } from '#http/schemas.js';

export const handler = endpoint({ body: packageRequest }, async ({ body, deps }) =>
  ok(await listInstallableVersions(deps.store, body.full_name, body.versions)),
);
