// GET /last_builds: the last n successful builds, one per version. API Gateway -> listLastBuilds -> Store.
import * as z from 'zod';
import { LAST_BUILDS_DEFAULT, LAST_BUILDS_MAX, listLastBuilds } from '#core/read-packages.js';
import { endpoint } from '#functions/service-endpoint.js';
import { ok } from '#http/envelope.js';
import { optionalQuery } from '#http/schemas.js';

const query = z.object({
  n: optionalQuery(
    z.string()
      .regex(/^[0-9]{1,9}$/, { message: 'must be a positive integer' })
      .transform(Number)
      .refine((n) => n >= 1, { message: 'must be a positive integer' }),
  ),
});

export const handler = endpoint({ query }, async ({ query, deps }) =>
  ok(await listLastBuilds(deps.store, Math.min(query.n ?? LAST_BUILDS_DEFAULT, LAST_BUILDS_MAX))),
);
