// DELETE /v2/packages/{ns}/{name} (admin): deletes a package, its versions, builds, owner tokens and blobs (204),
// which frees its name. API Gateway -> deletePackage -> Store, BlobStore.
import { requireAdmin } from '#core/authorization.js';
import { deletePackage } from '#core/package-admin.js';
import { endpoint } from '#functions/service-endpoint.js';
import { bearerPrincipal, noContent, v2Answer, v2Input } from '#http/v2-auth.js';
import { packageOf, packagePath } from '#http/v2-schemas.js';

export const handler = endpoint({}, async ({ deps, event, requestId, log }) => v2Answer('DELETE /v2/packages', requestId, log, async () => {
  requireAdmin(await bearerPrincipal(deps, event));
  await deletePackage({ ...deps, log }, packageOf(v2Input(packagePath, 'path', event.pathParameters)));
  return noContent();
}));
