// PUT /v2/packages/{ns}/{name}/versions/{ref}/retirement (the package's owner or an admin): retires the ref with a
// reason and a message (204). API Gateway -> retireRef -> Store.
import { requireOwnerOrAdmin, requirePrincipal } from '#core/authorization.js';
import { retireRef } from '#core/retirement.js';
import { endpoint } from '#functions/service-endpoint.js';
import { bearerPrincipal, noContent, v2Answer, v2Input, v2JsonBody } from '#http/v2-auth.js';
import { packageOf, refPath, retirementBody } from '#http/v2-schemas.js';

export const handler = endpoint({}, async ({ deps, event, requestId, log }) => v2Answer('PUT /v2/packages/versions/retirement', requestId, log, async () => {
  const principal = await bearerPrincipal(deps, event);
  requirePrincipal(principal);
  const path = v2Input(refPath, 'path', event.pathParameters);
  requireOwnerOrAdmin(principal, packageOf(path));
  const body = v2Input(retirementBody, 'body', v2JsonBody(event));
  await retireRef(deps, packageOf(path), path.ref, body);
  return noContent();
}));
