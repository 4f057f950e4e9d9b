// POST /buildAsync: queue builds of a package's versions and answer at once. API Gateway -> requestBuilds -> Store, BuildQueue.
// Within the client's budget of new builds per hour (http/build-budget.ts): builds found by build-once cost nothing.
import { requestBuilds } from '#core/request-builds.js';
import { endpoint } from '#functions/service-endpoint.js';
import { clientBudgetOf, withinBudget } from '#http/build-budget.js';
import { ok } from '#http/envelope.js';
import { buildAsyncRequest } from '#http/schemas.js';

export const handler = endpoint({ body: buildAsyncRequest }, async ({ body, deps, log, event }) =>
  ok(await withinBudget(deps, event, log, clientBudgetOf(event, deps), (store) => requestBuilds({ ...deps, store, log }, {
    pkg: body.full_name,
    cloneUrl: body.clone_url,
    versions: body.versions,
    notifyEmail: body.notify_email,
  }))),
);
