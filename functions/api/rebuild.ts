// POST /rebuild: queue a new build of the version an existing build built. API Gateway -> rebuild -> Store, BuildQueue.
// Open to anyone (the legacy contract), so within the client's budget of new builds per hour (http/build-budget.ts).
import { rebuild } from '#core/request-builds.js';
import { endpoint } from '#functions/service-endpoint.js';
import { clientBudgetOf, withinBudget } from '#http/build-budget.js';
import { ok } from '#http/envelope.js';
import { rebuildRequest } from '#http/schemas.js';

export const handler = endpoint({ body: rebuildRequest }, async ({ body, deps, log, event }) =>
  ok(await withinBudget(deps, event, log, clientBudgetOf(event, deps), (store) => rebuild({ ...deps, store, log }, body.build_id))),
);
