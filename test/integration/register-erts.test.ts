// ERTS on AWS: the end of a publish-erts build (a recorded CodeBuild event) registers the index it uploaded.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { FsBlobStore } from '#adapters/blob/fs-blob-store.js';
import { parseBuildStateChange } from '#functions/workers/codebuild-state-change.js';
import { ERTS_INDEX_KEY } from '#core/build-contract.js';
import { registerPublishedErts } from '#core/register-erts.js';
import type { Store } from '#core/ports.js';
import { openTestStore } from '#support/databases.js';

const quietLog = { info() {}, warn() {}, error() {} };
const FIXTURES = fileURLToPath(new URL('../support/fixtures/codebuild/', import.meta.url));

async function fixture(name: string): Promise<unknown> {
  const text = await readFile(join(FIXTURES, `${name}.json`), 'utf8');
  const values: Record<string, string> = {
    eventId: 'e0e0e0e0-0000-4000-8000-000000000000', time: '2026-11-20T10:00:00Z',
    codeBuildUuid: 'c0c0c0c0-0000-4000-8000-000000000000', buildId: 'b0b0b0b0-0000-4000-8000-000000000000',
  };
  return JSON.parse(text.replace(/\{\{(\w+)\}\}/g, (_, key: string) => values[key]));
}

describe('registering the ERTS a publish-erts build uploaded', () => {
  let dir: string;
  let blobs: FsBlobStore;
  let store: Store;
  let close: () => Promise<void>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'enot-erts-'));
    blobs = new FsBlobStore(dir);
    ({ store, close } = await openTestStore());
  });
  afterAll(async () => {
    await close();
    await rm(dir, { recursive: true, force: true });
  });

  async function publish(release: string, ertsVersion: string, body: string) {
    const key = `erts/${release}/erts-${ertsVersion}.tar`;
    await blobs.put(key, body, 'application/x-tar');
    const sha256 = createHash('sha256').update(body).digest('hex');
    return JSON.stringify({ release, ertsVersion, otpVersion: `${release}.0`, key, size: body.length, sha256 });
  }

  it('reads the recorded event of a successful publish-erts build as that, not as a package build', async () => {
    expect(parseBuildStateChange(await fixture('erts-published'))).toMatchObject({ kind: 'erts-published' });
    expect(parseBuildStateChange(await fixture('succeeded'))).toMatchObject({ kind: 'ended' });
  });

  it('records every release of the index, so /download_erts finds it', async () => {
    const lines = [await publish('25', '13.2.2', 'erts 25'), await publish('26', '14.2.5', 'erts 26')];
    await blobs.put(ERTS_INDEX_KEY, lines.join('\n') + '\n', 'application/x-ndjson');
    const recorded = await registerPublishedErts({ store, blobs, config: { arch: 'amd64' }, log: quietLog });
    expect(recorded.map((e) => e.release)).toEqual(['25', '26']);
    expect(await store.getErts('26')).toMatchObject({ ertsVersion: '14.2.5', key: 'erts/26/erts-14.2.5.tar', size: 7 });
  });

  it('records the good lines and then fails, naming a tarball the index lists but the upload lacks', async () => {
    const good = await publish('27', '15.2', 'erts 27');
    const missing = JSON.stringify({ release: '28', ertsVersion: '16.0', key: 'erts/28/erts-16.0.tar', size: 1, sha256: 'a'.repeat(64) });
    await blobs.put(ERTS_INDEX_KEY, `${good}\n${missing}\nnot json\n`, 'application/x-ndjson');
    await expect(registerPublishedErts({ store, blobs, config: { arch: 'amd64' }, log: quietLog })).rejects.toThrow(/erts\/28\/erts-16\.0\.tar.*not uploaded.*line 3 is not JSON/);
    expect(await store.getErts('27')).not.toBeNull();
    expect(await store.getErts('28')).toBeNull();
  });
});
