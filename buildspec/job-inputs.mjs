// The rules a build's ref, OTP release and clone URL follow: the service's own (functions/core/version-names.ts and
// clone-urls.ts), written again in plain JavaScript for trusted code that checks a job before git sees it.
// test/unit/clone-urls.test.ts and version-names.test.ts run the same tables through both.

const REF_CHARS = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$/;
// eslint-disable-next-line no-control-regex
const GIT_FORBIDDEN = /[\x00-\x20\x7f~^:?*[\\]/;

/** Why git would refuse `refs/tags/<name>` (`git check-ref-format`), or undefined. */
export function gitTagNameProblem(name) {
  if (name === '') return 'is empty';
  if (name === '@') return 'is @';
  if (GIT_FORBIDDEN.test(name)) return 'contains a space, a control character or one of ~ ^ : ? * [ \\';
  if (name.includes('..')) return 'contains ..';
  if (name.includes('@{')) return 'contains @{';
  if (name.startsWith('/') || name.endsWith('/') || name.includes('//')) return 'starts or ends with / or contains //';
  if (name.endsWith('.')) return 'ends with .';
  for (const component of name.split('/')) {
    if (component.startsWith('.')) return 'has a part starting with .';
    if (component.endsWith('.lock')) return 'ends with .lock';
  }
  return undefined;
}

/** Why `ref` is not a tag a build takes (not HEAD, a valid tag name, the service's charset), or undefined. */
export function refProblem(ref) {
  if (typeof ref !== 'string') return 'must be set';
  if (ref === 'HEAD') return 'must be a git tag, not HEAD';
  const git = gitTagNameProblem(ref);
  if (git) return `must be a git tag: git refuses a tag name that ${git}`;
  if (!REF_CHARS.test(ref)) return 'must be a git tag: a letter or digit, then up to 99 of A-Z a-z 0-9 . _ + - (no "..")';
  return undefined;
}

/** An OTP release in its one spelling: `25`, `26.2`, `26.2.5`; no leading zeros, at most three parts of four digits. */
export const OTP_RELEASE = /^[1-9][0-9]{0,3}(?:\.(?:0|[1-9][0-9]{0,3})){0,2}$/;

const MAX_CLONE_URL = 1000;
// eslint-disable-next-line no-control-regex
const UNSAFE_CHARS = /[\s\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]/u;
const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;
const PATH_CHARS = /^[A-Za-z0-9._~+@=,/-]*$/;
const HOST_NAME = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/;
const IPV6_HOST = /^\[[0-9a-f:.]+\]$/;
const PORT = /^[1-9][0-9]{0,4}$/;
const DECODE_ROUNDS = 3;

function decodeOnce(s) {
  return s.replace(/%([0-9A-Fa-f]{2})/g, (_m, hex) => String.fromCharCode(parseInt(hex, 16)));
}

function escapeProblem(path) {
  let decoded = path;
  for (let i = 0; i < DECODE_ROUNDS; i += 1) decoded = decodeOnce(decoded);
  if (decoded.split(/[/\\]/).some((segment) => segment === '..')) return 'must not contain .. path segments (also percent-encoded)';
  return 'must not contain percent-escapes (%XX): git decodes them, so it would clone another path than the one allowed';
}

/**
 * The clone URL's form as the service judges it (parseCloneUrl in functions/core/clone-urls.ts): `{ canonical,
 * scheme, path }`, or `{ problem }`. The allowed prefixes are the service's to check; the build checks the form again.
 */
export function parseCloneUrl(url) {
  const refuse = (problem) => ({ problem });
  if (typeof url !== 'string' || url.length === 0) return refuse('must not be empty');
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
    return { scheme, canonical: `file://${path}`, path };
  }
  const hostPort = /^(\[[^\]]*\]|[^:]*)(?::(.*))?$/.exec(authority.toLowerCase());
  const host = hostPort?.[1] ?? '';
  const port = hostPort?.[2];
  if (!HOST_NAME.test(host) && !IPV6_HOST.test(host)) return refuse('must name a host of letters, digits, - and . (or [IPv6])');
  if (port !== undefined && (!PORT.test(port) || Number(port) > 65535)) return refuse('must name a port of 1-65535');
  if (path === '') return refuse('must name a repository after the host');
  const shownPort = port === undefined || port === '443' ? '' : `:${port}`;
  return { scheme, canonical: `https://${host}${shownPort}${path}`, path };
}
