// The upload URLs a build gets on AWS, for real: S3BlobStore.presignPut against s3rver, with a SigV4 checker in front
// (s3rver checks no V4 signature itself), PUT by fetch as a build's publish step does. Nothing here is mocked.
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidBlobKeyError } from '#adapters/blob/blob-key.js';
import { S3_PRESIGN_MAX_S, S3BlobStore } from '#adapters/blob/s3-blob-store.js';
import { buildBlobKeys, OUTPUT_CONTENT_TYPES } from '#core/build-contract.js';
import { S3RVER_CREDENTIALS, type TestS3 } from '#support/s3rver.js';
import { startCheckedS3, type CheckedS3, type SigV4CheckingProxy } from '#support/sigv4-checking-proxy.js';

const EXPIRES_S = 3301;

describe('S3BlobStore.presignPut: presigned PUT URLs on s3rver behind a SigV4 checker', () => {
  let checked: CheckedS3;
  let s3: TestS3;
  let checker: SigV4CheckingProxy;
  let client: S3Client;
  let blobs: S3BlobStore;

  beforeAll(async () => {
    // The store signs for the checker's address, as the dispatcher signs for the bucket's.
    checked = await startCheckedS3();
    ({ s3, checker, client, blobs } = checked);
  });

  afterAll(() => checked?.close());


  const put = (url: string, body: Uint8Array | string, contentType: string) =>
    fetch(url, { method: 'PUT', body, headers: { 'content-type': contentType } });

  it('uploads a build\'s artifact with its content type, and get() returns the same bytes', async () => {
    const key = buildBlobKeys(randomUUID()).artifact;
    const bytes = randomBytes(64 * 1024 + 3);
    const url = await blobs.presignPut(key, OUTPUT_CONTENT_TYPES.artifact, EXPIRES_S);

    const answer = await put(url, bytes, OUTPUT_CONTENT_TYPES.artifact);
    expect(answer.status, await answer.text()).toBe(200);
    expect(await blobs.get(key)).toEqual(bytes);
    const head = await client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }));
    expect(head.ContentType).toBe(OUTPUT_CONTENT_TYPES.artifact);
  });

  it('names exactly its key, for the asked time, signs the content type and carries no checksum', async () => {
    const key = buildBlobKeys(randomUUID()).log;
    const url = new URL(await blobs.presignPut(key, OUTPUT_CONTENT_TYPES.log, EXPIRES_S));
    expect(url.pathname).toBe(`/${s3.bucket}/${key}`);
    expect(url.searchParams.get('X-Amz-Expires')).toBe(String(EXPIRES_S));
    expect(url.searchParams.get('X-Amz-SignedHeaders')?.split(';').sort()).toEqual(['content-type', 'host']);
    expect(url.searchParams.get('X-Amz-Credential')).toMatch(new RegExp(`^${S3RVER_CREDENTIALS.accessKeyId}/\\d{8}/us-east-1/s3/aws4_request$`));
    // A checksum signed without the body would be the empty body's: S3 would refuse every real upload through it.
    expect([...url.searchParams.keys()].filter((name) => /checksum/i.test(name))).toEqual([]);
  });

  it('refuses the same signature on another key (another build\'s artifact, an ERTS tarball) with 403', async () => {
    const mine = buildBlobKeys(randomUUID()).result;
    const url = await blobs.presignPut(mine, OUTPUT_CONTENT_TYPES.result, EXPIRES_S);
    const victim = buildBlobKeys(randomUUID()).artifact;
    await blobs.put(victim, 'the real package', OUTPUT_CONTENT_TYPES.artifact);

    for (const other of [victim, 'erts/25/erts-13.1.5.tar']) {
      const forged = url.replace(`/${mine}?`, `/${other}?`);
      expect(forged).not.toBe(url);
      const answer = await put(forged, 'evil', OUTPUT_CONTENT_TYPES.artifact);
      expect(answer.status, other).toBe(403);
      expect(await answer.text()).toContain('SignatureDoesNotMatch');
    }
    expect((await blobs.get(victim))?.toString()).toBe('the real package');
    expect(await blobs.get('erts/25/erts-13.1.5.tar')).toBeNull();
    expect(await blobs.get(mine)).toBeNull();
  });

  it('refuses another content type, and an expired URL, with 403', async () => {
    const key = buildBlobKeys(randomUUID()).result;
    const url = await blobs.presignPut(key, OUTPUT_CONTENT_TYPES.result, EXPIRES_S);
    expect((await put(url, '{}', 'text/html')).status).toBe(403);

    const realNow = checker.now;
    checker.now = () => realNow() + (EXPIRES_S + 1) * 1000;
    try {
      const answer = await put(url, '{}', OUTPUT_CONTENT_TYPES.result);
      expect(answer.status).toBe(403);
      expect(await answer.text()).toContain('request has expired');
    } finally {
      checker.now = realNow;
    }
    expect(await blobs.get(key)).toBeNull();
    // The same URL, in time and with its type, works: the refusals were about the type and the time.
    expect((await put(url, '{}', OUTPUT_CONTENT_TYPES.result)).status).toBe(200);
    expect((await blobs.get(key))?.toString()).toBe('{}');
  });

  it('refuses a bad key and a lifetime S3 would not accept, without signing', async () => {
    await expect(blobs.presignPut('../artifacts/x.ep', OUTPUT_CONTENT_TYPES.artifact, EXPIRES_S)).rejects.toBeInstanceOf(InvalidBlobKeyError);
    for (const expires of [0, -1, 1.5, S3_PRESIGN_MAX_S + 1]) {
      await expect(blobs.presignPut('artifacts/x.ep', OUTPUT_CONTENT_TYPES.artifact, expires), String(expires)).rejects.toThrow(RangeError);
    }
    const longest = new URL(await blobs.presignPut('artifacts/x.ep', OUTPUT_CONTENT_TYPES.artifact, S3_PRESIGN_MAX_S));
    expect(longest.searchParams.get('X-Amz-Expires')).toBe(String(S3_PRESIGN_MAX_S));
  });
});
