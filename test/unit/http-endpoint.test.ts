// The shared middy stack, invoked as Lambda would: request id, body limit, JSON parsing, validation, errors, streams.
import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { InMemoryMetrics } from '#adapters/metrics/memory-metrics.js';
import { loadConfig } from '#functions/config.js';
import { NotFoundError } from '#core/errors.js';
import type { BlobStore, Store } from '#core/ports.js';
import { useDeps } from '#functions/wiring.js';
import { endpoint } from '#functions/service-endpoint.js';
import { JSON_CONTENT_TYPE, ok } from '#http/envelope.js';
import { packageRequest } from '#http/schemas.js';
import { idlePipeline } from '#support/pipeline-deps.js';

function event(over: Partial<APIGatewayProxyEvent> = {}): APIGatewayProxyEvent {
  return {
    httpMethod: 'POST',
    path: '/x',
    resource: '/x',
    body: null,
    headers: {},
    multiValueHeaders: {},
    isBase64Encoded: false,
    pathParameters: null,
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    stageVariables: null,
    requestContext: { requestId: 'gw-req' } as APIGatewayProxyEvent['requestContext'],
    ...over,
  };
}

const context = (awsRequestId?: string) => ({ awsRequestId } as unknown as Context);

function install(runtime: 'local' | 'aws' = 'local') {
  useDeps({
    config: loadConfig({ ENOT_RUNTIME: runtime, ENOT_MAX_BODY_BYTES: '64', ENOT_LOG_LEVEL: 'silent' }),
    store: {} as Store,
    blobs: {} as BlobStore,
    ...idlePipeline(),
    metrics: new InMemoryMetrics(),
  });
}

function envelope(r: { statusCode: number; body: string; headers?: Record<string, unknown> }) {
  expect(r.headers?.['Content-Type']).toBe(JSON_CONTENT_TYPE);
  return JSON.parse(r.body) as { result: boolean; response: unknown };
}

const echo = endpoint({ body: packageRequest }, async ({ body, requestId }) => ok({ body, requestId }));

beforeEach(() => install());
afterEach(() => vi.restoreAllMocks());

describe('request id', () => {
  it('prefers the Lambda request id, then API Gateway\'s, else makes one; and sends it back', async () => {
    const body = JSON.stringify({ full_name: 'a/b' });
    const a = await echo(event({ body }), context('lambda-req'));
    expect((envelope(a).response as { requestId: string }).requestId).toBe('lambda-req');
    expect(a.headers?.['X-Request-Id']).toBe('lambda-req');
    const b = await echo(event({ body }), context());
    expect((envelope(b).response as { requestId: string }).requestId).toBe('gw-req');
    const c = await echo(event({ body, requestContext: undefined as never }), context());
    expect((envelope(c).response as { requestId: string }).requestId).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('body', () => {
  it('parses JSON whatever the content type, ignores unknown fields and normalizes versions', async () => {
    const r = await echo(event({
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: JSON.stringify({ full_name: 'a/b', versions: { ref: '1.0' }, other: 1 }),
    }), context());
    expect(r.statusCode).toBe(200);
    expect(envelope(r).response).toMatchObject({
      body: { full_name: { namespace: 'a', name: 'b' }, versions: [{ ref: '1.0' }] },
    });
  });

  it('decodes a base64 body', async () => {
    const r = await echo(event({
      body: Buffer.from(JSON.stringify({ full_name: 'a/b' })).toString('base64'),
      isBase64Encoded: true,
    }), context());
    expect(r.statusCode).toBe(200);
  });

  it('answers malformed JSON with 400 and a string', async () => {
    const r = await echo(event({ body: '{"full_name": ' }), context());
    expect(r.statusCode).toBe(400);
    const e = envelope(r);
    expect(e.result).toBe(false);
    expect(e.response).toMatch(/^Malformed JSON body/);
  });

  it('treats an empty body as {} so the message names the missing field', async () => {
    const r = await echo(event({ body: '' }), context());
    expect(r.statusCode).toBe(400);
    expect(envelope(r).response).toBe('Validation failed: full_name is required');
  });

  it('refuses a body over the limit with 413', async () => {
    const r = await echo(event({ body: JSON.stringify({ full_name: 'a/b', pad: 'x'.repeat(64) }) }), context());
    expect(r.statusCode).toBe(413);
    expect(envelope(r)).toEqual({ result: false, response: 'Request body too large (limit 64 bytes)' });
  });
});

describe('query and path', () => {
  const q = endpoint(
    { query: z.object({ name: z.string() }), path: z.object({ id: z.string().regex(/^\d+$/, 'must be digits') }) },
    async ({ query, path }) => ok({ query, path }),
  );

  it('validates and hands over the parsed values', async () => {
    const r = await q(event({ queryStringParameters: { name: 'x' }, pathParameters: { id: '7' } }), context());
    expect(envelope(r).response).toEqual({ query: { name: 'x' }, path: { id: '7' } });
  });

  it('reports the failing field and its source', async () => {
    const r = await q(event({ pathParameters: { id: 'z' } }), context());
    expect(r.statusCode).toBe(400);
    expect(envelope(r).response).toBe('Validation failed: path parameter id must be digits');
    const r2 = await q(event({ pathParameters: { id: '1' } }), context());
    expect(envelope(r2).response).toBe('Validation failed: query parameter name is required');
  });
});

describe('errors', () => {
  it('maps a domain error to its status', async () => {
    const h = endpoint({}, async () => { throw new NotFoundError('No such thing'); });
    const r = await h(event(), context('r1'));
    expect(r.statusCode).toBe(404);
    expect(envelope(r)).toEqual({ result: false, response: 'No such thing' });
    expect(r.headers?.['X-Request-Id']).toBe('r1');
  });

  it('answers an unexpected error with 500, the request id and no stack', async () => {
    const h = endpoint({}, async () => { throw new Error('connection refused at 10.0.0.1'); });
    const r = await h(event(), context('r-500'));
    expect(r.statusCode).toBe(500);
    expect(envelope(r)).toEqual({ result: false, response: 'Internal error (request id r-500)' });
    expect(r.body).not.toContain('10.0.0.1');
  });
});

describe('streams', () => {
  const bytes = Buffer.from([0, 1, 2, 250, 251, 252]);
  const download = endpoint({}, async () => ({
    statusCode: 200, headers: { 'Content-Type': 'application/x-tar' }, body: '', stream: Readable.from([bytes]),
  }));

  it('keeps the stream for the local server', async () => {
    const r = await download(event(), context());
    expect(r.stream).toBeDefined();
    r.stream!.destroy();
  });

  it('buffers it into a base64 body on aws', async () => {
    install('aws');
    const r = await download(event(), context());
    expect(r.stream).toBeUndefined();
    expect(r.isBase64Encoded).toBe(true);
    expect(Buffer.from(r.body, 'base64')).toEqual(bytes);
    expect(r.headers?.['Content-Type']).toBe('application/x-tar');
  });
});
