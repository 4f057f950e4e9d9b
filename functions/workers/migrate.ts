// Deploy-time custom resource (CloudFormation -> custom-resources Provider -> here): applies the SQL
// migrations to Aurora through the Data API. Re-running is a no-op; the runner records what it applied.
import { loadConfig } from '#functions/config.js';
import { processLogger } from '#functions/log.js';
import {
  loadSchemaMigrations, migrationDataApiOf, openMigrationTarget, type DataApiOptions, type Migration,
} from '#functions/wiring.js';

/** The part of a CloudFormation custom resource event the Provider framework hands over that matters here. */
export interface MigrationEvent {
  RequestType: 'Create' | 'Update' | 'Delete';
  PhysicalResourceId?: string;
}

export interface MigrationResult {
  PhysicalResourceId: string;
  Data: { Applied: string; Known: string };
}

/** One schema per database: the id never changes, so an update never makes CloudFormation delete the old one. */
export const SCHEMA_RESOURCE_ID = 'enot-schema-migrations';

/**
 * Applies the migrations not yet recorded.
 * Input: the custom resource event; `deps` overrides where migrations and the database come from (tests).
 * Output: the names applied now and all names known, as the resource's attributes.
 * Primary course: Create/Update migrate; Delete leaves the schema alone (the data outlives the stack).
 */
export async function migrate(
  event: MigrationEvent,
  deps: { dataApi?: DataApiOptions; migrations?: Migration[] } = {},
): Promise<MigrationResult> {
  const migrations = deps.migrations ?? (await loadSchemaMigrations());
  const known = migrations.map((m) => m.name).join(',');
  if (event.RequestType === 'Delete') {
    return { PhysicalResourceId: event.PhysicalResourceId ?? SCHEMA_RESOURCE_ID, Data: { Applied: '', Known: known } };
  }
  const target = openMigrationTarget(deps.dataApi ?? migrationDataApiOf(loadConfig()));
  try {
    const applied = await target.apply(migrations);
    processLogger().info('migrations applied', { applied, known: migrations.length });
    return { PhysicalResourceId: SCHEMA_RESOURCE_ID, Data: { Applied: applied.join(','), Known: known } };
  } finally {
    await target.close();
  }
}

export const handler = (event: MigrationEvent): Promise<MigrationResult> => migrate(event);
