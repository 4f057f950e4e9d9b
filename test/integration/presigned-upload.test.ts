// The upload forms a build gets on AWS, for real: S3BlobStore.presignPost against s3rver, behind a checker that does
// what s3rver does not (the POST policy's SigV4 signature, its conditions and expiry, the body against
// x-amz-checksum-sha256, the checksum kept with the object), POSTed by fetch as a build's publish step does.
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidBlobKeyError } from '#adapters/blob/blob-key.js';
import { S3_PRESIGN_MAX_S, S3_SINGLE_UPLOAD_MAX_BYTES, S3BlobStore } from '#adapters/blob/s3-blob-store.js';
import { buildBlobKeys, OUTPUT_CONTENT_TYPES, UPLOAD_CHECKSUM_FIELD, type UploadForm } from '#core/build-contract.js';
import { S3RVER_CREDENTIALS, type TestS3 } from '#support/s3rver.js';
import { startCheckedS3, type CheckedS3, type SigV4CheckingProxy } from '#support/sigv4-checking-proxy.js';

const EXPIRES_S = 3301;
const MAX_BYTES = 1024 * 1024;

const sha256 = (bytes: Uint8Array | string) => createHash('sha256').update(bytes).digest();

/** POSTs `body` through `form` as publish does: the fields, the checksum (the body's own unless given), the file last. */
function post(
  form: UploadForm, body: Uint8Array | string,
  options: { checksum?: string | null; fields?: Record<string, string> } = {},
): Promise<Response> {
  const data = new FormData();
  for (const [name, value] of Object.entries({ ...form.fields, ...options.fields })) data.append(name, value);
  const checksum = options.checksum === undefined ? sha256(body).toString('base64') : options.checksum;
  if (checksum !== null) data.append(UPLOAD_CHECKSUM_FIELD, checksum);
  data.append('file', new Blob([body]), 'upload');
  return fetch(form.url, { method: 'POST', body: data });
}

/** The policy the form carries, decoded. */
function policyOf(form: UploadForm): { expiration: string; conditions: unknown[] } {
  return JSON.parse(Buffer.from(form.fields.Policy, 'base64').toString('utf8')) as { expiration: string; conditions: unknown[] };
}

