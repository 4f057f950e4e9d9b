// The authorizer's pure parts: admin token configuration, the Bearer header, and who may do what.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  authenticate, bearerToken, isPrivileged, newOwnerToken, parseAdminTokens, requireAdmin, requireOwnerOrAdmin,
  tokenSha256, type Principal,
} from '#core/authorization.js';
import { ForbiddenError, UnauthorizedError } from '#core/errors.js';
import type { OwnerTokenMatch } from '#core/ports.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

describe('admin tokens from configuration', () => {
  it('hashes plain entries and keeps sha256: ones, trimming and skipping empty entries', () => {
    expect(parseAdminTokens(` plain , sha256:${sha('x').toUpperCase()},,`)).toEqual([sha('plain'), sha('x')]);
    expect(parseAdminTokens('')).toEqual([]);
  });

  it('refuses a sha256: entry that is not 64 hex digits, naming its position only', () => {
    expect(() => parseAdminTokens('ok,sha256:abc')).toThrow('admin token 2: sha256: must be followed by 64 hex digits');
  });
});

describe('the Bearer header', () => {
  it('reads the token of a Bearer header in any case, and nothing without a header', () => {
    expect(bearerToken('Bearer abc.DEF-_~+/=')).toBe('abc.DEF-_~+/=');
    expect(bearerToken('bearer  t ')).toBe('t');
    expect(bearerToken(undefined)).toBeUndefined();
    expect(bearerToken('  ')).toBeUndefined();
  });

  it('refuses another scheme, a token with spaces or one too long (401)', () => {
    for (const header of ['Basic YTpi', 'Bearer', 'Bearer a b', `Bearer ${'a'.repeat(513)}`, 'Bearer a\u0000']) {
      expect(() => bearerToken(header), header).toThrow(UnauthorizedError);
    }
  });
});

describe('authenticate', () => {
  const owner = newOwnerToken();
  const match: OwnerTokenMatch = {
    id: 't1', repositoryId: 7, label: '', createdAt: new Date(), tokenSha256: tokenSha256(owner), namespace: 'a', name: 'b',
  };
  const deps = {
    store: { findOwnerToken: async (hash: string) => (hash === match.tokenSha256 ? match : null) },
    adminTokenHashes: async () => [sha('root')],
  };

  it('names the admin, the owner, or nobody', async () => {
    expect(await authenticate(deps, 'Bearer root')).toEqual({ kind: 'admin' });
    expect(await authenticate(deps, `Bearer ${owner}`)).toEqual({ kind: 'owner', tokenId: 't1', repositoryId: 7, pkg: { namespace: 'a', name: 'b' } });
    expect(await authenticate(deps, undefined)).toBeNull();
  });

  it('refuses a token that is no admin\'s or owner\'s (401)', async () => {
    await expect(authenticate(deps, 'Bearer rooT')).rejects.toThrow(UnauthorizedError);
    await expect(authenticate(deps, `Bearer ${newOwnerToken()}`)).rejects.toThrow(UnauthorizedError);
  });
});

describe('rights', () => {
  const admin: Principal = { kind: 'admin' };
  const ownerOfAB: Principal = { kind: 'owner', tokenId: 't', repositoryId: 1, pkg: { namespace: 'a', name: 'b' } };

  it('lets an admin do anything, an owner act on its own package only, nobody without a token', () => {
    expect(() => requireAdmin(admin)).not.toThrow();
    expect(() => requireAdmin(ownerOfAB)).toThrow(ForbiddenError);
    expect(() => requireAdmin(null)).toThrow(UnauthorizedError);
    expect(() => requireOwnerOrAdmin(admin, { namespace: 'x', name: 'y' })).not.toThrow();
    expect(() => requireOwnerOrAdmin(ownerOfAB, { namespace: 'a', name: 'b' })).not.toThrow();
    expect(() => requireOwnerOrAdmin(ownerOfAB, { namespace: 'a', name: 'c' })).toThrow(ForbiddenError);
    expect(() => requireOwnerOrAdmin(null, { namespace: 'a', name: 'b' })).toThrow(UnauthorizedError);
    expect([isPrivileged(admin), isPrivileged(ownerOfAB), isPrivileged(null)]).toEqual([true, true, false]);
  });
});
