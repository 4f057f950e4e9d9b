// Aurora Serverless v2 PostgreSQL behind the Data API, its rotated credentials, and the schema migrations
// applied on every deploy by a custom resource.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CustomResource, Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { MIGRATIONS_DIR } from '#adapters/postgres/migrations.js';
import type { DatabaseAccess } from '../grants.js';
import { nagName } from '../nag-suppressions.js';
import { ServiceFunction } from './service-function.js';

export interface DatabaseProps {
  /** @default "enot" (ENOT_DB_NAME's default) */
  databaseName?: string;
  /** @default 14 days */
  backupRetention?: Duration;
  /** Aurora capacity units; 0 lets the cluster pause when idle (the Data API driver retries while it resumes). @default 0 */
  minCapacity?: number;
  /** @default 4 */
  maxCapacity?: number;
}

/** Name and SHA-256 of each migration file, in order: what the migration custom resource watches. */
export function migrationFingerprint(dir: string = MIGRATIONS_DIR): { names: string[]; hash: string } {
  const names = readdirSync(dir).filter((n) => n.endsWith('.sql')).sort();
  const hash = createHash('sha256');
  for (const name of names) hash.update(name).update('\0').update(readFileSync(join(dir, name))).update('\0');
  return { names, hash: hash.digest('hex') };
}

export class Database extends Construct {
  readonly vpc: ec2.Vpc;
  readonly cluster: rds.DatabaseCluster;
  readonly secret: secretsmanager.ISecret;
  readonly access: DatabaseAccess;
  readonly migrations: CustomResource;

  constructor(scope: Construct, id: string, props: DatabaseProps = {}) {
    super(scope, id);
    const databaseName = props.databaseName ?? 'enot';

    // Only the database and its rotation function live in here: isolated subnets, no NAT, no internet path.
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'database', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 }],
      restrictDefaultSecurityGroup: false,
    });
    this.vpc.addFlowLog('FlowLog', {
      destination: ec2.FlowLogDestination.toCloudWatchLogs(
        new logs.LogGroup(this, 'FlowLogs', { retention: logs.RetentionDays.ONE_MONTH }),
      ),
      trafficType: ec2.FlowLogTrafficType.REJECT,
    });
    // The rotation function reaches Secrets Manager through this endpoint, since nothing here reaches the internet.
    const secretsEndpoint = this.vpc.addInterfaceEndpoint('SecretsManager', {
      service: ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
      subnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      privateDnsEnabled: true,
      open: false,
    });

    this.cluster = new rds.DatabaseCluster(this, 'Cluster', {
      engine: rds.DatabaseClusterEngine.auroraPostgres({ version: rds.AuroraPostgresEngineVersion.VER_16_8 }),
      writer: rds.ClusterInstance.serverlessV2('Writer', { autoMinorVersionUpgrade: true }),
      serverlessV2MinCapacity: props.minCapacity ?? 0,
      serverlessV2MaxCapacity: props.maxCapacity ?? 4,
      enableDataApi: true,
      credentials: rds.Credentials.fromGeneratedSecret('enot_admin'),
      defaultDatabaseName: databaseName,
      vpc: this.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      storageEncrypted: true,
      deletionProtection: true,
      backup: { retention: props.backupRetention ?? Duration.days(14) },
      cloudwatchLogsExports: ['postgresql'],
      removalPolicy: RemovalPolicy.SNAPSHOT,
    });
    if (!this.cluster.secret) throw new Error('the cluster was expected to generate its credentials secret');
    this.secret = this.cluster.secret;

    const rotationSecurityGroup = new ec2.SecurityGroup(this, 'RotationSecurityGroup', {
      vpc: this.vpc,
      description: 'The credentials rotation function: reaches the cluster and the Secrets Manager endpoint',
    });
    this.cluster.addRotationSingleUser({
      automaticallyAfter: Duration.days(30),
      endpoint: secretsEndpoint,
      securityGroup: rotationSecurityGroup,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
    });
    secretsEndpoint.connections.allowDefaultPortFrom(rotationSecurityGroup, 'rotation function calls Secrets Manager');

    this.access = {
      clusterArn: this.cluster.clusterArn,
      secretArn: this.secret.secretArn,
      databaseName,
    };

    this.migrations = this.migrateOnDeploy();
    this.acknowledgeFindings();
  }

  /**
   * Runs functions/workers/migrate.ts on create and on every change of the migration files (their hash is a
   * property, so CloudFormation sees an update). The runner records what it applied, so a re-run is a no-op.
   */
  private migrateOnDeploy(): CustomResource {
    const migrator = new ServiceFunction(this, 'Migrate', {
      entry: 'workers/migrate.ts',
      description: 'Applies the SQL migrations through the Data API (deploy-time custom resource)',
      grants: ['db:write'],
      resources: { database: this.access },
      // A paused cluster takes a few seconds to resume; migrations themselves are small.
      timeout: Duration.minutes(5),
      // loadMigrations() reads ./migrations/ beside the bundle, as it does beside its source.
      afterBundling: (inputDir, outputDir) => [
        `node -e "require('node:fs').cpSync(process.argv[1], process.argv[2], { recursive: true })" ` +
          `"${join(inputDir, 'functions', 'adapters', 'postgres', 'migrations')}" "${join(outputDir, 'migrations')}"`,
      ],
    });
    const provider = new cr.Provider(this, 'MigrationProvider', {
      onEventHandler: migrator.function,
      logGroup: new logs.LogGroup(this, 'MigrationProviderLogs', { retention: logs.RetentionDays.ONE_MONTH }),
    });
    const { names, hash } = migrationFingerprint();
    const migrations = new CustomResource(this, 'Migrations', {
      serviceToken: provider.serviceToken,
      resourceType: 'Custom::EnotSchemaMigrations',
      properties: { MigrationsHash: hash, Migrations: names.join(',') },
    });
    // The writer instance must be up before the Data API answers.
    migrations.node.addDependency(this.cluster);

    Validations.of(provider).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      reason: 'The custom-resource framework function of aws-cdk-lib only writes its own logs; its role is not configurable per action.',
    });
    Validations.of(provider).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${nagName(provider, `${migrator.function.functionArn}:*`)}]`,
      reason: 'The framework may invoke any version of the migration function; the wildcard is the version suffix of that one function.',
    });
    return migrations;
  }

  private acknowledgeFindings(): void {
    Validations.of(this.cluster).acknowledge({
      id: 'AwsSolutions-RDS6',
      reason: 'Functions reach the database only through the Data API with the Secrets Manager credentials; no client connects with IAM tokens.',
    });
  }
}
