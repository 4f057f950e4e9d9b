// The generic check every query and path parameter passes before any schema sees it: text only, no control bytes,
// no trace of bytes that were not UTF-8 or of a malformed %-escape. No field of this API can hold those, and
// letting them through turns a bad request into a database error (Postgres refuses NUL in text).

/**
 * C0 controls but tab, DEL and C1 controls; U+FFFD, which every decoder (URLSearchParams, API Gateway's, our
 * percent-decoding.ts) puts where bytes were not UTF-8 or an escape was malformed; and lone surrogates.
 */
const INVALID_TEXT = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\ufffd]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Whether `s` may be a parameter's name or value. */
export function isParameterText(s: string): boolean {
  return !INVALID_TEXT.test(s);
}

export type ParameterSource = 'query' | 'path';

const WHAT = 'must not contain NUL or other control characters, malformed %-escapes or bytes that are not UTF-8';

/**
 * The 400 message for the first parameter (name or value) in `params` that is not text, else undefined.
 * A bad name is shown JSON-quoted (lone surrogates escaped too), so the message itself stays printable.
 */
export function invalidParameter(
  source: ParameterSource, params: Readonly<Record<string, string | readonly string[] | undefined>> | null | undefined,
): string | undefined {
  if (!params) return undefined;
  for (const name in params) {
    if (!Object.hasOwn(params, name)) continue;
    if (!isParameterText(name)) {
      return `Validation failed: ${source} parameter names ${WHAT} (got ${JSON.stringify(name)})`;
    }
    const value = params[name];
    const values = typeof value === 'string' ? [value] : value ?? [];
    for (const v of values) {
      if (!isParameterText(v)) return `Validation failed: ${source} parameter ${name} ${WHAT}`;
    }
  }
  return undefined;
}