describe('S3BlobStore.presignPost: presigned POST forms with a required SHA-256, on s3rver behind a checker', () => {
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

  it('stores a build\'s artifact with its content type and checksum: HeadObject and digest() give that checksum', async () => {
    const key = buildBlobKeys(randomUUID()).artifact;
    const bytes = randomBytes(64 * 1024 + 3);
    const form = await blobs.presignPost(key, OUTPUT_CONTENT_TYPES.artifact, EXPIRES_S, MAX_BYTES);

    const answer = await post(form, bytes);
    expect(answer.status, await answer.text()).toBe(204);
    expect(await blobs.get(key)).toEqual(bytes);
    const head = await client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key, ChecksumMode: 'ENABLED' }));
    expect(head.ContentType).toBe(OUTPUT_CONTENT_TYPES.artifact);
    expect(head.ChecksumSHA256).toBe(sha256(bytes).toString('base64'));
    const digest = await blobs.digest(key);
    expect(digest).toMatchObject({ sha256: sha256(bytes).toString('hex'), size: bytes.length });
  });

  it('refuses a body that does not match its checksum (BadDigest), and a POST without a checksum, storing nothing', async () => {
    const key = buildBlobKeys(randomUUID()).artifact;
    const form = await blobs.presignPost(key, OUTPUT_CONTENT_TYPES.artifact, EXPIRES_S, MAX_BYTES);

    const corrupted = await post(form, 'the bytes that arrived', { checksum: sha256('the bytes the build made').toString('base64') });
    expect(corrupted.status).toBe(400);
    expect(await corrupted.text()).toContain('BadDigest');
    const unchecked = await post(form, 'no checksum', { checksum: null });
    expect(unchecked.status).toBe(403);
    expect(await unchecked.text()).toContain(`$${UPLOAD_CHECKSUM_FIELD}`);
    expect(await blobs.get(key)).toBeNull();
    // The same form with the body's own checksum works: the refusals were about the checksum.
    expect((await post(form, 'the bytes the build made')).status).toBe(204);
    expect((await blobs.get(key))?.toString()).toBe('the bytes the build made');
  });

  it('signs exactly its key, type, size range, expiry and the checksum requirement into the policy', async () => {
    const key = buildBlobKeys(randomUUID()).log;
    const before = Date.now();
    const form = await blobs.presignPost(key, OUTPUT_CONTENT_TYPES.log, EXPIRES_S, MAX_BYTES);
    expect(form.url).toBe(`${checker.endpoint}/${s3.bucket}`);
    expect(form.fields).toMatchObject({
      key, 'Content-Type': OUTPUT_CONTENT_TYPES.log, 'x-amz-checksum-algorithm': 'SHA256', 'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
    });
    expect(form.fields['X-Amz-Credential']).toMatch(new RegExp(`^${S3RVER_CREDENTIALS.accessKeyId}/\\d{8}/us-east-1/s3/aws4_request$`));
    const policy = policyOf(form);
    expect(policy.conditions).toEqual(expect.arrayContaining([
      ['eq', '$key', key],
      ['eq', '$Content-Type', OUTPUT_CONTENT_TYPES.log],
      ['content-length-range', 0, MAX_BYTES],
      ['starts-with', `$${UPLOAD_CHECKSUM_FIELD}`, ''],
    ]));
    const expiresAt = Date.parse(policy.expiration);
    expect(expiresAt).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + EXPIRES_S * 1000);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + EXPIRES_S * 1000);
  });

  it('refuses the same form for another key (another build\'s artifact, an ERTS tarball) with 403', async () => {
    const mine = buildBlobKeys(randomUUID()).result;
    const form = await blobs.presignPost(mine, OUTPUT_CONTENT_TYPES.result, EXPIRES_S, MAX_BYTES);
    const victim = buildBlobKeys(randomUUID()).artifact;
    await blobs.put(victim, 'the real package', OUTPUT_CONTENT_TYPES.artifact);

    for (const other of [victim, 'erts/25/erts-13.1.5.tar']) {
      const answer = await post(form, 'evil', { fields: { key: other } });
      expect(answer.status, other).toBe(403);
      expect(await answer.text()).toContain('Policy Condition failed');
    }
    expect((await blobs.get(victim))?.toString()).toBe('the real package');
    expect(await blobs.get('erts/25/erts-13.1.5.tar')).toBeNull();
    expect(await blobs.get(mine)).toBeNull();
  });

  it('refuses another content type, a body over the size range, a tampered policy, and an expired form', async () => {
    const key = buildBlobKeys(randomUUID()).result;
    const form = await blobs.presignPost(key, OUTPUT_CONTENT_TYPES.result, EXPIRES_S, 16);
    const html = await post(form, '{}', { fields: { 'Content-Type': 'text/html' } });
    expect(html.status).toBe(403);
    expect(await html.text()).toContain('Policy Condition failed');
    const large = await post(form, '{"too":"large for it"}');
    expect(large.status).toBe(400);
    expect(await large.text()).toContain('EntityTooLarge');

    // A policy rewritten to allow any key no longer matches its signature.
    const policy = policyOf(form);
    const loosened = { ...policy, conditions: policy.conditions.filter((c) => !/"\$?key"/.test(JSON.stringify(c))) };
    expect(loosened.conditions.length).toBe(policy.conditions.length - 2);
    const tampered = await post(form, '{}', { fields: { key: 'logs/other.result.json', Policy: Buffer.from(JSON.stringify(loosened)).toString('base64') } });
    expect(tampered.status).toBe(403);
    expect(await tampered.text()).toContain('SignatureDoesNotMatch');

    const realNow = checker.now;
    checker.now = () => realNow() + (EXPIRES_S + 1) * 1000;
    try {
      const answer = await post(form, '{}');
      expect(answer.status).toBe(403);
      expect(await answer.text()).toContain('Policy expired');
    } finally {
      checker.now = realNow;
    }
    expect(await blobs.get(key)).toBeNull();
    expect(await blobs.get('logs/other.result.json')).toBeNull();
    // The same form, in time, with its type and size, works: each refusal was about what it named.
    expect((await post(form, '{}')).status).toBe(204);
    expect((await blobs.get(key))?.toString()).toBe('{}');
  });

  it('refuses a bad key, a lifetime S3 would not accept and a size past S3\'s limit, without signing', async () => {
    await expect(blobs.presignPost('../artifacts/x.ep', OUTPUT_CONTENT_TYPES.artifact, EXPIRES_S, MAX_BYTES)).rejects.toBeInstanceOf(InvalidBlobKeyError);
    for (const expires of [0, -1, 1.5, S3_PRESIGN_MAX_S + 1]) {
      await expect(blobs.presignPost('artifacts/x.ep', OUTPUT_CONTENT_TYPES.artifact, expires, MAX_BYTES), String(expires)).rejects.toThrow(RangeError);
    }
    for (const size of [-1, 0.5, S3_SINGLE_UPLOAD_MAX_BYTES + 1]) {
      await expect(blobs.presignPost('artifacts/x.ep', OUTPUT_CONTENT_TYPES.artifact, EXPIRES_S, size), String(size)).rejects.toThrow(RangeError);
    }
    const longest = await blobs.presignPost('artifacts/x.ep', OUTPUT_CONTENT_TYPES.artifact, S3_PRESIGN_MAX_S, S3_SINGLE_UPLOAD_MAX_BYTES);
    expect(Date.parse(policyOf(longest).expiration) - Date.now()).toBeGreaterThan((S3_PRESIGN_MAX_S - 60) * 1000);
  });
});
