// POST /v2/packages/{ns}/{name}/tokens (admin): issues an owner token of the package, answered this once (201).
// API Gateway -> issueOwnerToken -> Store.
import { requireAdmin } from '#core/authorization.js';
import { issueOwnerToken } from '#core/package-admin.js';
import { endpoint } from '#functions/service-endpoint.js';
import { V2_JSON_CONTENT_TYPE } from '#http/problem.js';
import { bearerPrincipal, v2Answer, v2Input, v2JsonBody } from '#http/v2-auth.js';
import { issueTokenBody, packageOf, packagePath } from '#http/v2-schemas.js';

export const handler = endpoint({}, async ({ deps, event, requestId, log }) => v2Answer('POST /v2/packages/tokens', requestId, log, async () => {
  requireAdmin(await bearerPrincipal(deps, event));
  const pkg = packageOf(v2Input(packagePath, 'path', event.pathParameters));
  const body = v2Input(issueTokenBody, 'body', v2JsonBody(event));
  const issued = await issueOwnerToken({ ...deps, log }, pkg, body.label);
  return {
    statusCode: 201,
    // The token is in the body: no cache may keep it.
    headers: { 'Content-Type': V2_JSON_CONTENT_TYPE, 'Cache-Control': 'no-store' },
    body: JSON.stringify({
      id: issued.id, token: issued.token, label: issued.label, package: `${pkg.namespace}/${pkg.name}`,
      created_at: issued.createdAt.toISOString(),
    }),
  };
}));
