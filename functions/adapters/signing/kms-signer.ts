// The Signer on AWS: a KMS asymmetric key (ECC_NIST_P256, ECDSA_SHA_256), so the private key never leaves KMS.
// The SDK is loaded on first use, not at import: only the completion worker signs.
import { createHash } from 'node:crypto';
import type { KMSClient, KMSClientConfig } from '@aws-sdk/client-kms';
import type { PublicKey, Signer } from '#core/ports.js';
import { lazyRequire } from '#adapters/lazy-require.js';
import { publicKeyForms, publicKeyId } from './public-key.js';

type KmsSdk = typeof import('@aws-sdk/client-kms');

const kmsSdk = lazyRequire<KmsSdk>('@aws-sdk/client-kms');

/** KMS takes a RAW message of at most 4096 bytes; a longer one is sent as its SHA-256 digest. */
export const KMS_RAW_MESSAGE_LIMIT = 4096;

export interface KmsSignerOptions {
  /** The KMS key's id or ARN (ENOT_SIGNING_KEY_ID). */
  kmsKeyId: string;
  /** A ready client (tests); else one is made from `clientConfig` on first use. */
  client?: KMSClient;
  clientConfig?: KMSClientConfig;
  now?: () => Date;
}

export class KmsSigner implements Signer {
  private client: KMSClient | undefined;
  /** The public key, asked of KMS once per process: it never changes for one KMS key. */
  private publicKey: Promise<Omit<PublicKey, 'notBefore' | 'notAfter'>> | undefined;

  constructor(private readonly options: KmsSignerOptions) {
    this.client = options.client;
  }

  private kms(): KMSClient {
    this.client ??= new (kmsSdk().KMSClient)(this.options.clientConfig ?? {});
    return this.client;
  }

  /**
   * The key id statements name: derived from the public key as the local signer's is (not the ARN), so a verifier
   * needs nothing AWS-specific and both signers name keys one way.
   */
  async keyId(): Promise<string> {
    return (await this.current()).keyId;
  }

  async sign(bytes: Uint8Array): Promise<Uint8Array> {
    const sdk = kmsSdk();
    const raw = bytes.byteLength <= KMS_RAW_MESSAGE_LIMIT;
    const answer = await this.kms().send(new sdk.SignCommand({
      KeyId: this.options.kmsKeyId,
      Message: raw ? bytes : createHash('sha256').update(bytes).digest(),
      MessageType: raw ? 'RAW' : 'DIGEST',
      SigningAlgorithm: 'ECDSA_SHA_256',
    }));
    if (!answer.Signature) throw new Error(`KMS answered no signature for key ${this.options.kmsKeyId}`);
    // KMS's ECDSA signatures are DER-encoded (RFC 3279), the form openssl and node verify.
    return answer.Signature;
  }

  /**
   * The KMS key's public half. notBefore is now: the store keeps the first time a key was recorded, which is when
   * it began to sign. Keys this deployment signed with before are listed by the store, not by KMS.
   */
  async publicKeys(): Promise<PublicKey[]> {
    return [{ ...(await this.current()), notBefore: (this.options.now ?? (() => new Date()))(), notAfter: null }];
  }

  private current(): Promise<Omit<PublicKey, 'notBefore' | 'notAfter'>> {
    this.publicKey ??= this.fetchPublicKey().catch((error: unknown) => {
      this.publicKey = undefined;
      throw error;
    });
    return this.publicKey;
  }

  private async fetchPublicKey(): Promise<Omit<PublicKey, 'notBefore' | 'notAfter'>> {
    const sdk = kmsSdk();
    const answer = await this.kms().send(new sdk.GetPublicKeyCommand({ KeyId: this.options.kmsKeyId }));
    if (!answer.PublicKey) throw new Error(`KMS answered no public key for ${this.options.kmsKeyId}`);
    if (answer.KeySpec !== 'ECC_NIST_P256' || !answer.SigningAlgorithms?.includes('ECDSA_SHA_256')) {
      throw new Error(`KMS key ${this.options.kmsKeyId} is ${answer.KeySpec ?? 'of no known spec'}, not an ECC_NIST_P256 signing key`);
    }
    const { object, pem, jwk } = publicKeyForms(answer.PublicKey);
    return { keyId: publicKeyId(object), pem, jwk };
  }
}
