// BlobStore on S3 (AWS runtime): objects in one bucket, downloads as presigned GET redirects, and presigned PUT
// URLs for builds that upload without S3 permissions of their own.
// The SDK is loaded on first use, not at import: most functions never touch a blob.
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat as statFile } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { BlobInfo, BlobStore, DownloadOptions, DownloadResponse } from '#core/ports.js';
import { assertValidBlobKey, attachmentDisposition } from './blob-key.js';
import { lazyRequire } from '#adapters/lazy-require.js';

export interface S3BlobStoreOptions {
  /** A ready client (tests, custom credentials); else one is made from `clientConfig` on first use. */
  client?: S3Client;
  clientConfig?: S3ClientConfig;
  bucket: string;
  /** Lifetime of presigned download URLs, in seconds. */
  presignTtlS: number;
}

type S3Sdk = typeof import('@aws-sdk/client-s3');
type Presigner = typeof import('@aws-sdk/s3-request-presigner');

// Required on first use (lazy-require.ts): they load in about a third of the CPU that import() takes,
// which is what a cold start feels, and only a function that touches a blob loads them.
const s3Sdk = lazyRequire<S3Sdk>('@aws-sdk/client-s3');
const s3Presigner = lazyRequire<Presigner>('@aws-sdk/s3-request-presigner');

// User metadata (x-amz-meta-sha256), hex: what HeadObject hands back to stat().
const SHA256_METADATA = 'sha256';

/** The longest a SigV4 presigned URL may live (S3 refuses X-Amz-Expires above seven days). */
export const S3_PRESIGN_MAX_S = 7 * 24 * 3600;

// Headers the SDK's default request checksums (CRC32) add to a PutObject. Presigned without a body, they would sign
// the checksum of an empty body into the URL, and S3 would refuse every real upload through it.
const CHECKSUM_HEADER = /^x-amz-(checksum-|sdk-checksum-algorithm$)/i;

export class S3BlobStore implements BlobStore {
  private readonly bucket: string;
  private readonly presignTtlS: number;
  private readonly options: S3BlobStoreOptions;
  private client: S3Client | undefined;

  constructor(options: S3BlobStoreOptions) {
    this.options = options;
    this.client = options.client;
    this.bucket = options.bucket;
    this.presignTtlS = options.presignTtlS;
  }

  /** The SDK and this store's client, made on first use. */
  private s3(): { sdk: S3Sdk; client: S3Client } {
    const sdk = s3Sdk();
    this.client ??= new sdk.S3Client(this.options.clientConfig ?? {});
    return { sdk, client: this.client };
  }

  async put(key: string, body: Buffer | Uint8Array | string, contentType: string): Promise<BlobInfo> {
    assertValidBlobKey(key);
    const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    const digest = createHash('sha256').update(bytes).digest();
    const { sdk, client } = this.s3();
    await client.send(new sdk.PutObjectCommand({
      Bucket: this.bucket,
      Key: key,
      Body: bytes,
      ContentLength: bytes.byteLength,
      ContentType: contentType,
      // S3 verifies the checksum, so a corrupted upload is refused instead of stored.
      ChecksumSHA256: digest.toString('base64'),
      Metadata: { [SHA256_METADATA]: digest.toString('hex') },
    }));
    return { size: bytes.byteLength, sha256: digest.toString('hex') };
  }

  async putFile(key: string, path: string, contentType: string): Promise<BlobInfo> {
    assertValidBlobKey(key);
    // The checksum header goes before the body, so the file is read twice: once to hash, once to send.
    // Should it change in between, S3 refuses the upload on the checksum mismatch.
    const { size } = await statFile(path);
    const hash = createHash('sha256');
    await pipeline(createReadStream(path), async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) hash.update(chunk);
    });
    const digest = hash.digest();
    const { sdk, client } = this.s3();
    await client.send(new sdk.PutObjectCommand({
      Bucket: this.bucket,
      Key: key,
      Body: createReadStream(path),
      ContentLength: size,
      ContentType: contentType,
      ChecksumSHA256: digest.toString('base64'),
      Metadata: { [SHA256_METADATA]: digest.toString('hex') },
    }));
    return { size, sha256: digest.toString('hex') };
  }

  async get(key: string): Promise<Buffer | null> {
    assertValidBlobKey(key);
    const { sdk, client } = this.s3();
    try {
      const out = await client.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: key }));
      if (!out.Body) return Buffer.alloc(0);
      return Buffer.from(await out.Body.transformToByteArray());
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async stat(key: string): Promise<BlobInfo | null> {
    assertValidBlobKey(key);
    const { sdk, client } = this.s3();
    try {
      const out = await client.send(new sdk.HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      const sha256 = out.Metadata?.[SHA256_METADATA];
      return { size: out.ContentLength ?? 0, ...(sha256 ? { sha256 } : {}) };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async download(key: string, options: DownloadOptions): Promise<DownloadResponse | null> {
    // Checked first because a presigned URL to a missing object would only fail at the client.
    if (!(await this.stat(key))) return null;
    const { sdk, client } = this.s3();
    const command = new sdk.GetObjectCommand({
      Bucket: this.bucket,
      Key: key,
      ResponseContentType: options.contentType,
      ...(options.filename !== undefined
        ? { ResponseContentDisposition: attachmentDisposition(options.filename) }
        : {}),
    });
    const location = await s3Presigner().getSignedUrl(client, command, { expiresIn: this.presignTtlS });
    return { kind: 'redirect', status: options.redirectStatus, location };
  }

  /**
   * A URL that lets whoever holds it PUT one object at `key`, with exactly `contentType` (the signature covers
   * the Content-Type header, so another type is refused), for `expiresInS` seconds. Signed with this store's
   * credentials, which must allow s3:PutObject on the key; signed with temporary credentials, the URL also stops
   * working when they expire.
   */
  async presignPut(key: string, contentType: string, expiresInS: number): Promise<string> {
    assertValidBlobKey(key);
    if (!Number.isInteger(expiresInS) || expiresInS < 1 || expiresInS > S3_PRESIGN_MAX_S) {
      throw new RangeError(`a presigned URL lives 1 to ${S3_PRESIGN_MAX_S} seconds, not ${expiresInS}`);
    }
    const { sdk, client } = this.s3();
    const command = new sdk.PutObjectCommand({ Bucket: this.bucket, Key: key, ContentType: contentType });
    // After the checksum middleware (build step) and before signing (finalizeRequest).
    command.middlewareStack.add((next) => async (args) => {
      const request = args.request as { headers?: Record<string, string> };
      for (const name of Object.keys(request.headers ?? {})) {
        if (CHECKSUM_HEADER.test(name)) delete request.headers![name];
      }
      return next(args);
    }, { step: 'build', priority: 'low', name: 'enotDropEmptyBodyChecksum' });
    return s3Presigner().getSignedUrl(client, command, {
      expiresIn: expiresInS,
      // The presigner leaves Content-Type unsigned by default; signed, an upload cannot choose its own type.
      signableHeaders: new Set(['content-type']),
    });
  }
}

/**
 * GetObject says NoSuchKey; HeadObject has no error body, so the SDK names it NotFound.
 * Other 404s (NoSuchBucket) are misconfiguration and must not pass for a missing object.
 */
function isNotFound(err: unknown): boolean {
  const name = (err as { name?: string } | undefined)?.name;
  return name === 'NoSuchKey' || name === 'NotFound';
}
