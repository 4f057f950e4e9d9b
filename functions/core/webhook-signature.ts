// GitHub webhook authentication: the HMAC of the raw body under the shared secret, compared in constant time.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { UnauthorizedError } from './errors.js';
import { headerValue, type HeaderMap } from './headers.js';
import type { SecretReader } from './ports.js';

export const SIGNATURE_256_HEADER = 'X-Hub-Signature-256';
/** The legacy header (HMAC-SHA1), used only when the SHA-256 one is absent. */
export const SIGNATURE_1_HEADER = 'X-Hub-Signature';

export type SignatureAlgorithm = 'sha256' | 'sha1';

export type SignatureCheck =
  | { ok: true; algorithm: SignatureAlgorithm }
  | { ok: false; reason: string };

/** The header value GitHub would send for `body`: `sha256=<hex>` or `sha1=<hex>`. */
export function signWebhookBody(secret: string, body: Uint8Array | string, algorithm: SignatureAlgorithm = 'sha256'): string {
  return `${algorithm}=${createHmac(algorithm, secret).update(body).digest('hex')}`;
}

/** Which signature header a request carries: the SHA-256 one wins, so a SHA-1 one cannot downgrade it. */
export function signatureOf(headers: HeaderMap): { algorithm: SignatureAlgorithm; value: string } | undefined {
  const sha256 = headerValue(headers, SIGNATURE_256_HEADER);
  if (sha256 !== undefined) return { algorithm: 'sha256', value: sha256 };
  const sha1 = headerValue(headers, SIGNATURE_1_HEADER);
  if (sha1 !== undefined) return { algorithm: 'sha1', value: sha1 };
  return undefined;
}

/**
 * Checks the signature headers of a delivery against its raw body (the exact bytes GitHub sent).
 * Only a well-formed `<algorithm>=<hex>` of the right length is compared, and then byte for byte in
 * constant time, so the answer time says nothing about how much of a forged signature was right.
 */
export function verifyWebhookSignature(secret: string, body: Uint8Array, headers: HeaderMap): SignatureCheck {
  const signature = signatureOf(headers);
  if (!signature) return { ok: false, reason: `no ${SIGNATURE_256_HEADER} (or ${SIGNATURE_1_HEADER}) header` };
  const { algorithm, value } = signature;
  const header = algorithm === 'sha256' ? SIGNATURE_256_HEADER : SIGNATURE_1_HEADER;
  const expected = createHmac(algorithm, secret).update(body).digest();
  const prefix = `${algorithm}=`;
  const hex = value.trim();
  if (!hex.startsWith(prefix) || !/^[0-9a-fA-F]*$/.test(hex.slice(prefix.length))
    || hex.length - prefix.length !== expected.length * 2) {
    return { ok: false, reason: `${header} is not of the form ${prefix}<${expected.length * 2} hex digits>` };
  }
  const given = Buffer.from(hex.slice(prefix.length), 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { ok: false, reason: `${header} does not match the body` };
  }
  return { ok: true, algorithm };
}

/**
 * Authenticates a webhook delivery or throws UnauthorizedError (401).
 * Input: the reader of the shared secret (Secrets Manager on AWS, GIT_SECRET locally), the raw body
 * and the request headers.
 * Primary course: a delivery without a signature is refused before the secret is even read; without a
 * configured secret every delivery is refused; otherwise the signature must match.
 */
export async function authenticateWebhook(
  secret: SecretReader, body: Uint8Array, headers: HeaderMap,
): Promise<SignatureAlgorithm> {
  if (!signatureOf(headers)) {
    throw new UnauthorizedError(`Webhook refused: no ${SIGNATURE_256_HEADER} (or ${SIGNATURE_1_HEADER}) header`);
  }
  const key = await secret();
  if (!key) throw new UnauthorizedError('Webhook refused: no webhook secret is configured on this service');
  const check = verifyWebhookSignature(key, body, headers);
  if (!check.ok) throw new UnauthorizedError(`Webhook refused: ${check.reason}`);
  return check.algorithm;
}
