// The envelope and the one error mapping: statuses, string responses, a 500 that leaks nothing.
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  ConflictError, NotFoundError, UnauthorizedError, ValidationError,
} from '#core/errors.js';
import { fail, JSON_CONTENT_TYPE, ok, plainText, TEXT_CONTENT_TYPE } from '#http/envelope.js';
import { errorResult, HttpError, statusOf } from '#http/errors.js';

afterEach(() => vi.restoreAllMocks());

describe('envelope', () => {
  it('wraps a payload as result true with JSON content type', () => {
    const r = ok([{ a: 1 }]);
    expect(r.statusCode).toBe(200);
    expect(r.headers?.['Content-Type']).toBe(JSON_CONTENT_TYPE);
    expect(JSON.parse(r.body)).toEqual({ result: true, response: [{ a: 1 }] });
  });

  it('wraps a failure as result false with a string response', () => {
    const r = fail(404, 'gone', { Allow: 'GET' });
    expect(r.statusCode).toBe(404);
    expect(r.headers).toEqual({ Allow: 'GET', 'Content-Type': JSON_CONTENT_TYPE });
    expect(JSON.parse(r.body)).toEqual({ result: false, response: 'gone' });
  });

  it('keeps plain text byte-exact', () => {
    const r = plainText(200, 'No such build');
    expect(r.body).toBe('No such build');
    expect(r.headers?.['Content-Type']).toBe(TEXT_CONTENT_TYPE);
  });
});

describe('error mapping', () => {
  const cases: [Error, number][] = [
    [new ValidationError('bad'), 400],
    [new UnauthorizedError('who'), 401],
    [new NotFoundError('none'), 404],
    [new ConflictError('clash'), 409],
    [new HttpError(413, 'too big'), 413],
  ];

  it.each(cases)('maps %s to its status with its message', (error, status) => {
    expect(statusOf(error)).toBe(status);
    const r = errorResult(error, 'req-1');
    expect(r.statusCode).toBe(status);
    expect(JSON.parse(r.body)).toEqual({ result: false, response: error.message });
  });

  it('keeps the headers of an HttpError', () => {
    const r = errorResult(new HttpError(405, 'no', { Allow: 'POST' }), 'req-1');
    expect(r.headers?.Allow).toBe('POST');
  });

  it('answers anything else with a 500 naming only the request id', () => {
    const boom = new TypeError('secret detail from the database');
    const r = errorResult(boom, 'req-42');
    expect(r.statusCode).toBe(500);
    expect(JSON.parse(r.body)).toEqual({ result: false, response: 'Internal error (request id req-42)' });
    expect(r.body).not.toContain('secret detail');
    expect(r.body).not.toContain('TypeError');
  });

  it('treats a thrown non-Error as internal too', () => {
    const r = errorResult('just a string', 'req-7');
    expect(r.statusCode).toBe(500);
    expect(JSON.parse(r.body).response).toBe('Internal error (request id req-7)');
  });
});
