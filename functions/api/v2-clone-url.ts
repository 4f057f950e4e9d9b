// PUT /v2/packages/{ns}/{name}/clone-url (admin): moves a package to another clone URL; answers the stored URL.
// API Gateway -> moveCloneUrl -> Store.
import { requireAdmin } from '#core/authorization.js';
import { moveCloneUrl } from '#core/package-admin.js';
import { endpoint } from '#functions/service-endpoint.js';
import { resource } from '#http/problem.js';
import { bearerPrincipal, v2Answer, v2Input, v2JsonBody } from '#http/v2-auth.js';
import { cloneUrlBody, packageOf, packagePath } from '#http/v2-schemas.js';

export const handler = endpoint({}, async ({ deps, event, requestId, log }) => v2Answer('PUT /v2/packages/clone-url', requestId, log, async () => {
  requireAdmin(await bearerPrincipal(deps, event));
  const pkg = packageOf(v2Input(packagePath, 'path', event.pathParameters));
  const body = v2Input(cloneUrlBody, 'body', v2JsonBody(event));
  const cloneUrl = await moveCloneUrl({ ...deps, config: deps.config, log }, pkg, body.clone_url);
  return resource({ full_name: `${pkg.namespace}/${pkg.name}`, clone_url: cloneUrl });
}));
