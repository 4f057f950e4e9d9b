// Body streams through the endpoint stack: never left open when the answer that goes out is not theirs.
import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { InMemoryMetrics } from '#adapters/metrics/memory-metrics.js';
import type { BlobStore, Store } from '#core/ports.js';
import { loadConfig } from '#functions/config.js';
import { useDeps } from '#functions/wiring.js';
import { endpoint } from '#functions/service-endpoint.js';
import { idlePipeline } from '#support/pipeline-deps.js';

afterEach(() => vi.restoreAllMocks());

function install(runtime: 'local' | 'aws') {
  useDeps({
    config: loadConfig({ ENOT_RUNTIME: runtime, ENOT_LOG_LEVEL: 'silent' }),
    store: {} as Store,
    blobs: {} as BlobStore,
    ...idlePipeline(),
    metrics: new InMemoryMetrics(),
  });
}

const event = (): APIGatewayProxyEvent => ({
  httpMethod: 'GET', path: '/download/x', resource: '/download/{id}', body: null, headers: {}, multiValueHeaders: {},
  isBase64Encoded: false, pathParameters: null, queryStringParameters: null, multiValueQueryStringParameters: null,
  stageVariables: null, requestContext: { requestId: 'gw' } as APIGatewayProxyEvent['requestContext'],
});

describe('stream answers', () => {
  it('on aws, a stream that fails while being buffered answers 500 and is closed', async () => {
    install('aws');
    const stream = new Readable({
      read() {
        this.push(Buffer.from('part'));
        this.destroy(new Error('disk went away'));
      },
    });
    const h = endpoint({}, async () => ({ statusCode: 200, headers: {}, body: '', stream }));
    const r = await h(event(), { awsRequestId: 'r-1' } as Context);
    expect(r.statusCode).toBe(500);
    expect(r.stream).toBeUndefined();
    expect(stream.destroyed).toBe(true);
  });

  it('locally, hands the stream over untouched', async () => {
    install('local');
    const stream = Readable.from([Buffer.from('abc')]);
    const h = endpoint({}, async () => ({ statusCode: 200, headers: { 'Content-Length': '3' }, body: '', stream }));
    const r = await h(event(), {} as Context);
    expect(r.stream).toBe(stream);
    expect(stream.destroyed).toBe(false);
    stream.destroy();
  });
});
