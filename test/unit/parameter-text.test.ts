// The generic parameter check and the percent-decoding under it: what each lets through and what it marks.
import { describe, expect, it } from 'vitest';
import { invalidParameter, isParameterText } from '#http/parameter-text.js';
import { decodeComponent, decodeQueryComponent } from '#http/percent-decoding.js';

describe('decodeComponent', () => {
  it.each([
    ['abc', 'abc'], ['a%20b', 'a b'], ['%C3%BF', 'ÿ'], ['%F0%9F%98%80', '😀'], ['a%25zz', 'a%zz'], ['', ''],
  ])('decodes %j as decodeURIComponent does', (raw, decoded) => {
    expect(decodeComponent(raw)).toBe(decoded);
  });

  it.each([
    ['%zz', '\ufffdzz'], ['%', '\ufffd'], ['ab%', 'ab\ufffd'], ['%f', '\ufffdf'], ['%ff', '\ufffd'],
    ['%ED%A0%80', '\ufffd\ufffd\ufffd'], ['%C0%AF', '\ufffd\ufffd'], ['ok%zz%41😀', 'ok\ufffdzzA😀'],
  ])('marks %j with U+FFFD instead of throwing', (raw, decoded) => {
    expect(decodeComponent(raw)).toBe(decoded);
  });

  it('reads + as a space in a query component only', () => {
    expect(decodeQueryComponent('a+b%2B')).toBe('a b+');
    expect(decodeComponent('a+b')).toBe('a+b');
  });
});

describe('isParameterText', () => {
  it.each(['', 'mongo', 'a b', 'a\tb', 'ÿ', '😀', '%zz', '\u00a0'])('accepts %j', (s) => {
    expect(isParameterText(s)).toBe(true);
  });

  it.each(['\u0000', 'a\u0000b', '\u0001', '\n', '\r', '\u001f', '\u007f', '\u0085', '\u009f', '\ufffd', '\ud800', 'a\udc00', '\udc00\ud800'])(
    'refuses %j', (s) => {
      expect(isParameterText(s)).toBe(false);
    },
  );
});

describe('invalidParameter', () => {
  it('names the first bad value, then the first bad name, across single and repeated values', () => {
    expect(invalidParameter('query', null)).toBeUndefined();
    expect(invalidParameter('query', { name: 'ok', n: ['1', '2'] })).toBeUndefined();
    expect(invalidParameter('query', { name: 'ok', n: ['1', '\u0000'] })).toMatch(/^Validation failed: query parameter n must not contain NUL/);
    expect(invalidParameter('path', { id: '\ufffd' })).toMatch(/^Validation failed: path parameter id must not/);
    expect(invalidParameter('query', { 'a\u0000': 'x' })).toMatch(/^Validation failed: query parameter names must not .* \(got "a\\u0000"\)$/);
  });
});
