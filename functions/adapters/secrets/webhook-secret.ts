// The GitHub webhook secret: GIT_SECRET locally, Secrets Manager on AWS (read on first use, then cached).
// The SDK is loaded on first use, not at import: only /callback ever asks for the secret.
import type { SecretsManagerClient, SecretsManagerClientConfig } from '@aws-sdk/client-secrets-manager';
import type { Config } from '#functions/config.js';
import { lazyRequire } from '#adapters/lazy-require.js';
import type { SecretReader } from '#core/ports.js';

type SecretsSdk = typeof import('@aws-sdk/client-secrets-manager');

const secretsSdk = lazyRequire<SecretsSdk>('@aws-sdk/client-secrets-manager');

/**
 * How long a read secret is trusted. A webhook secret is rotated by hand (a new value, then the hooks
 * updated), so a warm function picks up the new value within this time without a read per delivery.
 */
export const SECRET_CACHE_MS = 5 * 60_000;

export interface SecretsManagerReaderOptions {
  secretId: string;
  /** A ready client (tests); else one is made from `clientConfig` on first use. */
  client?: SecretsManagerClient;
  clientConfig?: SecretsManagerClientConfig;
  cacheMs?: number;
  now?: () => number;
}

/**
 * Reads a plain-string secret from Secrets Manager. Concurrent first reads share one call; a failed
 * read is not cached (the next delivery tries again, and this one is answered 500, not 401).
 */
export function secretsManagerReader(options: SecretsManagerReaderOptions): SecretReader {
  const cacheMs = options.cacheMs ?? SECRET_CACHE_MS;
  const now = options.now ?? Date.now;
  let client = options.client;
  let cached: { value: string | undefined; at: number } | undefined;
  let reading: Promise<string | undefined> | undefined;

  const read = async (): Promise<string | undefined> => {
    const sdk = secretsSdk();
    client ??= new sdk.SecretsManagerClient(options.clientConfig ?? {});
    const out = await client.send(new sdk.GetSecretValueCommand({ SecretId: options.secretId }));
    const value = out.SecretString ?? (out.SecretBinary ? Buffer.from(out.SecretBinary).toString('utf8') : undefined);
    return value === undefined || value === '' ? undefined : value;
  };

  return () => {
    if (cached && now() - cached.at < cacheMs) return Promise.resolve(cached.value);
    reading ??= read().then(
      (value) => {
        cached = { value, at: now() };
        reading = undefined;
        return value;
      },
      (error: unknown) => {
        reading = undefined;
        throw error;
      },
    );
    return reading;
  };
}

const readers = new WeakMap<Config, SecretReader>();

/**
 * The webhook secret reader for a configuration, one per config (so the cache lives as long as the
 * process's dependencies): GIT_SECRET when set (local, tests), else the Secrets Manager secret named by
 * ENOT_GIT_SECRET_ARN in the aws runtime, else a reader of nothing.
 */
export function webhookSecretFor(config: Config): SecretReader {
  let reader = readers.get(config);
  if (!reader) {
    const fixed = config.gitSecret;
    const arn = config.aws.gitSecretArn;
    if (fixed) reader = () => Promise.resolve(fixed);
    else if (config.runtime === 'aws' && arn) reader = secretsManagerReader({ secretId: arn, clientConfig: { region: config.aws.region } });
    else reader = () => Promise.resolve(undefined);
    readers.set(config, reader);
  }
  return reader;
}
