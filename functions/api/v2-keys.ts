// GET /v2/keys: the public keys statements and indexes are signed with (PEM and JWK), with their validity.
// API Gateway -> listSigningKeys -> Store.
import { listSigningKeys } from '#core/read-signing.js';
import { endpoint } from '#functions/service-endpoint.js';
import { problemFor, resource } from '#http/problem.js';

export const handler = endpoint({}, async ({ deps, requestId, log }) => {
  try {
    const keys = await listSigningKeys(deps);
    return resource({
      keys: keys.map((k) => ({
        key_id: k.keyId,
        algorithm: 'ECDSA_P256_SHA256',
        pem: k.pem,
        jwk: { ...k.jwk, kid: k.keyId, alg: 'ES256', use: 'sig' },
        not_before: k.notBefore.toISOString(),
        not_after: k.notAfter?.toISOString() ?? null,
      })),
    });
  } catch (error) {
    const answer = problemFor(error, requestId);
    if (answer.statusCode >= 500) log.error('GET /v2/keys failed', error);
    return answer;
  }
});
