// Grant -> IAM: the resources a function may be given and the narrowest statements each route `Grant` becomes.
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as codebuild from 'aws-cdk-lib/aws-codebuild';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { buildBlobKeys } from '#core/build-contract.js';
import type { Grant } from '#functions/routes.js';

/** How a function reaches the database: the Data API needs only these three names. */
export interface DatabaseAccess {
  clusterArn: string;
  secretArn: string;
  databaseName: string;
}

/** Where build-result emails come from: the SES identity and its address (infra/constructs/mail.ts). */
export interface MailSender {
  /** The From address (ENOT_MAIL_FROM). */
  address: string;
  /** The SES identity the address is verified as; sending is granted on it alone. */
  identityArn: string;
}

/** The resources functions may be granted (each GRANTS entry names the one it needs). */
export interface ServiceResources {
  database?: DatabaseAccess;
  bucket?: s3.IBucket;
  webhookSecret?: secretsmanager.ISecret;
  /** The admin tokens' secret (ENOT_ADMIN_TOKENS's format), for 'secret:admin'. */
  adminTokensSecret?: secretsmanager.ISecret;
  /** The build queue (infra/constructs/build-pipeline.ts), for 'queue:send'. */
  queue?: sqs.IQueue;
  /** The CodeBuild project builds run on, for 'build:start'. */
  buildProject?: codebuild.IProject;
  /**
   * The sender, for 'mail:send'. `null` says this deployment sends no mail (no senderEmail): the grant then
   * gives nothing and the function gets no ENOT_MAIL_FROM, so it runs without a mailer. Left undefined, the
   * grant refuses, like any other grant whose resource is missing.
   */
  mailSender?: MailSender | null;
  /** The KMS key that signs statements and checksum indexes, for 'sign:build'. */
  signingKey?: kms.IKey;
}

/** The bucket prefix of the checksum indexes ('blob:read-index', 'blob:write-index'). */
export const INDEX_PREFIX = 'index/';

/** What 'sign:build' allows on the signing key: signing, and reading the public half that statements name. */
export const SIGN_ACTIONS = ['kms:GetPublicKey', 'kms:Sign'];

/**
 * The bucket prefixes 'blob:delete' covers (DeleteObject): build logs and packages, which retention removes. Never
 * erts/: ERTS tarballs are kept forever.
 */
export const BLOB_DELETE_PREFIXES = ['artifacts/', 'logs/'] as const;

/** The bucket prefixes 'blob:read' covers (GetObject, and ListBucket within them): packages, ERTS tarballs, build logs. */
export const BLOB_READ_PREFIXES = ['artifacts/', 'erts/', 'logs/'] as const;

/**
 * The bucket prefixes 'blob:upload-build' covers (PutObject): where a build's outputs go (buildBlobKeys), so the
 * dispatcher can presign each build's upload URLs. Not erts/: only the publish-erts project writes there.
 */
export const BUILD_OUTPUT_PREFIXES: readonly string[] = [
  ...new Set(Object.values(buildBlobKeys('build-id')).map((key) => key.slice(0, key.indexOf('/') + 1))),
];

/** What 'mail:send' allows on the sender identity (the same pair Mail.grantSend gives). */
export const MAIL_SEND_ACTIONS = ['ses:SendEmail', 'ses:SendRawEmail'];

const DATA_API_STATEMENT = ['rds-data:ExecuteStatement'];
const DATA_API_TRANSACTIONS = [
  'rds-data:BeginTransaction', 'rds-data:CommitTransaction', 'rds-data:RollbackTransaction',
];

function need<T>(resource: T | undefined, grant: Grant, what: string): T {
  if (resource === undefined) {
    throw new Error(`Grant '${grant}' needs ${what}, which was not given to this function`);
  }
  return resource;
}

function dataApi(db: DatabaseAccess, actions: string[]): iam.PolicyStatement[] {
  return [
    new iam.PolicyStatement({ actions, resources: [db.clusterArn] }),
    // The Data API reads the credentials with the caller's identity.
    new iam.PolicyStatement({ actions: ['secretsmanager:GetSecretValue'], resources: [db.secretArn] }),
  ];
}

/**
 * Grant -> IAM statements, the only place a route's `grants` become permissions. A grant whose
 * resource this stack does not have throws at synth time instead of deploying a function that fails.
 */
