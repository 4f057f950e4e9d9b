// DELETE /v2/packages/{ns}/{name}/versions/{ref} (admin): deletes every release of the ref with its builds and blobs (204).
// API Gateway -> deleteRef -> Store, BlobStore.
import { requireAdmin } from '#core/authorization.js';
import { deleteRef } from '#core/package-admin.js';
import { endpoint } from '#functions/service-endpoint.js';
import { bearerPrincipal, noContent, v2Answer, v2Input } from '#http/v2-auth.js';
import { packageOf, refPath } from '#http/v2-schemas.js';

export const handler = endpoint({}, async ({ deps, event, requestId, log }) => v2Answer('DELETE /v2/packages/versions', requestId, log, async () => {
  requireAdmin(await bearerPrincipal(deps, event));
  const path = v2Input(refPath, 'path', event.pathParameters);
  await deleteRef({ ...deps, log }, packageOf(path), path.ref);
  return noContent();
}));
