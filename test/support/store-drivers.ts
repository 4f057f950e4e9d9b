// The Store's drivers for suites that run on each: PGlite always; pg and the Data API (through the test server)
// on throwaway databases of the DATABASE_URL server. `open` gives a migrated Store, `openBare` an empty database;
// `useCaseDriver` is the one driver for suites that test a use case rather than the drivers.
import { RDSDataClient } from '@aws-sdk/client-rds-data';
import { runMigrations, SqlStore } from '#adapters/postgres/open-store.js';
import { createDataApiClient } from '#adapters/postgres/data-api-client.js';
import { createPgClient } from '#adapters/postgres/pg-client.js';
import { createPgliteClient } from '#adapters/postgres/pglite-client.js';
import type { SqlClient } from '#adapters/postgres/sql-client.js';
import { createTestDatabase, TEST_DATABASE_URL } from './databases.js';
import { startDataApiServer } from './data-api-server.js';

export interface Harness {
  store: SqlStore;
  close(): Promise<void>;
}

export type OpenHarness = () => Promise<Harness>;

/** A driver on an empty database, nothing migrated: for tests that migrate in steps. */
export interface BareHarness {
  client: SqlClient;
  close(): Promise<void>;
}

export type OpenBare = () => Promise<BareHarness>;

const openPgliteBare: OpenBare = async () => {
  const client = await createPgliteClient();
  return { client, close: () => client.close() };
};

const openPgBare: OpenBare = async () => {
  const db = await createTestDatabase();
  const client = createPgClient(db.url);
  return {
    client,
    async close() {
      await client.close();
      await db.drop();
    },
  };
};

const openDataApiBare: OpenBare = async () => {
  const db = await createTestDatabase();
  const server = await startDataApiServer(db.url);
  const rds = new RDSDataClient({
    endpoint: server.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  const client = createDataApiClient({
    resourceArn: 'arn:aws:rds:us-east-1:123456789012:cluster:enot',
    secretArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:enot-db',
    database: 'enot',
    client: rds,
  });
  return {
    client,
    async close() {
      await client.close();
      rds.destroy();
      await server.close();
      await db.drop();
    },
  };
};

/** A driver's bare harness, migrated, under the Store: what the open*Store factories do. */
const migrated = (openBare: OpenBare): OpenHarness => async () => {
  const bare = await openBare();
  try {
    await runMigrations(bare.client);
  } catch (e) {
    await bare.close();
    throw e;
  }
  return { store: new SqlStore(bare.client), close: bare.close };
};
const openPglite = migrated(openPgliteBare);
const openPg = migrated(openPgBare);
const openDataApi = migrated(openDataApiBare);

/** `concurrent`: two transactions can run at once (PGlite runs one at a time). */
export const drivers: { driver: string; available: boolean; open: OpenHarness; openBare: OpenBare; concurrent: boolean }[] = [
  { driver: 'PGlite', available: true, open: openPglite, openBare: openPgliteBare, concurrent: false },
  { driver: 'pg', available: Boolean(TEST_DATABASE_URL), open: openPg, openBare: openPgBare, concurrent: true },
  { driver: 'Data API', available: Boolean(TEST_DATABASE_URL), open: openDataApi, openBare: openDataApiBare, concurrent: true },
];

/**
 * The driver a use-case suite runs on: the store suites already prove every driver answers alike, so a use case
 * needs only one. pg when DATABASE_URL is set (CI always sets it): its transactions really run at once, as on
 * Aurora, so the "many requests at once" cases race for real, and it opens in about a second where PGlite boots
 * for several. PGlite otherwise. The same choice as openTestStore's.
 */
export const useCaseDriver = drivers.find((d) => d.driver === 'pg' && d.available) ?? drivers[0];
