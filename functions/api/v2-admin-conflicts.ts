// GET /v2/admin/conflicts (admin): names registered against another GitHub repository than the one they name, to be
// freed or moved. API Gateway -> listNameConflicts -> Store.
import { requireAdmin } from '#core/authorization.js';
import { listNameConflicts } from '#core/package-admin.js';
import { endpoint } from '#functions/service-endpoint.js';
import { resource } from '#http/problem.js';
import { bearerPrincipal, v2Answer } from '#http/v2-auth.js';

export const handler = endpoint({}, async ({ deps, event, requestId, log }) => v2Answer('GET /v2/admin/conflicts', requestId, log, async () => {
  requireAdmin(await bearerPrincipal(deps, event));
  const conflicts = await listNameConflicts(deps);
  return resource({
    conflicts: conflicts.map((c) => ({
      full_name: c.fullName, clone_url: c.cloneUrl, cloned_repository: c.clonedRepository, registered_at: c.registeredAt.toISOString(),
    })),
  });
}));
