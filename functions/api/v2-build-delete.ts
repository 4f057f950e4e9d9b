// DELETE /v2/builds/{id} (admin): deletes a finished build, its artifact and its log (204).
// API Gateway -> deleteBuild -> Store, BlobStore.
import { requireAdmin } from '#core/authorization.js';
import { deleteBuild } from '#core/package-admin.js';
import { endpoint } from '#functions/service-endpoint.js';
import { bearerPrincipal, noContent, v2Answer, v2Input } from '#http/v2-auth.js';
import { buildPath } from '#http/v2-schemas.js';

export const handler = endpoint({}, async ({ deps, event, requestId, log }) => v2Answer('DELETE /v2/builds', requestId, log, async () => {
  requireAdmin(await bearerPrincipal(deps, event));
  const path = v2Input(buildPath, 'path', event.pathParameters);
  await deleteBuild({ ...deps, log }, path.id);
  return noContent();
}));
