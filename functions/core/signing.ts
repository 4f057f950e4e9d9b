// Signed statements: what the service vouches for about one artifact (a package build or an ERTS tarball), as
// canonical JSON bytes that a Signer signs. The bytes are the contract: any client can re-derive and verify them.
import type { Log, PublicKeyRecords, Signer, StoredSignature } from './ports.js';

/** What a statement says of one artifact. Fields are never renamed; new ones may be added. */
export interface Statement {
  namespace: string;
  name: string;
  ref: string;
  /** The git commit built; null for an ERTS tarball (not built from a repository). */
  commit: string | null;
  /** The OTP release the artifact was asked for ("25"). */
  erl_version: string;
  /** The full OTP version it was built with ("25.2.3"). */
  otp_version: string;
  /** `amd64` or `arm64` (the builder's). Packages without native code will say `any` once builds detect it. */
  arch: string;
  /** Lowercase hex SHA-256 of the artifact's bytes. */
  sha256: string;
  size: number;
  /** ISO 8601 UTC with milliseconds: when the build finished (the ERTS: when it was registered). */
  built_at: string;
  /** The signing key's id, as GET /v2/keys lists it. */
  key_id: string;
}

/** A statement's bytes, their DER ECDSA signature and the key that made it. */
export interface SignedStatement {
  /** The canonical JSON, UTF-8. */
  statement: Buffer;
  /** DER-encoded ECDSA P-256 / SHA-256. */
  signature: Buffer;
  keyId: string;
}

/**
 * JSON with object keys sorted (by UTF-16 code unit, as Array.prototype.sort does), no whitespace, UTF-8: the same
 * value always gives the same bytes. Only plain JSON values are taken (no undefined, no non-finite numbers).
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError('canonical JSON takes finite numbers only');
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  throw new TypeError(`canonical JSON cannot hold a ${typeof value}`);
}

/** The bytes a statement is signed as. */
export function statementBytes(statement: Statement): Buffer {
  return Buffer.from(canonicalJson(statement), 'utf8');
}

export interface SigningDeps {
  signer: Signer;
  /** Where the keys that signed are recorded, so GET /v2/keys lists every key a statement may name. */
  store: PublicKeyRecords;
  log?: Log;
}

/**
 * Signs bytes with the signer's current key, after recording that key's public half, so nothing is ever stored
 * signed by a key that GET /v2/keys cannot show.
 */
export async function signBytes(deps: SigningDeps, bytes: Uint8Array, keyId?: string): Promise<{ signature: Buffer; keyId: string }> {
  const id = keyId ?? await deps.signer.keyId();
  await deps.store.recordPublicKeys(await deps.signer.publicKeys(), id);
  return { signature: Buffer.from(await deps.signer.sign(bytes)), keyId: id };
}

/** Signs a statement of `facts` with the signer's current key, which the statement names. */
export async function signStatement(deps: SigningDeps, facts: Omit<Statement, 'key_id'>): Promise<SignedStatement> {
  const keyId = await deps.signer.keyId();
  const statement = statementBytes({ ...facts, key_id: keyId });
  const { signature } = await signBytes(deps, statement, keyId);
  return { statement, signature, keyId };
}

export function storedSignature(signed: SignedStatement): StoredSignature {
  return { statement: signed.statement.toString('utf8'), signature: signed.signature.toString('base64') };
}
