// GET /metrics: the service's state for Prometheus (text format 0.0.4). API Gateway -> collectServiceMetrics -> Store.
import { collectServiceMetrics } from '#core/service-metrics.js';
import { endpoint } from '#functions/service-endpoint.js';
import { PROMETHEUS_CONTENT_TYPE, renderPrometheus, serviceMetricFamilies } from '#http/prometheus.js';

export const handler = endpoint({}, async ({ deps }) => {
  // The queue depth comes from the store's counts until the build queue can report its own.
  const metrics = await collectServiceMetrics({ store: deps.store, metrics: deps.metrics });
  return {
    statusCode: 200,
    headers: { 'Content-Type': PROMETHEUS_CONTENT_TYPE, 'Cache-Control': 'no-store' },
    body: renderPrometheus(serviceMetricFamilies(metrics)),
  };
});
