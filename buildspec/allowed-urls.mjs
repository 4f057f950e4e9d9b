// The build's own check of a git URL against ENOT_ALLOWED_CLONE_URLS, for the dependencies it fetches: the rules of the
// service's clone_url check (functions/core/request-builds.ts, cloneUrlProblem), applied to the URL as git reads it
// (percent-decoded), in plain JavaScript because the builder image carries no TypeScript.

// Whitespace and control characters (C0, DEL, C1) and the Unicode spaces that look like nothing.
// eslint-disable-next-line no-control-regex
const UNSAFE_CHARS = /[\s\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]/u;
const MAX_URL = 1000;

/** The comma-separated list of ENOT_ALLOWED_CLONE_URLS; unset means the service's default. */
export function parseAllowedUrls(value) {
  if (value === undefined) return ['https://github.com/'];
  return value.split(',').map((p) => p.trim()).filter(Boolean);
}

/**
 * Why `url` may not be fetched, or '' when it may. Only https:// and file:// (the transports the clone step allows);
 * no credentials, no leading `-`, no `..` segment and no encoded separator or dot anywhere in the path (git decodes
 * `%2F`, so `..%2F` is a traversal); it must start with an allowed prefix at a path boundary when the prefix does not
 * end with `/` (`https://github.com` does not admit `https://github.com.example.org/`).
 */
export function urlRefusal(url, allowed) {
  if (typeof url !== 'string' || url === '') return 'is empty';
  if (url.length > MAX_URL) return `is longer than ${MAX_URL} characters`;
  if (UNSAFE_CHARS.test(url)) return 'contains spaces or control characters';
  if (url.startsWith('-')) return 'starts with -';
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url)?.[1]?.toLowerCase();
  if (scheme !== 'https' && scheme !== 'file') return 'is not an https:// or file:// URL';
  const afterScheme = url.slice(url.indexOf('://') + 3);
  const slash = afterScheme.indexOf('/');
  const authority = slash < 0 ? afterScheme : afterScheme.slice(0, slash);
  if (authority.includes('@')) return 'carries credentials (user@host)';
  const urlPath = slash < 0 ? '' : afterScheme.slice(slash);
  if (/%(2e|2f|5c|25)/i.test(urlPath)) return 'has an encoded dot, slash, backslash or percent sign in its path';
  if (urlPath.split(/[/\\]/).some((segment) => segment === '..' || segment === '.')) return 'has a . or .. path segment';
  const matches = (prefix) => url.startsWith(prefix) && (url.length === prefix.length
    ? !prefix.endsWith('/')
    : prefix.endsWith('/') || url[prefix.length] === '/');
  if (!allowed.some((prefix) => prefix !== '' && matches(prefix))) {
    return allowed.length === 0 ? 'is not allowed: no clone URL prefix is configured' : `does not start with one of: ${allowed.join(', ')}`;
  }
  return '';
}