export const GRANTS: Record<Grant, (resources: ServiceResources) => iam.PolicyStatement[]> = {
  'db:read': (r) => dataApi(need(r.database, 'db:read', 'the database'), DATA_API_STATEMENT),
  'db:write': (r) =>
    dataApi(need(r.database, 'db:write', 'the database'), [...DATA_API_STATEMENT, ...DATA_API_TRANSACTIONS]),
  'blob:read': (r) => {
    const bucket = need(r.bucket, 'blob:read', 'the bucket');
    const keys = BLOB_READ_PREFIXES.map((prefix) => `${prefix}*`);
    return [
      // Presigned download URLs carry this permission; nothing here can write.
      new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: keys.map((k) => bucket.arnForObjects(k)) }),
      // Without ListBucket S3 answers 403 instead of 404 for a missing key, and stat() could not tell "absent"
      // from "denied". S3 checks it with the key as s3:prefix, so the same prefixes bound it.
      new iam.PolicyStatement({
        actions: ['s3:ListBucket'],
        resources: [bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': keys } },
      }),
    ];
  },
  'blob:upload-build': (r) => {
    const bucket = need(r.bucket, 'blob:upload-build', 'the bucket');
    // Presigned URLs carry the signer's permission: the role itself writes nothing, the builds it starts do,
    // each through URLs for its own three keys.
    return [new iam.PolicyStatement({
      actions: ['s3:PutObject'],
      resources: BUILD_OUTPUT_PREFIXES.map((prefix) => bucket.arnForObjects(`${prefix}*`)),
    })];
  },
  'queue:send': (r) => {
    const queue = need(r.queue, 'queue:send', 'the build queue (from the build-pipeline construct)');
    const statements = [new iam.PolicyStatement({ actions: ['sqs:SendMessage'], resources: [queue.queueArn] })];
    // The pipeline's queue uses SQS-managed encryption; a queue under a customer key also needs the key.
    if (queue.encryptionMasterKey) {
      statements.push(new iam.PolicyStatement({
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: [queue.encryptionMasterKey.keyArn],
      }));
    }
    return statements;
  },
  'secret:webhook': (r) => {
    const secret = need(r.webhookSecret, 'secret:webhook', 'the webhook secret');
    return [new iam.PolicyStatement({ actions: ['secretsmanager:GetSecretValue'], resources: [secret.secretArn] })];
  },
  'secret:admin': (r) => {
    const secret = need(r.adminTokensSecret, 'secret:admin', 'the admin tokens secret');
    return [new iam.PolicyStatement({ actions: ['secretsmanager:GetSecretValue'], resources: [secret.secretArn] })];
  },
  'build:start': (r) => {
    const project = need(r.buildProject, 'build:start', 'the CodeBuild project (from the build-pipeline construct)');
    return [new iam.PolicyStatement({ actions: ['codebuild:StartBuild'], resources: [project.projectArn] })];
  },
  'sign:build': (r) => {
    const key = need(r.signingKey, 'sign:build', 'the signing key (from the stateful stack)');
    return [new iam.PolicyStatement({ actions: SIGN_ACTIONS, resources: [key.keyArn] })];
  },
  'blob:read-index': (r) => {
    const bucket = need(r.bucket, 'blob:read-index', 'the bucket');
    const keys = [`${INDEX_PREFIX}*`];
    return [
      new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: keys.map((k) => bucket.arnForObjects(k)) }),
      new iam.PolicyStatement({
        actions: ['s3:ListBucket'], resources: [bucket.bucketArn], conditions: { StringLike: { 's3:prefix': keys } },
      }),
    ];
  },
  'blob:write-index': (r) => {
    const bucket = need(r.bucket, 'blob:write-index', 'the bucket');
    return [new iam.PolicyStatement({ actions: ['s3:PutObject'], resources: [bucket.arnForObjects(`${INDEX_PREFIX}*`)] })];
  },
  'blob:delete': (r) => {
    const bucket = need(r.bucket, 'blob:delete', 'the bucket');
    // In the versioned bucket a delete adds a marker; no DeleteObjectVersion, so the bytes stay recoverable until
    // the noncurrent-version rule ends them.
    return [new iam.PolicyStatement({
      actions: ['s3:DeleteObject'],
      resources: BLOB_DELETE_PREFIXES.map((prefix) => bucket.arnForObjects(`${prefix}*`)),
    })];
  },
  'mail:send': (r) => {
    const sender = need(r.mailSender, 'mail:send', 'the mail sender (null when mail is off)');
    if (sender === null) return [];
    return [new iam.PolicyStatement({ actions: MAIL_SEND_ACTIONS, resources: [sender.identityArn] })];
  },
};

/** The statements for a set of grants, merged so each (resources, conditions) appears once with the union of its actions. */
export function grantStatements(grants: readonly Grant[], resources: ServiceResources): iam.PolicyStatement[] {
  const merged = new Map<string, { resources: string[]; conditions?: Record<string, unknown>; actions: Set<string> }>();
  for (const grant of new Set(grants)) {
    for (const statement of GRANTS[grant](resources)) {
      const conditions = Object.keys(statement.conditions ?? {}).length > 0 ? statement.conditions : undefined;
      const key = JSON.stringify([statement.resources, conditions ?? null]);
      const entry = merged.get(key) ?? { resources: statement.resources, conditions, actions: new Set<string>() };
      for (const action of statement.actions) entry.actions.add(action);
      merged.set(key, entry);
    }
  }
  return [...merged.values()].map((e) => new iam.PolicyStatement({
    actions: [...e.actions].sort(),
    resources: e.resources,
    ...(e.conditions ? { conditions: e.conditions } : {}),
  }));
}
