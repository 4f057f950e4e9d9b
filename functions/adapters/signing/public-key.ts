// A P-256 public key in the forms GET /v2/keys serves (PEM, JWK) and the id statements name it by.
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import type { PublicKey } from '#core/ports.js';

/** The id of a public key: `sha256:` and the first 32 hex digits of the SHA-256 of its DER SubjectPublicKeyInfo. */
export function publicKeyId(key: KeyObject): string {
  const der = key.export({ type: 'spki', format: 'der' });
  return `sha256:${createHash('sha256').update(der).digest('hex').slice(0, 32)}`;
}

/** The PEM and JWK of a P-256 public key (from a KeyObject, or DER SubjectPublicKeyInfo as KMS answers it). */
export function publicKeyForms(key: KeyObject | Uint8Array): Pick<PublicKey, 'pem' | 'jwk'> & { object: KeyObject } {
  const object = key instanceof Uint8Array ? createPublicKey({ key: Buffer.from(key), format: 'der', type: 'spki' }) : key;
  if (object.asymmetricKeyType !== 'ec' || object.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new Error('the signing key is not an ECDSA P-256 key');
  }
  const jwk = object.export({ format: 'jwk' });
  return {
    object,
    pem: String(object.export({ type: 'spki', format: 'pem' })),
    jwk: { kty: String(jwk.kty), crv: String(jwk.crv), x: String(jwk.x), y: String(jwk.y) },
  };
}
