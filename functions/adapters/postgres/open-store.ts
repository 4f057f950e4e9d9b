// Opens the Store for a runtime: the Data API in AWS, else pg against DATABASE_URL, else PGlite in the data dir.
import { join } from 'node:path';
import type { Config } from '#functions/config.js';
import type { Store } from '#core/ports.js';
import type { DataApiOptions } from './data-api-client.js';
import { runMigrations, type Migration } from './migrations.js';
import type { SqlClient } from './sql-client.js';
import { SqlStore } from './sql-store.js';
import { dataApiUnavailable, pgliteUnavailable, pgUnavailable, reportingUnavailable } from './unavailable.js';

export { runMigrations, loadMigrations, type Migration } from './migrations.js';
export type { DataApiOptions } from './data-api-client.js';
export { SqlStore } from './sql-store.js';

/**
 * The Store the config asks for. In AWS the schema is migrated at deploy time, so opening
 * never migrates there; the local drivers migrate on open.
 */
export async function openStore(config: Config): Promise<Store> {
  if (config.runtime === 'aws') {
    const { dbClusterArn, dbSecretArn, dbName, region, rdsDataEndpoint } = config.aws;
    if (!dbClusterArn || !dbSecretArn) {
      throw new Error('ENOT_DB_CLUSTER_ARN and ENOT_DB_SECRET_ARN are required in the aws runtime');
    }
    return openDataApiStore({
      resourceArn: dbClusterArn,
      secretArn: dbSecretArn,
      database: dbName,
      region,
      endpoint: rdsDataEndpoint,
      migrate: false,
    });
  }
  if (config.databaseUrl) return openPgStore(config.databaseUrl);
  return openPgliteStore(join(config.dataDir, 'pglite'));
}

/** A Store over pg against `url`, migrated. */
export async function openPgStore(url: string): Promise<SqlStore> {
  // Imported on demand so a Lambda bundle can leave out the drivers it never opens.
  const { createPgClient } = await import('./pg-client.js');
  return openMigrated(reportingUnavailable(createPgClient(url), pgUnavailable), true);
}

/**
 * A Store over PGlite in `dir`, or in memory when undefined, migrated. Call close() or the process stays up.
 * Throws DataDirectoryInUseError, having touched nothing, when another live process has `dir` open.
 */
export async function openPgliteStore(dir?: string): Promise<SqlStore> {
  const { createPgliteClient } = await import('./pglite-client.js');
  return openMigrated(reportingUnavailable(await createPgliteClient(dir), pgliteUnavailable), true);
}

/** A Store over the RDS Data API, migrated unless `migrate` is false. */
export async function openDataApiStore(
  options: DataApiOptions & { migrate?: boolean; migrations?: Migration[] },
): Promise<SqlStore> {
  const { createDataApiClient } = await import('./data-api-client.js');
  return openMigrated(reportingUnavailable(createDataApiClient(options), dataApiUnavailable), options.migrate ?? true, options.migrations);
}

async function openMigrated(client: SqlClient, migrate: boolean, migrations?: Migration[]): Promise<SqlStore> {
  try {
    if (migrate) await runMigrations(client, migrations);
  } catch (error) {
    await client.close();
    throw error;
  }
  return new SqlStore(client);
}
