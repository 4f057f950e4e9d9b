// Throwaway Postgres databases for tests, so suites running in parallel never share tables.
import pg from 'pg';
import type { Store } from '#core/ports.js';
import { openPgliteStore, openPgStore } from '#adapters/postgres/open-store.js';
import { randomBytes } from 'node:crypto';

/** The server CI and developers point tests at; unset means "PGlite only". */
export const TEST_DATABASE_URL = process.env.DATABASE_URL;

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/** Creates an empty database on the TEST_DATABASE_URL server; `drop()` removes it. */
export async function createTestDatabase(): Promise<TestDatabase> {
  if (!TEST_DATABASE_URL) throw new Error('DATABASE_URL is not set');
  const name = `enot_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/**
 * The store an end-to-end suite runs on: a migrated throwaway database on the Postgres server when
 * DATABASE_URL is set (CI), else in-memory PGlite. `close()` closes it and drops the database.
 */
export async function openTestStore(): Promise<{ store: Store; close(): Promise<void> }> {
  if (!TEST_DATABASE_URL) {
    const store = await openPgliteStore();
    return { store, close: () => store.close() };
  }
  const db = await createTestDatabase();
  const store = await openPgStore(db.url);
  return {
    store,
    async close() {
      await store.close();
      await db.drop();
    },
  };
}
