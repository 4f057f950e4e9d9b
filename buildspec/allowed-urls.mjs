// The build's check of a dependency's git URL: the clone URL rules the service applies to a package's own
// clone_url (job-inputs.mjs, the same as functions/core/clone-urls.ts), then ENOT_ALLOWED_CLONE_URLS on the
// canonical form, in plain JavaScript because the builder image carries no TypeScript.
import { parseCloneUrl } from './job-inputs.mjs';

/** The comma-separated list of ENOT_ALLOWED_CLONE_URLS; unset means the service's default. */
export function parseAllowedUrls(value) {
  if (value === undefined) return ['https://github.com/'];
  return value.split(',').map((p) => p.trim()).filter(Boolean);
}

/** A prefix as the canonical form spells it: scheme and host lower-cased, the path as written. */
function canonicalPrefix(prefix) {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^/]*)(.*)$/.exec(prefix);
  if (!m) return prefix;
  const host = m[1].toLowerCase() === 'file://' && m[2].toLowerCase() === 'localhost' ? '' : m[2].toLowerCase();
  return `${m[1].toLowerCase()}${host}${m[3]}`;
}

/**
 * Why `url` may not be fetched, or '' when it may: a form git would read differently from how it looks (any other
 * transport than https:// and file://, percent-escapes, credentials, dot segments, ...), or a canonical form that
 * does not start with an allowed prefix at a path boundary when the prefix does not end with `/`
 * (`https://github.com` does not admit `https://github.com.example.org/`).
 */
export function urlRefusal(url, allowed) {
  const parsed = parseCloneUrl(url);
  if (parsed.problem) return parsed.problem;
  const { canonical } = parsed;
  const matches = (prefix) => canonical.startsWith(prefix) && (canonical.length === prefix.length
    ? !prefix.endsWith('/')
    : prefix.endsWith('/') || canonical[prefix.length] === '/');
  if (!allowed.some((prefix) => prefix !== '' && matches(canonicalPrefix(prefix)))) {
    return allowed.length === 0 ? 'is not allowed: no clone URL prefix is configured' : `does not start with one of: ${allowed.join(', ')}`;
  }
  return '';
}
