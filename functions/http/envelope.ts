// The response shapes every endpoint speaks: the JSON envelope, plain text and the HttpResult type.
import type { APIGatewayProxyResult } from 'aws-lambda';
import type { Readable } from 'node:stream';

export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';
export const TEXT_CONTENT_TYPE = 'text/plain; charset=utf-8';

/**
 * What a handler returns: an API Gateway proxy result, plus an optional body stream that the
 * local server pipes as is (and that the aws runtime buffers, since Lambda cannot stream here).
 */
export type HttpResult = APIGatewayProxyResult & { stream?: Readable };

export type Headers = Record<string, string>;

/** `{"result": true, "response": payload}` with HTTP 200. */
export function ok(response: unknown): HttpResult {
  return {
    statusCode: 200,
    headers: { 'Content-Type': JSON_CONTENT_TYPE },
    body: JSON.stringify({ result: true, response }),
  };
}

/** `{"result": false, "response": message}`: the response of a failure is always a string, because the enot client concatenates it. */
export function fail(statusCode: number, message: string, headers: Headers = {}): HttpResult {
  return {
    statusCode,
    headers: { ...headers, 'Content-Type': JSON_CONTENT_TYPE },
    body: JSON.stringify({ result: false, response: String(message) }),
  };
}

/** A plain-text body, byte for byte (the client compares `No such build` exactly). */
export function plainText(statusCode: number, body: string, headers: Headers = {}): HttpResult {
  return {
    statusCode,
    headers: { ...headers, 'Content-Type': TEXT_CONTENT_TYPE },
    body,
  };
}
