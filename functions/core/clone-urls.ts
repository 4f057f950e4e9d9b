// Which clone URLs builds may use, judged on the URL as git will read it, and the canonical form that is stored and cloned.
// buildspec/steps/clone.mjs judges the same form again before cloning (test/unit/clone-urls.test.ts keeps the two alike).
import type { RealPath } from './ports.js';

const MAX_CLONE_URL = 1000;
// Whitespace and control characters (C0, DEL, C1) and the Unicode spaces that look like nothing.
const UNSAFE_CHARS = /[\s\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]/u;
const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;
// What a path may hold: RFC 3986's unreserved characters and a few sub-delimiters that repository paths use.
// No `%` (git decodes escapes, so the path it opens would not be the one judged), `?`, `#`, `\`, `:` or `;`.
const PATH_CHARS = /^[A-Za-z0-9._~+@=,/-]*$/;
const HOST_NAME = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/;
const IPV6_HOST = /^\[[0-9a-f:.]+\]$/;
const PORT = /^[1-9][0-9]{0,4}$/;
/** How often a `%` escape is undone to see what it hides (`%252F` is `%2F` is `/`). */
const DECODE_ROUNDS = 3;

/** A URL of a form builds may clone, in the one spelling it is stored and cloned in. */
export interface ParsedCloneUrl {
  scheme: 'https' | 'file';
  /** `https://host[:port]/path` (scheme and host in lower case, no default port) or `file:///path`. */
  canonical: string;
  /** The path as git reads it: `/owner/repo.git` or the local directory. */
  path: string;
}

export type CloneUrlForm = { ok: true; url: ParsedCloneUrl } | { ok: false; problem: string };

