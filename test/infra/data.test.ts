// The stateful stack: a locked-down bucket, Aurora behind the Data API, rotated credentials, migrations on deploy.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadMigrations } from '#adapters/postgres/migrations.js';
import { migrationFingerprint } from '../../infra/constructs/database.js';
import { actionsOf, functionLogicalId, policyOfFunction, resourcesOf, synthApp } from './app-fixture.js';

let template: Template;
let serviceTemplate: Template;

beforeAll(() => {
  const app = synthApp();
  template = app.dataTemplate;
  serviceTemplate = app.serviceTemplate;
});

describe('the bucket', () => {
  it('blocks all public access, encrypts, versions and is retained', () => {
    const buckets = resourcesOf(template, 'AWS::S3::Bucket');
    expect(Object.keys(buckets)).toHaveLength(1);
    const [bucket] = Object.values(buckets);
    expect(bucket.Properties).toMatchObject({
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true,
      },
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      VersioningConfiguration: { Status: 'Enabled' },
    });
    expect(bucket.DeletionPolicy).toBe('Retain');
    expect(bucket.UpdateReplacePolicy).toBe('Retain');
  });

  it('denies every request that does not use TLS', () => {
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Principal: { AWS: '*' },
            Action: 's3:*',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      },
    });
  });

  it('expires old versions and build logs', () => {
    const [bucket] = Object.values(resourcesOf(template, 'AWS::S3::Bucket'));
    const rules = bucket.Properties!.LifecycleConfiguration.Rules as Record<string, unknown>[];
    expect(rules).toEqual(expect.arrayContaining([
      expect.objectContaining({ NoncurrentVersionExpiration: { NoncurrentDays: 180 }, Status: 'Enabled' }),
      expect.objectContaining({ Prefix: 'logs/', ExpirationInDays: 180, Status: 'Enabled' }),
    ]));
  });

  it('logs server access into a second bucket when asked', () => {
    const { dataTemplate } = synthApp({ bucketAccessLogs: true });
    dataTemplate.resourceCountIs('AWS::S3::Bucket', 2);
    dataTemplate.hasResourceProperties('AWS::S3::Bucket', {
      LoggingConfiguration: { DestinationBucketName: Match.anyValue(), LogFilePrefix: 'artifacts-bucket/' },
    });
    // Delivery by bucket policy: ACLs stay disabled on both buckets.
    for (const bucket of Object.values(resourcesOf(dataTemplate, 'AWS::S3::Bucket'))) {
      expect(bucket.Properties!.OwnershipControls).toEqual({ Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] });
      expect(bucket.Properties!.AccessControl).toBeUndefined();
    }
    dataTemplate.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Allow', Principal: { Service: 'logging.s3.amazonaws.com' }, Action: 's3:PutObject' }),
        ]),
      },
    });
  });
});

describe('the database', () => {
  it('is Aurora Serverless v2 PostgreSQL 16 with the Data API, encrypted, protected and backed up', () => {
    const [cluster] = Object.values(resourcesOf(template, 'AWS::RDS::DBCluster'));
    expect(cluster.Properties).toMatchObject({
      Engine: 'aurora-postgresql',
      EnableHttpEndpoint: true,
      DeletionProtection: true,
      StorageEncrypted: true,
      BackupRetentionPeriod: 14,
      DatabaseName: 'enot',
      ServerlessV2ScalingConfiguration: { MinCapacity: 0, MaxCapacity: 4 },
    });
    expect(cluster.Properties!.EngineVersion).toMatch(/^16\./);
    expect(cluster.DeletionPolicy).toBe('Snapshot');
    template.hasResourceProperties('AWS::RDS::DBInstance', { DBInstanceClass: 'db.serverless' });
  });

  it('keeps its credentials in Secrets Manager, rotated from inside the VPC', () => {
    template.hasResourceProperties('AWS::SecretsManager::RotationSchedule', {
      RotationRules: { ScheduleExpression: 'rate(30 days)' },
    });
    // The rotation function is AWS's single-user PostgreSQL rotation application, looked up per partition.
    template.resourceCountIs('AWS::Serverless::Application', 1);
    expect(JSON.stringify(template.toJSON().Mappings)).toContain('SecretsManagerRDSPostgreSQLRotationSingleUser');
    template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      ServiceName: Match.objectLike({ 'Fn::Join': ['', Match.arrayWith([Match.stringLikeRegexp('secretsmanager')])] }),
      VpcEndpointType: 'Interface',
      PrivateDnsEnabled: true,
    });
  });

  it('sits in isolated subnets with no NAT and no internet gateway', () => {
    template.resourceCountIs('AWS::EC2::NatGateway', 0);
    template.resourceCountIs('AWS::EC2::InternetGateway', 0);
    for (const subnet of Object.values(resourcesOf(template, 'AWS::EC2::Subnet'))) {
      expect(subnet.Properties!.MapPublicIpOnLaunch).toBe(false);
    }
  });
});

