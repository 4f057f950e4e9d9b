// Correlation ids and route names, and the JSON lines the endpoint stack writes through the Powertools Logger.
import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { InMemoryMetrics } from '#adapters/metrics/memory-metrics.js';
import type { BlobStore, Store } from '#core/ports.js';
import { loadConfig } from '#functions/config.js';
import { useDeps } from '#functions/wiring.js';
import { endpoint } from '#functions/service-endpoint.js';
import { ok } from '#http/envelope.js';
import { headerValue } from '#core/headers.js';
import { correlationIdOf, isSaneCorrelationId, routeNameOf } from '#http/observability.js';
import { idlePipeline } from '#support/pipeline-deps.js';

afterEach(() => vi.restoreAllMocks());

describe('correlationIdOf', () => {
  it('takes a sane X-Correlation-Id whatever the header spelling', () => {
    expect(correlationIdOf({ 'X-Correlation-Id': 'order-42' }, 'req')).toBe('order-42');
    expect(correlationIdOf({ 'x-correlation-id': ' 6f1c2d3e-aaaa-4bbb-8ccc-123456789abc ' }, 'req'))
      .toBe('6f1c2d3e-aaaa-4bbb-8ccc-123456789abc');
    expect(correlationIdOf({ 'X-CORRELATION-ID': 'Root=1-5759e988-bd862e3fe1be46a994272793' }, 'req'))
      .toBe('Root=1-5759e988-bd862e3fe1be46a994272793');
  });

  it('falls back to the request id for anything else', () => {
    for (const bad of ['', ' ', 'has space', 'a,b', 'quote"d', 'new\nline', '<script>', 'x'.repeat(129), '-leading-dash', 'é']) {
      expect(isSaneCorrelationId(bad), bad).toBe(false);
      expect(correlationIdOf({ 'x-correlation-id': bad }, 'req-1'), bad).toBe('req-1');
    }
    expect(correlationIdOf({ 'x-correlation-id': ['a', 'b'] }, 'req-2')).toBe('req-2');
    expect(correlationIdOf({}, 'req-3')).toBe('req-3');
    expect(correlationIdOf(null, 'req-4')).toBe('req-4');
    expect(isSaneCorrelationId('x'.repeat(128))).toBe(true);
  });

  it('reads headers case-insensitively', () => {
    expect(headerValue({ 'Content-Type': 'a' }, 'content-type')).toBe('a');
    expect(headerValue({ accept: ['a', 'b'] }, 'Accept')).toBe('a,b');
    expect(headerValue(undefined, 'x')).toBeUndefined();
  });
});

describe('routeNameOf', () => {
  it('names the route from API Gateway\'s resource template or a concrete path', () => {
    expect(routeNameOf('GET', '/download/{id}')).toBe('download');
    expect(routeNameOf('GET', '/download/6f1c2d3e')).toBe('download');
    expect(routeNameOf('POST', '/get')).toBe('get');
    expect(routeNameOf('GET', '/metrics')).toBe('metrics');
    expect(routeNameOf('GET', '/health')).toBe('health');
    expect(routeNameOf('GET', '/build_log/')).toBe('build-log');
  });

  it('says unknown off the table', () => {
    expect(routeNameOf('POST', '/search')).toBe('unknown');
    expect(routeNameOf('GET', '/nope')).toBe('unknown');
    expect(routeNameOf(undefined, undefined)).toBe('unknown');
  });
});

