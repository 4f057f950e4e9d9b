// S3BlobStore.digest: the sha256 of the object as stored, from S3's own checksum when it has one (a mocked HEAD), else
// read and hashed (s3rver keeps no checksums); and the version a download redirects to, which digest names alike.
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3BlobStore, sha256OfChecksum } from '#adapters/blob/s3-blob-store.js';
import { startS3rver, type TestS3 } from '#support/s3rver.js';

const hex = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');

describe('S3BlobStore.digest against s3rver', () => {
  let s3: TestS3;
  let blobs: S3BlobStore;

  beforeAll(async () => {
    s3 = await startS3rver();
    blobs = new S3BlobStore({ client: s3.client, bucket: s3.bucket, presignTtlS: 60 });
  });
  afterAll(() => s3?.close());

  it('hashes the stored bytes, and names the version a download redirects to', async () => {
    const bytes = randomBytes(300 * 1024 + 1);
    await blobs.put('artifacts/a.ep', bytes, 'application/x-tar');
    const digest = await blobs.digest('artifacts/a.ep');
    expect(digest).toMatchObject({ sha256: hex(bytes), size: bytes.length });
    const download = await blobs.download('artifacts/a.ep', { contentType: 'application/x-tar', redirectStatus: 302 });
    expect(download?.version).toBe(digest!.version);
  });

  it('sees bytes written over the key behind its back (another version), not the metadata they claim', async () => {
    const good = randomBytes(1000);
    await blobs.put('artifacts/b.ep', good, 'application/x-tar');
    const before = await blobs.digest('artifacts/b.ep');
    // A writer that keeps the old x-amz-meta-sha256: the metadata is not evidence.
    await s3.client.send(new PutObjectCommand({
      Bucket: s3.bucket, Key: 'artifacts/b.ep', Body: Buffer.from('evil'), Metadata: { sha256: hex(good) },
    }));
    const after = await blobs.digest('artifacts/b.ep');
    expect(after).toMatchObject({ sha256: hex('evil'), size: 4 });
    expect(after!.version).not.toBe(before!.version);
  });

  it('answers null for a missing object', async () => {
    expect(await blobs.digest('artifacts/none.ep')).toBeNull();
  });
});

describe('S3BlobStore.digest with S3\'s stored checksum', () => {
  it('takes ChecksumSHA256 (base64) from one HEAD with ChecksumMode, as hex, and reads nothing', async () => {
    const bytes = Buffer.from('the package');
    const s3 = mockClient(S3Client);
    s3.on(HeadObjectCommand).resolves({
      ContentLength: bytes.length, ETag: '"e1"', VersionId: 'v7',
      ChecksumSHA256: createHash('sha256').update(bytes).digest('base64'), ChecksumType: 'FULL_OBJECT',
    });
    try {
      const blobs = new S3BlobStore({ client: new S3Client({ region: 'us-east-1' }), bucket: 'b', presignTtlS: 60 });
      expect(await blobs.digest('artifacts/c.ep')).toEqual({ sha256: hex(bytes), size: bytes.length, version: 'v7:"e1":11' });
      expect(s3.commandCalls(HeadObjectCommand)[0].args[0].input).toMatchObject({ Key: 'artifacts/c.ep', ChecksumMode: 'ENABLED' });
      expect(s3.commandCalls(GetObjectCommand)).toHaveLength(0);
    } finally {
      s3.restore();
    }
  });

  it('ignores a multipart (composite) checksum and malformed values', () => {
    const b64 = createHash('sha256').update('x').digest('base64');
    expect(sha256OfChecksum(b64)).toBe(hex('x'));
    expect(sha256OfChecksum(b64, 'COMPOSITE')).toBeUndefined();
    expect(sha256OfChecksum(`${b64}-3`)).toBeUndefined();
    expect(sha256OfChecksum(hex('x'))).toBeUndefined();
    expect(sha256OfChecksum(undefined)).toBeUndefined();
  });
});
