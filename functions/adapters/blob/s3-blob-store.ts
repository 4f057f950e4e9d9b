// BlobStore on S3 (AWS runtime): objects in one bucket, downloads as presigned GET redirects, and presigned POST
// forms for builds that upload without S3 permissions of their own.
// The SDK is loaded on first use, not at import: most functions never touch a blob.
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat as statFile } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { UPLOAD_CHECKSUM_FIELD, type UploadForm } from '#core/build-contract.js';
import { BlobExistsError } from '#core/errors.js';
import type { BlobDigest, BlobInfo, BlobStore, DownloadOptions, DownloadResponse } from '#core/ports.js';
import { assertValidBlobKey, attachmentDisposition, isWriteOnceKey } from './blob-key.js';
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
type PresignedPost = typeof import('@aws-sdk/s3-presigned-post');

// Required on first use (lazy-require.ts): they load in about a third of the CPU that import() takes,
// which is what a cold start feels, and only a function that touches a blob loads them.
const s3Sdk = lazyRequire<S3Sdk>('@aws-sdk/client-s3');
const s3Presigner = lazyRequire<Presigner>('@aws-sdk/s3-request-presigner');
const s3PresignedPost = lazyRequire<PresignedPost>('@aws-sdk/s3-presigned-post');

// User metadata (x-amz-meta-sha256), hex: what HeadObject hands back to stat().
const SHA256_METADATA = 'sha256';

/** The longest a presigned upload may live: the seven days S3 allows a SigV4 presigned URL, for forms too. */
export const S3_PRESIGN_MAX_S = 7 * 24 * 3600;

