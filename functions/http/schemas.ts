// Shared zod pieces for request fields, and the one formatter that turns zod issues into a 400 message.
// A namespace import: unlike `import { z }`, it lets esbuild leave out the parts of zod never used.
import * as z from 'zod';
import type { PackageName, VersionFilter } from '#core/model.js';

const SEGMENT = /^[A-Za-z0-9._-]{1,100}$/;
const REF = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$/;
const ERL_VERSION = /^[0-9]+(\.[0-9]+){0,3}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function isSegment(s: string): boolean {
  return SEGMENT.test(s) && s !== '.' && s !== '..';
}

/** True for a canonical UUID string (any version): build ids. */
export function isUuid(s: string): boolean {
  return UUID.test(s);
}

/** A GitHub owner or repository name. */
export const segment = z.string().refine(isSegment, {
  message: 'must be 1-100 characters of A-Z a-z 0-9 . _ - (and not . or ..)',
});

/** `namespace/name`, parsed into its two parts. */
export const fullName = z
  .string()
  .refine((s) => {
    const parts = s.split('/');
    return parts.length === 2 && parts.every(isSegment);
  }, { message: 'must look like namespace/name (each 1-100 characters of A-Z a-z 0-9 . _ -)' })
  .transform((s): PackageName => {
    const [namespace, name] = s.split('/');
    return { namespace, name };
  });

/** A git tag naming a package version. */
export const ref = z.string().refine((s) => REF.test(s) && !s.includes('..'), {
  message: 'must be a git tag: a letter or digit, then up to 99 of A-Z a-z 0-9 . _ + - (no "..")',
});

/** An OTP release such as "25" or "26.2". */
export const erlVersion = z.string().regex(ERL_VERSION, {
  message: 'must be an OTP release such as 25 or 26.2',
});

export const uuid = z.string().refine(isUuid, { message: 'must be a UUID' });

/** One `{ref?, erl_version?}`; null counts as absent (an absent field matches anything). */
export const versionFilter = z
  .object({ ref: ref.nullish(), erl_version: erlVersion.nullish() })
  .transform((v): VersionFilter => {
    const filter: VersionFilter = {};
    if (v.ref != null) filter.ref = v.ref;
    if (v.erl_version != null) filter.erlVersion = v.erl_version;
    return filter;
  });

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * `versions`: a list of filters or a single one (the enot client sends `{"ref": "1.0.0"}`),
 * always normalized to a list; absent or null gives an empty list.
 */
export const versions = z.preprocess(
  (v) => (v == null ? [] : isPlainObject(v) ? [v] : v),
  z.array(versionFilter).max(100, { message: 'must hold at most 100 entries' }),
);

/** The body of POST /builds, /versions and /get. */
export const packageRequest = z.object({ full_name: fullName, versions });

/** An optional query parameter: an empty value counts as absent. */
export function optionalQuery<T extends z.ZodType>(schema: T) {
  return z.preprocess((v) => (v === '' ? undefined : v), schema.optional());
}

export type Source = 'body' | 'query' | 'path';

function received(input: unknown): string {
  if (input === null) return 'null';
  if (Array.isArray(input)) return 'array';
  return typeof input;
}

function fieldName(path: PropertyKey[]): string {
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join('');
}

const subject: Record<Source, (field: string) => string> = {
  body: (f) => (f ? f : 'request body'),
  query: (f) => (f ? `query parameter ${f}` : 'query string'),
  path: (f) => (f ? `path parameter ${f}` : 'path'),
};

/** "Validation failed: full_name is required; versions[0].ref must be a string (got number)". */
export function formatIssues(source: Source, issues: readonly z.core.$ZodIssue[]): string {
  const lines = issues.map((issue) => {
    const who = subject[source](fieldName(issue.path));
    if (issue.code === 'invalid_type') {
      if (issue.input === undefined) return `${who} is required`;
      const article = /^[aeiou]/.test(issue.expected) ? 'an' : 'a';
      return `${who} must be ${article} ${issue.expected} (got ${received(issue.input)})`;
    }
    return `${who} ${issue.message}`;
  });
  return `Validation failed: ${lines.join('; ')}`;
}

// Issues carry their input, so formatIssues can say what was received instead.
const PARSE_OPTIONS = { reportInput: true } as const;

/** Parses `value`; returns the data or the formatted message. */
export function parseWith<T extends z.ZodType>(
  schema: T, source: Source, value: unknown,
): { ok: true; data: z.output<T> } | { ok: false; message: string } {
  const parsed = schema.safeParse(value, PARSE_OPTIONS);
  if (parsed.success) return { ok: true, data: parsed.data };
  return { ok: false, message: formatIssues(source, parsed.error.issues) };
}
