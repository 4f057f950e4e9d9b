// Shared request schemas: full_name, ref, erl_version, versions as list or object, and the 400 messages.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  erlVersion, fullName, packageRequest, parseWith, ref, versions,
} from '#http/schemas.js';

function message(schema: z.ZodType, value: unknown, source: 'body' | 'query' | 'path' = 'body'): string {
  const r = parseWith(schema, source, value);
  if (r.ok) throw new Error(`expected a failure for ${JSON.stringify(value)}`);
  return r.message;
}

describe('versions', () => {
  it('accepts a list', () => {
    expect(versions.parse([{ ref: '1.0.0', erl_version: '25' }, { ref: '2.0' }])).toEqual([
      { ref: '1.0.0', erlVersion: '25' },
      { ref: '2.0' },
    ]);
  });

  it('accepts a single object, as the enot client sends it', () => {
    expect(versions.parse({ ref: '1.0.0' })).toEqual([{ ref: '1.0.0' }]);
  });

  it('treats absent and null as no filter, and null fields as absent', () => {
    expect(versions.parse(undefined)).toEqual([]);
    expect(versions.parse(null)).toEqual([]);
    expect(versions.parse({ ref: null, erl_version: null })).toEqual([{}]);
  });

  it('ignores unknown fields', () => {
    expect(versions.parse([{ ref: '1.0', extra: true }])).toEqual([{ ref: '1.0' }]);
  });

  it('rejects wrong types, naming the field', () => {
    expect(message(packageRequest, { full_name: 'a/b', versions: 5 })).toBe(
      'Validation failed: versions must be an array (got number)',
    );
    expect(message(packageRequest, { full_name: 'a/b', versions: { ref: 4 } })).toBe(
      'Validation failed: versions[0].ref must be a string (got number)',
    );
    expect(message(packageRequest, { full_name: 'a/b', versions: [{ ref: '1' }, { erl_version: 'x' }] })).toMatch(
      /^Validation failed: versions\[1\]\.erl_version must be an OTP release/,
    );
  });
});

describe('full_name', () => {
  it('parses namespace/name', () => {
    expect(fullName.parse('comtihon/enot')).toEqual({ namespace: 'comtihon', name: 'enot' });
    expect(fullName.parse('a.b_c-d/x.y')).toEqual({ namespace: 'a.b_c-d', name: 'x.y' });
  });

  it.each(['enot', 'a/b/c', '/b', 'a/', 'a/..', './b', 'a b/c', 'a/b?', `${'x'.repeat(101)}/b`])('rejects %j', (v) => {
    expect(fullName.safeParse(v).success).toBe(false);
  });

  it('says what is wrong', () => {
    expect(message(packageRequest, {})).toBe('Validation failed: full_name is required');
    expect(message(packageRequest, { full_name: 7 })).toBe('Validation failed: full_name must be a string (got number)');
    expect(message(packageRequest, { full_name: 'nope' })).toMatch(/^Validation failed: full_name must look like namespace\/name/);
    expect(message(packageRequest, 'text')).toBe('Validation failed: request body must be an object (got string)');
    expect(message(packageRequest, [])).toBe('Validation failed: request body must be an object (got array)');
  });
});

describe('ref and erl_version', () => {
  it.each(['1.0.0', 'v2', 'release-1_2+b', 'A', '9'.repeat(100)])('accepts ref %j', (v) => {
    expect(ref.safeParse(v).success).toBe(true);
  });
  it.each(['', '-x', '.x', 'a..b', 'a/b', 'a b', '9'.repeat(101), 'tag;rm'])('rejects ref %j', (v) => {
    expect(ref.safeParse(v).success).toBe(false);
  });
  it.each(['25', '26.2', '25.3.2'])('accepts erl_version %j', (v) => {
    expect(erlVersion.safeParse(v).success).toBe(true);
  });
  it.each(['', 'R16', '25.', '.25', '25.3.2.1', '25.0.0.0', '0025', '25.3.2.1.1', '25 ', '25.x'])('rejects erl_version %j', (v) => {
    expect(erlVersion.safeParse(v).success).toBe(false);
  });

  it('names the source of a query or path failure', () => {
    const q = z.object({ name: z.string() });
    expect(message(q, {}, 'query')).toBe('Validation failed: query parameter name is required');
    const p = z.object({ version: erlVersion });
    expect(message(p, { version: 'abc' }, 'path')).toBe(
      'Validation failed: path parameter version must be an OTP release such as 25 or 26.2',
    );
  });
});
