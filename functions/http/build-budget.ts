// The build endpoints' rate limit: a build request runs within its client's (or its repository's) budget of new
// builds, unless it is exempt; the budget left goes out in the X-RateLimit-* headers of the answer.
import type { APIGatewayProxyEvent } from 'aws-lambda';
import type { BuildRequestStore, Log, RateLimitedBuildStore } from '#core/ports.js';
import {
  clientBuildBudget, withinBuildBudget, type BuildBudget, type RateLimitConfig,
} from '#core/rate-limits.js';
import { clientOf, noteRateLimit, type RateLimitExempt } from './middlewares.js';

export interface BuildBudgetEndpointDeps {
  store: RateLimitedBuildStore;
  config: { rateLimits: RateLimitConfig };
  rateLimitExempt?: RateLimitExempt;
}

/** The budget of the client that sent `event` (its source address, or a trusted proxy's X-Forwarded-For). */
export function clientBudgetOf(event: APIGatewayProxyEvent, deps: Pick<BuildBudgetEndpointDeps, 'config'>): BuildBudget {
  return clientBuildBudget(clientOf(event, deps.config.rateLimits));
}

/** Runs a build request use case within `budget` (rate-limits.ts: withinBuildBudget); an exempt request is not counted. */
export async function withinBudget<T>(
  deps: BuildBudgetEndpointDeps, event: APIGatewayProxyEvent, log: Log, budget: BuildBudget,
  request: (store: BuildRequestStore) => Promise<T>,
): Promise<T> {
  if (deps.rateLimitExempt && await deps.rateLimitExempt(event)) return request(deps.store);
  const { answer, status } = await withinBuildBudget({ store: deps.store, config: deps.config, log }, budget, request);
  noteRateLimit(event, status);
  return answer;
}
