// Who a Bearer token names (an admin, a package's owner) and what that principal may do: the one authorizer.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ForbiddenError, UnauthorizedError } from './errors.js';
import type { PackageName } from './model.js';
import type { OwnerTokenRecords } from './ports.js';

/** A caller that proved a token: an admin, or the owner of one package. */
export type Principal =
  | { kind: 'admin' }
  | { kind: 'owner'; tokenId: string; repositoryId: number; pkg: PackageName };

/** The admin tokens' SHA-256 hashes (lower-case hex): from config locally, from a Secrets Manager secret on AWS. */
export type AdminTokenHashes = () => Promise<readonly string[]>;

export interface AuthorizationDeps {
  store: Pick<OwnerTokenRecords, 'findOwnerToken'>;
  adminTokenHashes: AdminTokenHashes;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;
/** RFC 6750's token68, bounded: nothing longer is ever issued or worth hashing. */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;
const MAX_TOKEN = 512;

/** Owner tokens carry a prefix so a leaked one is recognisable (secret scanners, logs). */
export const OWNER_TOKEN_PREFIX = 'enot_';

/** The SHA-256 of a token as stored and compared: lower-case hex. Tokens are 32 random bytes, so no salt or KDF. */
export function tokenSha256(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** A new owner token: 32 random bytes, base64url, with the prefix. */
export function newOwnerToken(): string {
  return OWNER_TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

/**
 * ENOT_ADMIN_TOKENS (or the admin secret's value) as hashes: comma-separated entries, each a plain token (hashed
 * here) or `sha256:<64 hex>`. Throws on a malformed `sha256:` entry, naming its position, never its text.
 */
export function parseAdminTokens(text: string): string[] {
  const entries = text.split(',').map((e) => e.trim()).filter((e) => e !== '');
  return entries.map((entry, i) => {
    if (!entry.toLowerCase().startsWith('sha256:')) return tokenSha256(entry);
    const hex = entry.slice('sha256:'.length).toLowerCase();
    if (!SHA256_HEX.test(hex)) throw new Error(`admin token ${i + 1}: sha256: must be followed by 64 hex digits`);
    return hex;
  });
}

/** The token of an Authorization header: undefined when there is no header; UnauthorizedError when it is not Bearer. */
export function bearerToken(authorization: string | undefined): string | undefined {
  if (authorization === undefined || authorization.trim() === '') return undefined;
  const match = BEARER.exec(authorization);
  if (!match || match[1].length > MAX_TOKEN) {
    throw new UnauthorizedError('Unauthorized: the Authorization header must be "Bearer <token>"');
  }
  return match[1];
}

/** Whether `hash` is one of `hashes`, comparing every one in constant time (no early exit on a match). */
function isOneOf(hash: string, hashes: readonly string[]): boolean {
  const mine = Buffer.from(hash, 'hex');
  let found = false;
  for (const other of hashes) {
    const theirs = Buffer.from(other, 'hex');
    if (theirs.length === mine.length && timingSafeEqual(theirs, mine)) found = true;
  }
  return found;
}

/**
 * The principal an Authorization header proves.
 * Output: null without a header (anonymous); else the admin or the owner the token names.
 * Errors: UnauthorizedError (401) for a header that is not Bearer, and for a token that is no admin's or owner's.
 * Only hashes are compared: admin hashes in constant time; an owner token by a unique-index lookup of its hash
 * (a lookup by hash leaks nothing an attacker can steer), then compared again in constant time.
 */
export async function authenticate(deps: AuthorizationDeps, authorization: string | undefined): Promise<Principal | null> {
  const token = bearerToken(authorization);
  if (token === undefined) return null;
  const hash = tokenSha256(token);
  if (isOneOf(hash, await deps.adminTokenHashes())) return { kind: 'admin' };
  if (token.startsWith(OWNER_TOKEN_PREFIX)) {
    const owner = await deps.store.findOwnerToken(hash);
    if (owner && isOneOf(hash, [owner.tokenSha256])) {
      return { kind: 'owner', tokenId: owner.id, repositoryId: owner.repositoryId, pkg: { namespace: owner.namespace, name: owner.name } };
    }
  }
  throw new UnauthorizedError('Unauthorized: the Bearer token is not valid');
}

function missing(): UnauthorizedError {
  return new UnauthorizedError('Unauthorized: this needs an Authorization: Bearer <token> header');
}

/** Throws 401 unless a token was shown: checked before the inputs, so no caller without one learns about them. */
export function requirePrincipal(principal: Principal | null): asserts principal is Principal {
  if (!principal) throw missing();
}

/** Throws unless the principal is an admin: 401 without one, 403 for an owner. */
export function requireAdmin(principal: Principal | null): asserts principal is { kind: 'admin' } {
  if (!principal) throw missing();
  if (principal.kind !== 'admin') throw new ForbiddenError('Forbidden: this needs an admin token');
}

/** Throws unless the principal is an admin or the owner of `pkg` (names as stored, exactly). */
export function requireOwnerOrAdmin(principal: Principal | null, pkg: PackageName): void {
  if (!principal) throw missing();
  if (principal.kind === 'admin') return;
  if (!samePackage(principal.pkg, pkg)) {
    throw new ForbiddenError(`Forbidden: this needs an admin token or an owner token of ${pkg.namespace}/${pkg.name}`);
  }
}

/** Whether a principal may skip the rate limits: any valid token does. */
export function isPrivileged(principal: Principal | null): boolean {
  return principal !== null;
}

function samePackage(a: PackageName, b: PackageName): boolean {
  return a.namespace === b.namespace && a.name === b.name;
}
