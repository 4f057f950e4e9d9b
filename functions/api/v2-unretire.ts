// DELETE /v2/packages/{ns}/{name}/versions/{ref}/retirement (the package's owner or an admin): undoes a retirement
// (204). API Gateway -> unretireRef -> Store.
import { requireOwnerOrAdmin, requirePrincipal } from '#core/authorization.js';
import { unretireRef } from '#core/retirement.js';
import { endpoint } from '#functions/service-endpoint.js';
import { bearerPrincipal, noContent, v2Answer, v2Input } from '#http/v2-auth.js';
import { packageOf, refPath } from '#http/v2-schemas.js';

export const handler = endpoint({}, async ({ deps, event, requestId, log }) => v2Answer('DELETE /v2/packages/versions/retirement', requestId, log, async () => {
  const principal = await bearerPrincipal(deps, event);
  requirePrincipal(principal);
  const path = v2Input(refPath, 'path', event.pathParameters);
  requireOwnerOrAdmin(principal, packageOf(path));
  await unretireRef(deps, packageOf(path), path.ref);
  return noContent();
}));