describe('the endpoint stack', () => {
  function install(level: 'info' | 'silent', runtime: 'local' | 'aws' = 'local') {
    useDeps({
      // The store is a stand-in with no rate limit counters: the read limit is off, so only the handler's lines show.
      config: loadConfig({ ENOT_LOG_LEVEL: level, ENOT_RUNTIME: runtime, ENOT_READ_REQUESTS_PER_MINUTE: '0' }),
      store: {} as Store,
      blobs: {} as BlobStore,
      ...idlePipeline(),
      metrics: new InMemoryMetrics(),
    });
  }

  /** Every line written to stdout and stderr while the spies are on, parsed. */
  function capture() {
    const lines: { stream: string; text: string }[] = [];
    for (const stream of ['stdout', 'stderr'] as const) {
      vi.spyOn(process[stream], 'write').mockImplementation((chunk: string | Uint8Array) => {
        lines.push({ stream, text: String(chunk) });
        return true;
      });
    }
    return {
      raw: lines,
      json: () => lines.map((l) => ({ stream: l.stream, ...(JSON.parse(l.text) as Record<string, unknown>) })),
    };
  }

  function event(headers: Record<string, string> = {}): APIGatewayProxyEvent {
    return {
      httpMethod: 'GET', path: '/search', resource: '/search', headers, multiValueHeaders: {}, body: null,
      isBase64Encoded: false, pathParameters: null, queryStringParameters: null, multiValueQueryStringParameters: null,
      stageVariables: null, requestContext: { requestId: 'gw-req' } as APIGatewayProxyEvent['requestContext'],
    };
  }
  const context = { awsRequestId: 'lambda-req', functionName: 'enot-search' } as Context;

  it('echoes a sane X-Correlation-Id and puts it, with the route, on every line', async () => {
    install('info');
    const h = endpoint({}, async ({ correlationId, log }) => {
      log.info('looking', { n: 1 });
      return ok(correlationId);
    });
    const out = capture();
    const r = await h(event({ 'X-Correlation-Id': 'trace-7' }), context);
    vi.restoreAllMocks();
    expect(r.headers?.['X-Correlation-Id']).toBe('trace-7');
    expect(r.headers?.['X-Request-Id']).toBe('lambda-req');
    expect(JSON.parse(r.body).response).toBe('trace-7');
    const lines = out.json();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      stream: 'stdout', level: 'INFO', message: 'looking', service: 'enot-builder',
      correlation_id: 'trace-7', route: 'search', n: 1,
    });
    expect(out.raw[0].text.endsWith('\n')).toBe(true);
  });

  it('uses the request id when the header is missing or not sane', async () => {
    install('silent');
    const h = endpoint({}, async () => ok(true));
    for (const headers of [{}, { 'x-correlation-id': 'no spaces please' }] as Record<string, string>[]) {
      const r = await h(event(headers), context);
      expect(r.headers?.['X-Correlation-Id']).toBe('lambda-req');
    }
  });

  it('logs an unexpected error with its stack and the correlation id, and answers without them', async () => {
    install('info');
    const h = endpoint({}, async () => { throw new TypeError('secret detail 10.9.8.7'); });
    const out = capture();
    const r = await h(event({ 'x-correlation-id': 'c-500' }), context);
    vi.restoreAllMocks();
    expect(r.statusCode).toBe(500);
    expect(r.headers?.['X-Correlation-Id']).toBe('c-500');
    expect(r.body).not.toContain('secret');
    const lines = out.json();
    expect(lines).toHaveLength(1);
    const line = lines[0] as unknown as Record<string, unknown> & { error: { name: string; message: string; stack: string } };
    expect(line).toMatchObject({ stream: 'stderr', level: 'ERROR', message: 'unhandled error', correlation_id: 'c-500', route: 'search' });
    expect(line.error.name).toBe('TypeError');
    expect(line.error.message).toBe('secret detail 10.9.8.7');
    expect(line.error.stack).toContain('observability-logging.test.ts');
  });

  it('does not log an expected error (a 400)', async () => {
    install('info');
    const { z } = await import('zod');
    const h = endpoint({ query: z.object({ name: z.string() }) }, async () => ok(true));
    const out = capture();
    const r = await h(event(), context);
    vi.restoreAllMocks();
    expect(r.statusCode).toBe(400);
    expect(out.raw).toEqual([]);
  });

  it('prints nothing at all when silent, even for an unexpected error', async () => {
    install('silent');
    const h = endpoint({}, async ({ log }) => {
      log.error('an error line', new Error('x'));
      log.warn('a warning');
      throw new Error('boom');
    });
    const out = capture();
    const r = await h(event(), context);
    vi.restoreAllMocks();
    expect(r.statusCode).toBe(500);
    expect(out.raw).toEqual([]);
  });

  it('on aws, writes one summary line per request with the Lambda context', async () => {
    install('info', 'aws');
    const h = endpoint({}, async () => ok(true));
    const out = capture();
    await h(event({ 'x-correlation-id': 'c-aws' }), context);
    vi.restoreAllMocks();
    const lines = out.json();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 'INFO', message: 'request', correlation_id: 'c-aws', route: 'search',
      method: 'GET', path: '/search', status: 200, ms: expect.any(Number),
      function_request_id: 'lambda-req', function_name: 'enot-search',
    });
  });
});