describe('migrations on deploy', () => {
  it('runs a custom resource whose properties carry the hash of the migration files, after the cluster', () => {
    const migrations = resourcesOf(template, 'Custom::EnotSchemaMigrations');
    expect(Object.keys(migrations)).toHaveLength(1);
    const [resource] = Object.values(migrations);
    const fingerprint = migrationFingerprint();
    expect(resource.Properties).toMatchObject({ MigrationsHash: fingerprint.hash, Migrations: fingerprint.names.join(',') });
    const dependsOn = resource.DependsOn as string[];
    const [clusterId] = Object.keys(resourcesOf(template, 'AWS::RDS::DBCluster'));
    const [instanceId] = Object.keys(resourcesOf(template, 'AWS::RDS::DBInstance'));
    expect(dependsOn).toEqual(expect.arrayContaining([clusterId, instanceId]));
  });

  it('hashes every migration file the runner would apply', async () => {
    const known = (await loadMigrations()).map((m) => m.name);
    expect(migrationFingerprint().names).toEqual(known);
    expect(known.length).toBeGreaterThan(0);
  });

  it('changes the hash when a migration changes or is added', () => {
    const dir = mkdtempSync(join(tmpdir(), 'enot-migrations-'));
    try {
      writeFileSync(join(dir, '001_init.sql'), 'CREATE TABLE a (id int);\n');
      const first = migrationFingerprint(dir).hash;
      writeFileSync(join(dir, '001_init.sql'), 'CREATE TABLE a (id bigint);\n');
      const edited = migrationFingerprint(dir).hash;
      writeFileSync(join(dir, '002_more.sql'), 'CREATE TABLE b (id int);\n');
      const added = migrationFingerprint(dir).hash;
      expect(new Set([first, edited, added]).size).toBe(3);
      expect(migrationFingerprint(dir).hash).toBe(added);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('lets the migration function use the Data API with transactions and nothing else', () => {
    const functions = resourcesOf(template, 'AWS::Lambda::Function');
    const [migrateId] = Object.entries(functions)
      .filter(([, f]) => f.Properties!.Description?.startsWith('Applies the SQL migrations'))
      .map(([id]) => id);
    expect(migrateId).toBeDefined();
    const actions = [...new Set(actionsOf(policyOfFunction(template, migrateId)))].sort();
    expect(actions).toEqual([
      'logs:CreateLogStream', 'logs:PutLogEvents', 'rds-data:BeginTransaction', 'rds-data:CommitTransaction',
      'rds-data:ExecuteStatement', 'rds-data:RollbackTransaction', 'secretsmanager:GetSecretValue',
    ]);
    expect(functions[migrateId].Properties).toMatchObject({ Runtime: 'nodejs22.x', Timeout: 300 });
  });
});

describe('between the stacks', () => {
  it('exports bucket, cluster and secrets under stable names, and the service imports exactly those', () => {
    const outputs = template.toJSON().Outputs as Record<string, { Export: { Name: string } }>;
    const exported = Object.values(outputs).map((o) => o.Export?.Name).filter(Boolean).sort();
    expect(exported).toEqual([
      'EnotBuilderData-AdminTokensSecretArn', 'EnotBuilderData-BucketArn', 'EnotBuilderData-BucketName',
      'EnotBuilderData-ClusterArn', 'EnotBuilderData-DatabaseSecretArn', 'EnotBuilderData-SigningKeyArn',
      'EnotBuilderData-WebhookSecretArn',
    ]);
    const imported = new Set([...JSON.stringify(serviceTemplate.toJSON()).matchAll(/"Fn::ImportValue":"([^"]+)"/g)].map((m) => m[1]));
    for (const name of imported) expect(exported).toContain(name);
  });

  it('generates the webhook secret in the stateful stack and retains it', () => {
    const secrets = Object.values(resourcesOf(template, 'AWS::SecretsManager::Secret'));
    const webhook = secrets.find((s) => String(s.Properties!.Description).includes('webhook'));
    expect(webhook?.Properties!.GenerateSecretString).toMatchObject({ PasswordLength: 40, ExcludePunctuation: true });
    expect(webhook?.DeletionPolicy).toBe('Retain');
  });

  it('keeps functions out of the stateful stack except the migration and its framework', () => {
    expect(Object.keys(resourcesOf(template, 'AWS::Lambda::Function'))).toHaveLength(2);
    expect(() => functionLogicalId(serviceTemplate, 'EnotBuilderService-search')).not.toThrow();
  });
});
