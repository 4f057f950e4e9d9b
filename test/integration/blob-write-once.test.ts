// Packages and ERTS tarballs are written once: both blob stores refuse other bytes at an existing artifacts/ or erts/
// key (files: linked into place; S3: If-None-Match: *), take the same bytes again, and overwrite logs/ and index/.
import { DeleteObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '#adapters/blob/fs-blob-store.js';
import { S3BlobStore } from '#adapters/blob/s3-blob-store.js';
import { BlobExistsError } from '#core/errors.js';

const TAR = 'application/x-tar';

describe('FsBlobStore: write-once keys', () => {
  let dir: string;
  let blobs: FsBlobStore;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'enot-write-once-'));
    blobs = new FsBlobStore(join(dir, 'blobs'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('refuses other bytes at an existing artifact or ERTS key, and keeps the first', async () => {
    for (const key of ['artifacts/a.ep', 'erts/25/erts-13.1.tar']) {
      await blobs.put(key, 'first', TAR);
      await expect(blobs.put(key, 'second', TAR)).rejects.toBeInstanceOf(BlobExistsError);
      const file = join(dir, 'other.bin');
      await writeFile(file, 'third');
      await expect(blobs.putFile(key, file, TAR)).rejects.toBeInstanceOf(BlobExistsError);
      expect((await blobs.get(key))?.toString()).toBe('first');
    }
    // No temp file is left beside the refused writes.
    expect(await readdir(join(dir, 'blobs', 'artifacts'))).toEqual(['a.ep']);
  });

  it('takes the same bytes again (a retried write), from memory and from a file', async () => {
    await blobs.put('artifacts/same.ep', 'bytes', TAR);
    await expect(blobs.put('artifacts/same.ep', 'bytes', TAR)).resolves.toMatchObject({ size: 5 });
    const file = join(dir, 'same.bin');
    await writeFile(file, 'bytes');
    await expect(blobs.putFile('artifacts/same.ep', file, TAR)).resolves.toMatchObject({
      size: 5, sha256: createHash('sha256').update('bytes').digest('hex'),
    });
  });

  it('overwrites what is meant to be written again: logs, indexes, the ERTS index', async () => {
    for (const key of ['logs/b.log', 'index/25.txt', 'erts/index.jsonl']) {
      await blobs.put(key, 'one', 'text/plain');
      await blobs.put(key, 'two', 'text/plain');
      expect((await blobs.get(key))?.toString()).toBe('two');
    }
  });

  it('deletes idempotently, and a deleted key may be written again', async () => {
    await blobs.put('artifacts/gone.ep', 'x', TAR);
    await blobs.delete('artifacts/gone.ep');
    await blobs.delete('artifacts/gone.ep');
    expect(await blobs.get('artifacts/gone.ep')).toBeNull();
    await blobs.put('artifacts/gone.ep', 'y', TAR);
  });
});

describe('S3BlobStore: write-once keys (aws-sdk-client-mock)', () => {
  const s3 = mockClient(S3Client);
  const blobs = new S3BlobStore({ client: new S3Client({ region: 'us-east-1' }), bucket: 'b', presignTtlS: 60 });
  const preconditionFailed = () => new S3ServiceException({
    name: 'PreconditionFailed', $fault: 'client', $metadata: { httpStatusCode: 412 }, message: 'At least one of the pre-conditions you specified did not hold',
  });
  const checksumOf = (text: string) => createHash('sha256').update(text).digest('base64');

  it('sends If-None-Match: * for artifacts/ and erts/ keys only', async () => {
    s3.reset();
    s3.on(PutObjectCommand).resolves({});
    await blobs.put('artifacts/a.ep', 'x', TAR);
    await blobs.put('erts/25/erts-13.1.tar', 'x', TAR);
    await blobs.put('logs/a.log', 'x', 'text/plain');
    await blobs.put('erts/index.jsonl', 'x', 'text/plain');
    const sent = s3.commandCalls(PutObjectCommand).map((c) => [c.args[0].input.Key, c.args[0].input.IfNoneMatch]);
    expect(sent).toEqual([
      ['artifacts/a.ep', '*'], ['erts/25/erts-13.1.tar', '*'], ['logs/a.log', undefined], ['erts/index.jsonl', undefined],
    ]);
  });

  it('turns S3 refusing the conditional write into BlobExistsError, unless the object holds the same bytes', async () => {
    s3.reset();
    s3.on(PutObjectCommand).rejects(preconditionFailed());
    s3.on(HeadObjectCommand).resolves({ ChecksumSHA256: checksumOf('first'), ContentLength: 5, VersionId: 'v1', ETag: '"e"' });
    await expect(blobs.put('artifacts/a.ep', 'second', TAR)).rejects.toBeInstanceOf(BlobExistsError);
    await expect(blobs.put('artifacts/a.ep', 'first', TAR)).resolves.toMatchObject({ size: 5 });
  });

  it('deletes with DeleteObject', async () => {
    s3.reset();
    s3.on(DeleteObjectCommand).resolves({});
    await blobs.delete('logs/a.log');
    expect(s3.commandCalls(DeleteObjectCommand)[0].args[0].input).toEqual({ Bucket: 'b', Key: 'logs/a.log' });
  });
});
