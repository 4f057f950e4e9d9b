// POST /v2/builds/{id}/rebuild (the package's owner or an admin): queues a new build of that build's version, outside
// the rate limits. API Gateway -> rebuild -> Store, BuildQueue.
import { requireOwnerOrAdmin, requirePrincipal } from '#core/authorization.js';
import { NotFoundError } from '#core/errors.js';
import { rebuild } from '#core/request-builds.js';
import { endpoint } from '#functions/service-endpoint.js';
import { resource } from '#http/problem.js';
import { bearerPrincipal, v2Answer, v2Input } from '#http/v2-auth.js';
import { buildPath } from '#http/v2-schemas.js';

export const handler = endpoint({}, async ({ deps, event, requestId, log }) => v2Answer('POST /v2/builds/rebuild', requestId, log, async () => {
  const principal = await bearerPrincipal(deps, event);
  requirePrincipal(principal);
  const path = v2Input(buildPath, 'path', event.pathParameters);
  const job = await deps.store.getBuildJob(path.id);
  if (!job) throw new NotFoundError(`No build ${path.id}`);
  requireOwnerOrAdmin(principal, { namespace: job.namespace, name: job.name });
  return resource(await rebuild({ ...deps, log }, path.id));
}));
