// Shared zod pieces for request fields, and the one formatter that turns zod issues into a 400 message.
// A namespace import: unlike `import { z }`, it lets esbuild leave out the parts of zod never used.
import * as z from 'zod';
import type { PackageName, VersionFilter } from '#core/model.js';
import { isOtpRelease, refProblem } from '#core/version-names.js';

const SEGMENT = /^[A-Za-z0-9._-]{1,100}$/;
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

/** A git tag naming a package version (refProblem says what is refused, and why). */
export const ref = z.string().superRefine((s, ctx) => {
  const problem = refProblem(s);
  if (problem) ctx.addIssue({ code: 'custom', message: problem, input: s });
});

/** An OTP release such as "25" or "26.2", in its one spelling (no leading zeros, at most three parts). */
export const erlVersion = z.string().refine(isOtpRelease, {
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

// --- build requests (POST /buildAsync, /rebuild, /callback) ---

/** One version to build: `ref` required, `erl_version` optional (the default release); null counts as absent. */
export const buildVersion = z
  .object({ ref, erl_version: erlVersion.nullish() })
  .transform((v): { ref: string; erlVersion?: string } =>
    v.erl_version == null ? { ref: v.ref } : { ref: v.ref, erlVersion: v.erl_version });

/**
 * `versions` of a build request: a list or a single object, never empty. The upper bound is the
 * configured ENOT_MAX_VERSIONS_PER_REQUEST, checked by the use case; this one only bounds the parsing.
 */
export const buildVersions = z.preprocess(
  (v) => (isPlainObject(v) ? [v] : v),
  z.array(buildVersion)
    .min(1, { message: 'must name at least one version' })
    .max(1000, { message: 'must hold at most 1000 entries' }),
);

// Deliberately narrower than RFC 5322: the characters real addresses use, nothing a header or a shell could misread.
const EMAIL = /^[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;

/** An email address the service may send a result to: one plain `local@domain`, no display name. */
export function isEmailAddress(s: string): boolean {
  return s.length <= 254 && EMAIL.test(s);
}

/**
 * `notify_email`: true (the default; mail the tagged commit's author), false (no mail), or an
 * address to mail instead. Null counts as absent.
 */
export const notifyEmail = z
  .unknown()
  .optional()
  .refine((v) => v == null || typeof v === 'boolean' || (typeof v === 'string' && isEmailAddress(v)), {
    message: 'must be true, false or an email address',
  })
  .transform((v): boolean | string => (v == null ? true : (v as boolean | string)));

/** The body of POST /buildAsync. The clone URL is checked by the use case (it depends on the configuration). */
export const buildAsyncRequest = z.object({
  full_name: fullName,
  clone_url: z.string(),
  versions: buildVersions,
  notify_email: notifyEmail,
});

/** The body of POST /rebuild; any id that names no build, malformed or not, is "No such build!". */
export const rebuildRequest = z.object({ build_id: z.string() });

/** The fields of a GitHub `create` event for a tag that a build needs (others are ignored). */
export const tagCreatedEvent = z.object({
  ref,
  repository: z.object({ full_name: fullName, clone_url: z.string() }),
});

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
