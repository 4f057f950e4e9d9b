// Assertions on the answer envelope the contract defines, for suites that talk HTTP to the local server.
import { expect } from 'vitest';

export const JSON_TYPE = 'application/json; charset=utf-8';

/** Asserts the status, the JSON content type and the envelope; returns `response`. */
export async function envelope(res: Response, status: number): Promise<unknown> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  expect(res.headers.get('content-type')).toBe(JSON_TYPE);
  const body = JSON.parse(text) as { result: unknown; response: unknown };
  expect(Object.keys(body).sort()).toEqual(['response', 'result']);
  expect(body.result).toBe(status === 200);
  if (status !== 200) expect(typeof body.response).toBe('string');
  return body.response;
}
