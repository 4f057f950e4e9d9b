// Download results: a presigned redirect keeps its status (303 for POST /get), a stream carries the package headers.
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { attachmentHeader, downloadResult } from '#http/download.js';

describe('downloadResult', () => {
  it('turns a redirect into its status and Location', () => {
    for (const status of [302, 303] as const) {
      const r = downloadResult({ kind: 'redirect', status, location: 'https://bucket.s3/x?sig=1' });
      expect(r).toEqual({ statusCode: status, headers: { Location: 'https://bucket.s3/x?sig=1' }, body: '' });
    }
  });

  it('turns a stream into 200 with type, length and disposition', () => {
    const body = Readable.from([Buffer.from('abc')]);
    const r = downloadResult({ kind: 'stream', body, size: 3, contentType: 'application/x-tar', filename: 'enot.ep' });
    expect(r.statusCode).toBe(200);
    expect(r.stream).toBe(body);
    expect(r.headers).toEqual({
      'Content-Type': 'application/x-tar',
      'Content-Length': '3',
      'Content-Disposition': 'attachment; filename="enot.ep"',
    });
    body.destroy();
  });
});

describe('attachmentHeader', () => {
  it('keeps the header within its quoted string', () => {
    expect(attachmentHeader('a"b\\c\r\nd\u00e9.ep')).toBe('attachment; filename="a_b_c__d_.ep"');
  });
});