/** S3's largest single upload (PUT or POST Object): 5 GiB. */
export const S3_SINGLE_UPLOAD_MAX_BYTES = 5 * 1024 ** 3;

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
    await this.putOnce(key, digest, () => client.send(new sdk.PutObjectCommand({
      Bucket: this.bucket,
      Key: key,
      Body: bytes,
      ContentLength: bytes.byteLength,
      ContentType: contentType,
      // S3 verifies the checksum, so a corrupted upload is refused instead of stored.
      ChecksumSHA256: digest.toString('base64'),
      Metadata: { [SHA256_METADATA]: digest.toString('hex') },
      ...writeOnce(key),
    })));
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
    await this.putOnce(key, digest, () => client.send(new sdk.PutObjectCommand({
      Bucket: this.bucket,
      Key: key,
      Body: createReadStream(path),
      ContentLength: size,
      ContentType: contentType,
      ChecksumSHA256: digest.toString('base64'),
      Metadata: { [SHA256_METADATA]: digest.toString('hex') },
      ...writeOnce(key),
    })));
    return { size, sha256: digest.toString('hex') };
  }

  /**
   * Sends a PutObject; for a write-once key it carries If-None-Match: * (writeOnce), so S3 refuses it with 412 when
   * the key holds an object. The same bytes stored already (a retried upload) are no overwrite; others are refused.
   */
  private async putOnce(key: string, digest: Buffer, send: () => Promise<unknown>): Promise<void> {
    try {
      await send();
    } catch (err) {
      if (!isWriteOnceKey(key) || !isPreconditionFailed(err)) throw err;
      const existing = await this.digest(key);
      if (existing?.sha256 !== digest.toString('hex')) throw new BlobExistsError(key);
    }
  }

  /** DeleteObject: in the versioned bucket a delete marker, the bytes kept as a noncurrent version (lifecycle ends it). */
  async delete(key: string): Promise<void> {
    assertValidBlobKey(key);
    const { sdk, client } = this.s3();
    // S3 answers 204 for a key that does not exist, so a repeated delete is no error.
    await client.send(new sdk.DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
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

  /**
   * A presigned GET of the object as it is now. The HEAD comes first because a presigned URL to a missing object
   * would only fail at the client; it also names the version redirected to, and in a versioned bucket the URL asks
   * for exactly that version, so an object replaced after its check is not what the client gets.
   */
  async download(key: string, options: DownloadOptions): Promise<DownloadResponse | null> {
    const head = await this.head(key, false);
    if (!head) return null;
    const { sdk, client } = this.s3();
    const command = new sdk.GetObjectCommand({
      Bucket: this.bucket,
      Key: key,
      ...(head.VersionId ? { VersionId: head.VersionId } : {}),
      ResponseContentType: options.contentType,
      ...(options.filename !== undefined
        ? { ResponseContentDisposition: attachmentDisposition(options.filename) }
        : {}),
    });
    const location = await s3Presigner().getSignedUrl(client, command, { expiresIn: this.presignTtlS });
    return { kind: 'redirect', status: options.redirectStatus, location, version: objectVersion(head) };
  }

  /**
   * The checksum S3 verified when the object was uploaded with one, from one HEAD: every upload here carries one
   * (put, putFile, and a build's POST through presignPost, whose policy requires it). An object without one
   * (uploaded some other way, or in parts) is read and hashed instead, pinned to the version the HEAD saw.
   * The x-amz-meta-sha256 metadata is not used: whoever uploads sets it, and S3 never checks it against the bytes.
   */
  async digest(key: string): Promise<BlobDigest | null> {
    const head = await this.head(key, true);
    if (!head) return null;
    const version = objectVersion(head);
    const size = head.ContentLength ?? 0;
    const stored = sha256OfChecksum(head.ChecksumSHA256, head.ChecksumType);
    if (stored) return { sha256: stored, size, version };
    const { sdk, client } = this.s3();
    const out = await client.send(new sdk.GetObjectCommand({
      Bucket: this.bucket,
      Key: key,
      ...(head.VersionId ? { VersionId: head.VersionId } : {}),
      ...(head.ETag ? { IfMatch: head.ETag } : {}),
    }));
    const hash = createHash('sha256');
    let read = 0;
    for await (const chunk of out.Body as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      read += chunk.length;
    }
    return { sha256: hash.digest('hex'), size: read, version };
  }

  /** HeadObject, with S3's stored checksum when `checksum`; null when there is no such object. */
  private async head(key: string, checksum: boolean) {
    assertValidBlobKey(key);
    const { sdk, client } = this.s3();
    try {
      return await client.send(new sdk.HeadObjectCommand({
        Bucket: this.bucket, Key: key, ...(checksum ? { ChecksumMode: 'ENABLED' as const } : {}),
      }));
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  /**
   * A presigned POST Object form that lets whoever holds it upload one object at `key`, with exactly `contentType`,
   * of at most `maxBytes`, for `expiresInS` seconds, and only with an x-amz-checksum-sha256 field: S3 checks the
   * body against it (a mismatch is refused with BadDigest) and keeps it, so digest() reads it back from one HEAD.
   * A checksum cannot ride in a presigned PUT: S3 refuses x-amz-* headers its signature does not cover, and the
   * digest exists only after the build. The policy is signed with this store's credentials, which must allow
   * s3:PutObject on the key; signed with temporary ones, the form also stops working when they expire.
   */
  async presignPost(key: string, contentType: string, expiresInS: number, maxBytes: number): Promise<UploadForm> {
    assertValidBlobKey(key);
    if (!Number.isInteger(expiresInS) || expiresInS < 1 || expiresInS > S3_PRESIGN_MAX_S) {
      throw new RangeError(`a presigned upload lives 1 to ${S3_PRESIGN_MAX_S} seconds, not ${expiresInS}`);
    }
    if (!Number.isInteger(maxBytes) || maxBytes < 0 || maxBytes > S3_SINGLE_UPLOAD_MAX_BYTES) {
      throw new RangeError(`a presigned upload takes 0 to ${S3_SINGLE_UPLOAD_MAX_BYTES} bytes, not ${maxBytes}`);
    }
    const { client } = this.s3();
    const { url, fields } = await s3PresignedPost().createPresignedPost(client, {
      Bucket: this.bucket,
      Key: key,
      // Fields are signed as exact matches, and the form hands them to the uploader.
      Fields: { 'Content-Type': contentType, 'x-amz-checksum-algorithm': 'SHA256' },
      Conditions: [
        ['eq', '$key', key],
        ['eq', '$Content-Type', contentType],
        ['content-length-range', 0, maxBytes],
        // Any value the uploader computes, but the field must be there: without it S3 would store unverified bytes.
        ['starts-with', `$${UPLOAD_CHECKSUM_FIELD}`, ''],
      ],
      Expires: expiresInS,
    });
    return { url, fields };
  }
}

/** Names the stored bytes of an object: its version id in a versioned bucket, else its ETag (which a rewrite moves). */
function objectVersion(head: { VersionId?: string; ETag?: string; ContentLength?: number }): string {
  return `${head.VersionId ?? ''}:${head.ETag ?? ''}:${head.ContentLength ?? 0}`;
}

/**
 * S3's ChecksumSHA256 (base64 of the 32 bytes) as lowercase hex; undefined when absent, or when it is the checksum
 * of the parts of a multipart upload ("<base64>-<parts>", ChecksumType COMPOSITE), which is no digest of the object.
 */
export function sha256OfChecksum(checksum: string | undefined, type?: string): string | undefined {
  if (!checksum || type === 'COMPOSITE' || !/^[A-Za-z0-9+/]{43}=$/.test(checksum)) return undefined;
  return Buffer.from(checksum, 'base64').toString('hex');
}

/** The conditional-write header of a write-once key (artifacts/, erts/): S3 stores it only where there is none. */
function writeOnce(key: string): { IfNoneMatch?: string } {
  return isWriteOnceKey(key) ? { IfNoneMatch: '*' } : {};
}

/** S3's answer to a conditional write whose condition failed: the key holds an object. */
function isPreconditionFailed(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  return e?.name === 'PreconditionFailed' || e?.$metadata?.httpStatusCode === 412;
}

/**
 * GetObject says NoSuchKey; HeadObject has no error body, so the SDK names it NotFound.
 * Other 404s (NoSuchBucket) are misconfiguration and must not pass for a missing object.
 */
function isNotFound(err: unknown): boolean {
  const name = (err as { name?: string } | undefined)?.name;
  return name === 'NoSuchKey' || name === 'NotFound';
}
