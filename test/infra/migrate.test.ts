// The deploy-time migration: functions/workers/migrate.ts on the Data API test server over a real Postgres,
// first as a module, then as the bundle `cdk synth` makes (its migrations copied beside it).
import { RDSDataClient } from '@aws-sdk/client-rds-data';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { App } from 'aws-cdk-lib';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadMigrations } from '#adapters/postgres/migrations.js';
import { migrate, SCHEMA_RESOURCE_ID } from '#functions/workers/migrate.js';
import { startDataApiServer } from '#support/data-api-server.js';
import { createTestDatabase, TEST_DATABASE_URL } from '#support/databases.js';
import { defineApp, STATEFUL_STACK_NAME } from '../../infra/define-app.js';
import { PROJECT_ROOT } from '../../infra/paths.js';

const CLUSTER_ARN = 'arn:aws:rds:eu-west-1:123456789012:cluster:enot';
const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:enot-db-AbCdEf';

/** A throwaway database behind its own Data API server (the server ignores the request's database name). */
async function dataApiDatabase() {
  const db = await createTestDatabase();
  const server = await startDataApiServer(db.url);
  return {
    db,
    server,
    async appliedNames(): Promise<string[]> {
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      try {
        const { rows } = await client.query<{ name: string }>('SELECT name FROM schema_migrations ORDER BY name');
        return rows.map((r) => r.name);
      } finally {
        await client.end();
      }
    },
    async close() {
      await server.close();
      await db.drop();
    },
  };
}

describe.skipIf(!TEST_DATABASE_URL)('the migration custom resource handler', () => {
  let target: Awaited<ReturnType<typeof dataApiDatabase>>;
  let rds: RDSDataClient;
  let known: string[];
  const dataApi = () => ({ resourceArn: CLUSTER_ARN, secretArn: SECRET_ARN, database: 'enot', client: rds });

  beforeAll(async () => {
    target = await dataApiDatabase();
    rds = new RDSDataClient({
      endpoint: target.server.endpoint, region: 'eu-west-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    known = (await loadMigrations()).map((m) => m.name);
  });

  afterAll(async () => {
    rds?.destroy();
    await target?.close();
  });

  it('applies every migration on Create and records each', async () => {
    const result = await migrate({ RequestType: 'Create' }, { dataApi: dataApi() });
    expect(result).toEqual({ PhysicalResourceId: SCHEMA_RESOURCE_ID, Data: { Applied: known.join(','), Known: known.join(',') } });
    expect(await target.appliedNames()).toEqual(known);
  });

  it('applies nothing when an Update brings nothing new', async () => {
    const result = await migrate({ RequestType: 'Update', PhysicalResourceId: SCHEMA_RESOURCE_ID }, { dataApi: dataApi() });
    expect(result.Data.Applied).toBe('');
    expect(result.PhysicalResourceId).toBe(SCHEMA_RESOURCE_ID);
  });

  it('applies only the new migration when an Update brings one', async () => {
    const migrations = [...(await loadMigrations()), { name: '999_probe.sql', sql: 'CREATE TABLE migrate_probe (id int);\n' }];
    const result = await migrate({ RequestType: 'Update', PhysicalResourceId: SCHEMA_RESOURCE_ID }, { dataApi: dataApi(), migrations });
    expect(result.Data.Applied).toBe('999_probe.sql');
    expect(await target.appliedNames()).toEqual([...known, '999_probe.sql']);
  });

  it('leaves the schema alone on Delete, keeping the physical id', async () => {
    const result = await migrate({ RequestType: 'Delete', PhysicalResourceId: SCHEMA_RESOURCE_ID }, { dataApi: dataApi() });
    expect(result.PhysicalResourceId).toBe(SCHEMA_RESOURCE_ID);
    expect(result.Data.Applied).toBe('');
    expect(await target.appliedNames()).toEqual([...known, '999_probe.sql']);
  });
});

describe.skipIf(!TEST_DATABASE_URL)('the bundled migration function', () => {
  let scratch: string;
  let target: Awaited<ReturnType<typeof dataApiDatabase>>;
  let bundle: string;

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'enot-migrate-bundle-'));
    target = await dataApiDatabase();
    // Bundle the stateful stack for real (its only bundled function is the migration), the service stack not.
    const outdir = join(scratch, 'cdk.out');
    const app = new App({ outdir, context: { 'aws:cdk:bundling-stacks': [STATEFUL_STACK_NAME] } });
    defineApp(app);
    app.synth();
    const template = JSON.parse(readFileSync(join(outdir, `${STATEFUL_STACK_NAME}.template.json`), 'utf8')) as {
      Resources: Record<string, { Type: string; Properties: { Description?: string; Code?: { S3Key: string } } }>;
    };
    const fn = Object.values(template.Resources).find((r) => r.Type === 'AWS::Lambda::Function'
      && String(r.Properties.Description).startsWith('Applies the SQL migrations'))!;
    bundle = join(outdir, `asset.${fn.Properties.Code!.S3Key.replace(/\.zip$/, '')}`, 'index.mjs');
    // The SDK is left out of the bundle (the Lambda runtime has it); here it comes from the project.
    symlinkSync(join(PROJECT_ROOT, 'node_modules'), join(outdir, 'node_modules'), 'dir');
  }, 120_000);

  afterAll(async () => {
    await target?.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('migrates from the migrations shipped beside it, configured as the stack configures it', async () => {
    const script = 'const m = await import(process.env.BUNDLE_URL); ' +
      "console.log('RESULT ' + JSON.stringify(await m.handler({ RequestType: 'Create' })));";
    // Asynchronously: the Data API test server answering the child runs in this process.
    const run = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
      cwd: scratch,
      encoding: 'utf8',
      timeout: 60_000,
      env: {
        PATH: process.env.PATH,
        BUNDLE_URL: pathToFileURL(bundle).href,
        ENOT_RUNTIME: 'aws',
        ENOT_DB_CLUSTER_ARN: CLUSTER_ARN,
        ENOT_DB_SECRET_ARN: SECRET_ARN,
        ENOT_DB_NAME: 'enot',
        ENOT_RDS_DATA_ENDPOINT: target.server.endpoint,
        AWS_REGION: 'eu-west-1',
        AWS_ACCESS_KEY_ID: 'test',
        AWS_SECRET_ACCESS_KEY: 'test',
      },
    });
    const line = run.stdout.split('\n').find((l) => l.startsWith('RESULT '));
    expect(line, `${run.stdout}\n${run.stderr}`).toBeDefined();
    const known = (await loadMigrations()).map((m) => m.name);
    expect(JSON.parse(line!.slice('RESULT '.length))).toEqual({
      PhysicalResourceId: SCHEMA_RESOURCE_ID, Data: { Applied: known.join(','), Known: known.join(',') },
    });
    expect(await target.appliedNames()).toEqual(known);
  });
});
