// The admin tokens' hashes: ENOT_ADMIN_TOKENS locally, the admin Secrets Manager secret on AWS (read on first use).
import type { Config } from '#functions/config.js';
import { parseAdminTokens, type AdminTokenHashes } from '#core/authorization.js';
import { secretsManagerReader } from './webhook-secret.js';

const readers = new WeakMap<Config, AdminTokenHashes>();

/**
 * The admin token hashes for a configuration, one reader per config (its cache lives with the dependencies):
 * ENOT_ADMIN_TOKENS when set; else, in the aws runtime, the secret named by ENOT_ADMIN_TOKENS_SECRET_ARN (only on
 * functions granted 'secret:admin'), in the same format; else none, so no token is an admin's.
 */
export function adminTokenHashesFor(config: Config): AdminTokenHashes {
  let reader = readers.get(config);
  if (!reader) {
    const fixed = config.adminTokenHashes;
    const arn = config.aws.adminTokensSecretArn;
    if (fixed.length > 0) {
      reader = () => Promise.resolve(fixed);
    } else if (config.runtime === 'aws' && arn) {
      const secret = secretsManagerReader({ secretId: arn, clientConfig: { region: config.aws.region } });
      reader = async () => parseAdminTokens((await secret()) ?? '');
    } else {
      reader = () => Promise.resolve([]);
    }
    readers.set(config, reader);
  }
  return reader;
}
