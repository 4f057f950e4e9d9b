// openStore picks the driver from the config: PGlite in the data dir, pg with DATABASE_URL, the Data API in AWS.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { Repository } from '#core/model.js';
import { loadConfig } from '#functions/config.js';
import { loadMigrations, openStore, runMigrations, SqlStore } from '#adapters/postgres/open-store.js';
import { createTestDatabase, TEST_DATABASE_URL } from '#support/databases.js';
import { startDataApiServer } from '#support/data-api-server.js';

describe('openStore', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('opens a migrated PGlite under <dataDir>/pglite when no DATABASE_URL is set, and keeps its data', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'enot-store-open-'));
    try {
      const config = loadConfig({ ENOT_DATA_DIR: dataDir });
      let store = await openStore(config);
      let first: Repository | undefined;
      try {
        first = await store.upsertRepository({ namespace: 'alice', name: 'cowboy', cloneUrl: 'https://github.com/alice/cowboy' });
      } finally {
        await store.close();
      }
      expect(existsSync(join(dataDir, 'pglite', 'PG_VERSION'))).toBe(true);

      store = await openStore(config);
      try {
        const again = await store.upsertRepository({ namespace: 'alice', name: 'cowboy', cloneUrl: 'https://other.example/x' });
        expect(again).toEqual(first);
      } finally {
        await store.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it.skipIf(!TEST_DATABASE_URL)('opens a migrated pg store when DATABASE_URL is set', async () => {
    const db = await createTestDatabase();
    try {
      const store = await openStore(loadConfig({ DATABASE_URL: db.url, ENOT_DATA_DIR: join(tmpdir(), 'enot-unused') }));
      try {
        expect(await store.countBuildsByStatus()).toEqual({ queued: 0, starting: 0, running: 0, succeeded: 0, failed: 0 });
      } finally {
        await store.close();
      }
      const check = new pg.Client({ connectionString: db.url });
      await check.connect();
      try {
        const { rows } = await check.query('SELECT name FROM schema_migrations');
        expect(rows.map((r) => r.name)).toContain('001_init.sql');
      } finally {
        await check.end();
      }
    } finally {
      await db.drop();
    }
  });

  it.skipIf(!TEST_DATABASE_URL)('opens the Data API in the aws runtime and leaves migrating to deploy time', async () => {
    const db = await createTestDatabase();
    const server = await startDataApiServer(db.url);
    try {
      vi.stubEnv('AWS_ACCESS_KEY_ID', 'test');
      vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test');
      const store = await openStore(loadConfig({
        ENOT_RUNTIME: 'aws',
        ENOT_DB_CLUSTER_ARN: 'arn:aws:rds:us-east-1:123456789012:cluster:enot',
        ENOT_DB_SECRET_ARN: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:enot-db',
        ENOT_RDS_DATA_ENDPOINT: server.endpoint,
        AWS_REGION: 'us-east-1',
      }));
      try {
        await expect(store.countBuildsByStatus()).rejects.toThrow(/builds/);
        expect(store).toBeInstanceOf(SqlStore);
        // What the deploy-time migration does: the same runner, through the Data API.
        const all = (await loadMigrations()).map((m) => m.name);
        expect(await runMigrations((store as SqlStore).client)).toEqual(all);
        expect(await store.countBuildsByStatus()).toEqual({ queued: 0, starting: 0, running: 0, succeeded: 0, failed: 0 });
      } finally {
        await store.close();
      }
    } finally {
      await server.close();
      await db.drop();
    }
  });

  it('refuses the aws runtime without the cluster and secret ARNs', async () => {
    await expect(openStore(loadConfig({ ENOT_RUNTIME: 'aws' }))).rejects.toThrow(/ENOT_DB_CLUSTER_ARN/);
  });
});
