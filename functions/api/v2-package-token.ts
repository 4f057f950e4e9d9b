// DELETE /v2/packages/{ns}/{name}/tokens/{id} (admin): revokes an owner token (204). API Gateway -> revokeOwnerToken -> Store.
import { requireAdmin } from '#core/authorization.js';
import { revokeOwnerToken } from '#core/package-admin.js';
import { endpoint } from '#functions/service-endpoint.js';
import { bearerPrincipal, noContent, v2Answer, v2Input } from '#http/v2-auth.js';
import { packageOf, tokenPath } from '#http/v2-schemas.js';

export const handler = endpoint({}, async ({ deps, event, requestId, log }) => v2Answer('DELETE /v2/packages/tokens', requestId, log, async () => {
  requireAdmin(await bearerPrincipal(deps, event));
  const path = v2Input(tokenPath, 'path', event.pathParameters);
  await revokeOwnerToken({ ...deps, log }, packageOf(path), path.id);
  return noContent();
}));
