// GET /search: packages whose name contains `name`, newest first. API Gateway -> searchPackages -> Store.
import * as z from 'zod';
import { searchPackages } from '#core/read-packages.js';
import { endpoint } from '#functions/service-endpoint.js';
import { ok } from '#http/envelope.js';
import { erlVersion, optionalQuery, ref, segment } from '#http/schemas.js';

const query = z.object({
  name: z.string().min(1, { message: 'must not be empty' }).max(100, { message: 'must be at most 100 characters' }),
  namespace: optionalQuery(segment),
  version: optionalQuery(ref),
  erl_version: optionalQuery(erlVersion),
});

export const handler = endpoint({ query }, async ({ query, deps }) =>
  ok(await searchPackages(deps.store, {
    name: query.name,
    namespace: query.namespace,
    ref: query.version,
    erlVersion: query.erl_version,
  })),
);
