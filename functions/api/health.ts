// GET /health: 200 when the database, the blob store, the stored artifacts and the build pipeline are fine, else
// 503 naming what failed. API Gateway -> runHealthChecks -> Store + BlobStore.
import {
  artifactChecksumHealthCheck, builderHealthCheck, describeFailures, runHealthChecks, standardHealthChecks,
} from '#core/health.js';
import { endpoint } from '#functions/service-endpoint.js';
import { fail, ok, type HttpResult } from '#http/envelope.js';

export const handler = endpoint({}, async ({ deps, log }) => {
  const report = await runHealthChecks([
    ...standardHealthChecks(deps), artifactChecksumHealthCheck(deps), builderHealthCheck(deps),
  ]);
  for (const [name, check] of Object.entries(report.checks)) {
    if (!check.ok) log.error('health check failed', check.error, { check: name, reason: check.reason, ms: check.ms });
  }
  if (!report.ok) return noStore(fail(503, `unhealthy: ${describeFailures(report)}`));
  const checks = Object.fromEntries(Object.entries(report.checks).map(([name, c]) => [name, { ok: c.ok, ms: c.ms }]));
  return noStore(ok({ status: 'ok', checks }));
});

/** A cached health answer would hide an outage from the very monitor asking. */
function noStore(result: HttpResult): HttpResult {
  result.headers = { ...result.headers, 'Cache-Control': 'no-store' };
  return result;
}
