// The stack that holds data: the bucket, the database (with its migrations), the webhook secret and the signing key.
// Rarely changed, retained on delete. It hands the service stack named exports, typed as StatefulExports.
import { RemovalPolicy, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { Database, type DatabaseProps } from './constructs/database.js';
import { SigningKey } from './constructs/signing-key.js';
import { Storage } from './constructs/storage.js';
import type { DatabaseAccess } from './grants.js';

export interface StatefulStackProps extends StackProps {
  /** S3 server access logs for the bucket. @default false */
  bucketAccessLogs?: boolean;
  database?: DatabaseProps;
}

/**
 * What the service stack may use, as CloudFormation imports of exports named `<stack>-<Name>`. Named exports keep
 * their names when constructs here are refactored, and CloudFormation refuses to delete one while it is imported.
 */
export interface StatefulExports {
  bucketName: string;
  bucketArn: string;
  database: DatabaseAccess;
  webhookSecretArn: string;
  /** The admin Bearer tokens (comma-separated, plain or sha256:<hex>), read by the functions granted 'secret:admin'. */
  adminTokensSecretArn: string;
  /** The KMS key statements and checksum indexes are signed with. */
  signingKeyArn: string;
}

export class StatefulStack extends Stack {
  readonly storage: Storage;
  readonly database: Database;
  readonly webhookSecret: secretsmanager.Secret;
  readonly adminTokensSecret: secretsmanager.Secret;
  readonly signingKey: SigningKey;
  readonly exports: StatefulExports;

  constructor(scope: Construct, id: string, props: StatefulStackProps = {}) {
    super(scope, id, props);

    this.storage = new Storage(this, 'Storage', { accessLogs: props.bucketAccessLogs });
    this.database = new Database(this, 'Database', props.database);

    // The GitHub webhook's HMAC key: generated here, pasted into each repository's webhook settings.
    this.webhookSecret = new secretsmanager.Secret(this, 'WebhookSecret', {
      description: 'GitHub webhook secret for POST /callback: paste its value into the webhook settings of each repository',
      generateSecretString: { passwordLength: 40, excludePunctuation: true },
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(this.webhookSecret).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'GitHub holds a copy of this secret in every webhook; an automatic rotation would break them all. ' +
        'Rotate by hand: put a new value, then update the webhooks (README, GitHub webhook).',
    });

    // The admin Bearer token: generated here; an operator reads it from Secrets Manager. Its value may also list
    // several tokens, plain or as sha256:<hex>, comma-separated (ENOT_ADMIN_TOKENS's format).
    this.adminTokensSecret = new secretsmanager.Secret(this, 'AdminTokensSecret', {
      description: 'Admin Bearer tokens of the /v2 admin routes: comma-separated, each plain or sha256:<hex>',
      generateSecretString: { passwordLength: 48, excludePunctuation: true },
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(this.adminTokensSecret).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'Admins hold copies of these tokens; an automatic rotation would lock them out unannounced. Rotate by hand: '
        + 'add the new token beside the old, hand it out, then remove the old (README, admin tokens).',
    });

    this.signingKey = new SigningKey(this, 'Signing');

    const share = (name: string, value: string, description: string) =>
      this.exportValue(value, { name: `${this.stackName}-${name}`, description });
    this.exports = {
      bucketName: share('BucketName', this.storage.bucket.bucketName, 'Artifact bucket (artifacts/, erts/, logs/)'),
      bucketArn: share('BucketArn', this.storage.bucket.bucketArn, 'Artifact bucket ARN'),
      database: {
        clusterArn: share('ClusterArn', this.database.access.clusterArn, 'Aurora cluster (Data API)'),
        secretArn: share('DatabaseSecretArn', this.database.access.secretArn, 'Database credentials (rotated)'),
        databaseName: this.database.access.databaseName,
      },
      webhookSecretArn: share('WebhookSecretArn', this.webhookSecret.secretArn, 'GitHub webhook secret'),
      adminTokensSecretArn: share('AdminTokensSecretArn', this.adminTokensSecret.secretArn, 'Admin Bearer tokens'),
      signingKeyArn: share('SigningKeyArn', this.signingKey.key.keyArn, 'KMS key that signs statements and indexes'),
    };
  }
}