function decodeOnce(s: string): string {
  return s.replace(/%([0-9A-Fa-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** What the escapes of a path would mean once git (or a server) decodes them, for the message. */
function escapeProblem(path: string): string {
  let decoded = path;
  for (let i = 0; i < DECODE_ROUNDS; i += 1) decoded = decodeOnce(decoded);
  if (decoded.split(/[/\\]/).some((segment) => segment === '..')) return 'must not contain .. path segments (also percent-encoded)';
  return 'must not contain percent-escapes (%XX): git decodes them, so it would clone another path than the one allowed';
}

/**
 * The URL's form, before any prefix is compared: only `https://` and `file://` (git runs any other transport,
 * `ext::` a command, `file:` without `//` over ssh); no credentials, query, fragment, escapes or backslashes; no `.`,
 * `..` or empty path segments; scheme and host in any case (written in lower case), path case-sensitive; an https
 * port (443 is dropped); a `file://` URL names no host but `localhost` (git ignores any host it names).
 */
export function parseCloneUrl(url: string): CloneUrlForm {
  const refuse = (problem: string): CloneUrlForm => ({ ok: false, problem });
  if (url.length === 0) return refuse('must not be empty');
  if (url.length > MAX_CLONE_URL) return refuse(`must be at most ${MAX_CLONE_URL} characters`);
  if (url.startsWith('-')) return refuse('must not start with -');
  const scheme = SCHEME.exec(url)?.[1].toLowerCase();
  if (scheme !== 'https' && scheme !== 'file') return refuse('must be an https:// or file:// URL (git would run another transport)');
  if (UNSAFE_CHARS.test(url)) return refuse('must not contain spaces or control characters');
  const rest = url.slice(url.indexOf('://') + 3);
  const slash = rest.indexOf('/');
  const authority = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? '' : rest.slice(slash);
  if (authority.includes('@')) return refuse('must not carry credentials (user@host)');
  if (url.includes('\\')) return refuse('must not contain backslashes');
  if (url.includes('?') || url.includes('#')) return refuse('must not carry a query or a fragment (? or #)');
  if (url.includes('%')) return refuse(escapeProblem(path || authority));
  const segments = path.split('/').slice(1);
  if (segments.some((segment) => segment === '..')) return refuse('must not contain .. path segments');
  if (segments.some((segment) => segment === '.')) return refuse('must not contain . path segments');
  if (segments.slice(0, -1).some((segment) => segment === '')) return refuse('must not contain empty path segments (//)');
  if (!PATH_CHARS.test(path)) return refuse('path may hold only A-Z a-z 0-9 and . _ ~ + @ = , - /');
  if (scheme === 'file') {
    if (authority !== '' && authority.toLowerCase() !== 'localhost') {
      return refuse('must be file:///path: git ignores the host of a file:// URL');
    }
    if (path === '' || path === '/') return refuse('must name a directory after file://');
    return { ok: true, url: { scheme, canonical: `file://${path}`, path } };
  }
  const hostPort = /^(\[[^\]]*\]|[^:]*)(?::(.*))?$/.exec(authority.toLowerCase());
  const host = hostPort?.[1] ?? '';
  const port = hostPort?.[2];
  if (!HOST_NAME.test(host) && !IPV6_HOST.test(host)) return refuse('must name a host of letters, digits, - and . (or [IPv6])');
  if (port !== undefined && (!PORT.test(port) || Number(port) > 65535)) return refuse('must name a port of 1-65535');
  if (path === '') return refuse('must name a repository after the host');
  const shownPort = port === undefined || port === '443' ? '' : `:${port}`;
  return { ok: true, url: { scheme, canonical: `https://${host}${shownPort}${path}`, path } };
}

/** An allowed prefix in the spelling canonical URLs have (scheme and host in lower case, no :443, no localhost). */
function canonicalPrefix(prefix: string): string {
  const scheme = SCHEME.exec(prefix)?.[1];
  if (!scheme) return prefix;
  const rest = prefix.slice(scheme.length + 3);
  const slash = rest.indexOf('/');
  let authority = (slash < 0 ? rest : rest.slice(0, slash)).toLowerCase();
  const path = slash < 0 ? '' : rest.slice(slash);
  const lower = scheme.toLowerCase();
  if (lower === 'https') authority = authority.replace(/:443$/, '');
  if (lower === 'file' && authority === 'localhost') authority = '';
  return `${lower}://${authority}${path}`;
}

/** At a path boundary when the prefix does not end with `/`, and naming something after it when it does. */
function underPrefix(value: string, prefix: string): boolean {
  if (prefix === '' || !value.startsWith(prefix)) return false;
  if (value.length === prefix.length) return !prefix.endsWith('/');
  return prefix.endsWith('/') || value[prefix.length] === '/';
}

/**
 * For a `file://` URL on the service's machine: the directory git would open, links resolved, must lie under a
 * `file://` prefix resolved the same way, so a link inside an allowed directory does not lead out of it.
 */
function fileLinkProblem(url: ParsedCloneUrl, allowed: readonly string[], realPath: RealPath): string | undefined {
  const real = realPath(url.path.replace(/\/+$/, '') || '/');
  const inside = allowed.map(canonicalPrefix).filter((p) => p.startsWith('file://')).some((prefix) => {
    // `file://` alone admits every path: its path is the root.
    const prefixPath = prefix.slice('file://'.length) || '/';
    const realPrefix = realPath(prefixPath.replace(/\/+$/, '') || '/');
    if (real === realPrefix) return !prefixPath.endsWith('/');
    return real.startsWith(realPrefix === '/' ? '/' : `${realPrefix}/`);
  });
  return inside ? undefined : `leads through a symbolic link to ${real}, outside the allowed prefixes`;
}

export type CloneUrlVerdict = { ok: true; canonical: string } | { ok: false; problem: string };

/**
 * Whether builds may clone `url`: its form (parseCloneUrl), then its canonical spelling must start with one of the
 * allowed prefixes (compared in the same spelling, at a path boundary when the prefix does not end with `/`, so
 * `https://github.com` does not admit `https://github.com.evil.example/`), and, given `realPath`, a `file://` one must
 * stay under its prefix once symbolic links are resolved.
 */
export function judgeCloneUrl(url: string, allowed: readonly string[], realPath?: RealPath): CloneUrlVerdict {
  const form = parseCloneUrl(url);
  if (!form.ok) return form;
  const { canonical } = form.url;
  if (!allowed.some((prefix) => underPrefix(canonical, canonicalPrefix(prefix)))) {
    return {
      ok: false,
      problem: allowed.length === 0
        ? 'is not allowed: no clone URL prefix is configured'
        : `must start with one of: ${allowed.join(', ')}`,
    };
  }
  if (form.url.scheme === 'file' && realPath) {
    const problem = fileLinkProblem(form.url, allowed, realPath);
    if (problem) return { ok: false, problem };
  }
  return { ok: true, canonical };
}

/** Why `url` may not be cloned, or undefined when it may (judgeCloneUrl). */
export function cloneUrlProblem(url: string, allowed: readonly string[], realPath?: RealPath): string | undefined {
  const verdict = judgeCloneUrl(url, allowed, realPath);
  return verdict.ok ? undefined : verdict.problem;
}

/** The clone URL as the original echoed it: without protocol and `.git`. */
export function displayCloneUrl(url: string): string {
  return url.replace(SCHEME, '').replace(/\.git$/, '');
}

/**
 * The form two clone URLs are compared in: no protocol, no trailing `.git` or `/`, the host in lower case and
 * without the default port (paths stay case-sensitive, as git servers may treat them).
 */
export function normalizeCloneUrl(url: string): string {
  const bare = url.replace(SCHEME, '').replace(/\/+$/, '').replace(/\.git$/, '').replace(/\/+$/, '');
  const slash = bare.indexOf('/');
  const host = (slash < 0 ? bare : bare.slice(0, slash)).toLowerCase().replace(/:443$/, '');
  return slash < 0 ? host : host + bare.slice(slash);
}
