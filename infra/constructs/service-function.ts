// The one way this service makes a Lambda function: every default (Node 22, arm64, ESM bundle, log group,
// environment) in one place, and a function's grants turned into the narrowest IAM statements.
import { Duration, Stack, Validations } from 'aws-cdk-lib';
import type * as codebuild from 'aws-cdk-lib/aws-codebuild';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct, type IConstruct } from 'constructs';
import { buildBlobKeys } from '#core/build-contract.js';
import type { Grant } from '#functions/routes.js';
import { esbuildOptions } from '../bundling.js';
import { METRICS_NAMESPACE, SERVICE_NAME } from '../metrics.js';
import { LOCK_FILE, PROJECT_ROOT, functionEntry } from '../paths.js';

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
}

/** Runtime settings every API-facing function receives (functions/config.ts reads them). */
export interface ServiceSettings {
  defaultErlVersion: string;
  allowedCloneUrls: readonly string[];
  /** Base URL in links and emails: the API's URL or the custom domain. */
  publicUrl: string;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  /**
   * One build's time limit (ENOT_BUILD_TIMEOUT_S): the CodeBuild project's timeout, what build jobs carry
   * and what the reaper measures against. Every function gets it, so none can disagree with the project.
   */
  buildTimeoutS?: number;
}

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
  'build:start': (r) => {
    const project = need(r.buildProject, 'build:start', 'the CodeBuild project (from the build-pipeline construct)');
    return [new iam.PolicyStatement({ actions: ['codebuild:StartBuild'], resources: [project.projectArn] })];
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

/**
 * How cdk-nag spells a (possibly tokenized) value in a finding id, e.g. `<BucketF00.Arn>/logs/*`, so an
 * acknowledgement can name exactly one finding. Mirrors cdk-nag's flattening of CloudFormation intrinsics.
 */
export function nagName(scope: IConstruct, value: string): string {
  const visit = (node: unknown): string => {
    if (node === undefined) return '';
    if (typeof node === 'string') return node.replace(/\$\{/g, '<').replace(/\}/g, '>');
    const fn = node as Record<string, unknown>;
    if (fn['Fn::Join']) {
      const [delimiter, items] = fn['Fn::Join'] as [string, unknown[]];
      return items.map(visit).join(delimiter);
    }
    if (fn['Fn::Sub']) return visit(fn['Fn::Sub']);
    if (fn['Fn::GetAtt']) {
      const [resource, attribute] = fn['Fn::GetAtt'] as [unknown, unknown];
      return `<${visit(resource)}.${visit(attribute)}>`;
    }
    if (fn['Fn::ImportValue']) return visit(fn['Fn::ImportValue']);
    if (fn.Ref) return `<${visit(fn.Ref)}>`;
    return JSON.stringify(node);
  };
  return visit(Stack.of(scope).resolve(value));
}

/** The environment functions/config.ts expects, from what this function is given. */
export function serviceEnvironment(
  grants: readonly Grant[], resources: ServiceResources, settings?: ServiceSettings,
): Record<string, string> {
  const env: Record<string, string> = {
    ENOT_RUNTIME: 'aws',
    NODE_OPTIONS: '--enable-source-maps',
    POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
    POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
  };
  if (resources.database) {
    env.ENOT_DB_CLUSTER_ARN = resources.database.clusterArn;
    env.ENOT_DB_SECRET_ARN = resources.database.secretArn;
    env.ENOT_DB_NAME = resources.database.databaseName;
  }
  if (resources.bucket) env.ENOT_BUCKET = resources.bucket.bucketName;
  if (settings) {
    env.ENOT_DEFAULT_ERL_VERSION = settings.defaultErlVersion;
    env.ENOT_ALLOWED_CLONE_URLS = settings.allowedCloneUrls.join(',');
    env.ENOT_PUBLIC_URL = settings.publicUrl;
    env.ENOT_LOG_LEVEL = settings.logLevel;
    if (settings.buildTimeoutS !== undefined) env.ENOT_BUILD_TIMEOUT_S = String(settings.buildTimeoutS);
  }
  if (grants.includes('secret:webhook') && resources.webhookSecret) {
    env.ENOT_GIT_SECRET_ARN = resources.webhookSecret.secretArn;
  }
  if (grants.includes('queue:send') && resources.queue) env.ENOT_QUEUE_URL = resources.queue.queueUrl;
  if (grants.includes('build:start') && resources.buildProject) {
    env.ENOT_BUILD_PROJECT = resources.buildProject.projectName;
  }
  if (grants.includes('mail:send') && resources.mailSender) env.ENOT_MAIL_FROM = resources.mailSender.address;
  return env;
}

export interface ServiceFunctionProps {
  /** Module under functions/ exporting `handler`, e.g. "api/search.ts". */
  entry: string;
  /** What the function may touch; nothing else is granted. */
  grants: readonly Grant[];
  resources: ServiceResources;
  /** Runtime settings (API-facing functions); workers that only migrate the schema go without. */
  settings?: ServiceSettings;
  /** Physical function name; CloudFormation makes one up when absent. */
  functionName?: string;
  description?: string;
  /** @default 512 */
  memorySize?: number;
  /** @default 15 seconds (under API Gateway's 29 s, with room for a resuming Aurora) */
  timeout?: Duration;
  /** Active X-Ray tracing. @default false */
  tracing?: boolean;
  /** @default one month */
  logRetention?: logs.RetentionDays;
  /** Shell commands to run after esbuild, given the input and output directories (files the code reads at runtime). */
  afterBundling?: (inputDir: string, outputDir: string) => string[];
}

/** A NodejsFunction with its own role and log group, granted exactly `grants`. */
export class ServiceFunction extends Construct {
  readonly function: NodejsFunction;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;
  readonly grants: readonly Grant[];
  /** Absolute path of the bundled module. */
  readonly entry: string;

  constructor(scope: Construct, id: string, props: ServiceFunctionProps) {
    super(scope, id);
    this.grants = props.grants;
    this.entry = functionEntry(props.entry);

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
    });

    // An own role instead of AWSLambdaBasicExecutionRole: it may write to its own log group only.
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Runs ${props.entry}`,
    });
    this.logGroup.grantWrite(this.role);
    for (const statement of grantStatements(props.grants, props.resources)) {
      this.role.addToPrincipalPolicy(statement);
    }

    this.acknowledgeFindings(props);

    const afterBundling = props.afterBundling;
    this.function = new NodejsFunction(this, 'Function', {
      entry: this.entry,
      handler: 'handler',
      functionName: props.functionName,
      description: props.description,
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout ?? Duration.seconds(15),
      tracing: props.tracing ? lambda.Tracing.ACTIVE : lambda.Tracing.DISABLED,
      role: this.role,
      logGroup: this.logGroup,
      environment: serviceEnvironment(props.grants, props.resources, props.settings),
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: LOCK_FILE,
      bundling: {
        format: OutputFormat.ESM,
        target: esbuildOptions.target,
        minify: esbuildOptions.minify,
        sourceMap: esbuildOptions.sourcemap,
        mainFields: esbuildOptions.mainFields,
        externalModules: esbuildOptions.external,
        banner: esbuildOptions.banner.js,
        ...(afterBundling
          ? {
              commandHooks: {
                beforeBundling: () => [],
                beforeInstall: () => [],
                afterBundling,
              },
            }
          : {}),
      },
    });
  }

  private acknowledgeFindings(props: ServiceFunctionProps): void {
    Validations.of(this).acknowledge({
      id: 'AwsSolutions-L1',
      reason:
        'Pinned to Node.js 22 on purpose: the bundle target (infra/bundling.ts, node22) and the tests match it; ' +
        'move runtime and target together.',
    });
    if (props.tracing) {
      Validations.of(this).acknowledge({
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason: 'X-Ray PutTraceSegments and PutTelemetryRecords have no resource-level permissions.',
      });
    }
    const bucket = props.resources.bucket;
    if (props.grants.includes('blob:read') && bucket) {
      for (const prefix of BLOB_READ_PREFIXES) {
        Validations.of(this).acknowledge({
          id: `AwsSolutions-IAM5[Resource::${nagName(this, bucket.arnForObjects(`${prefix}*`))}]`,
          reason:
            `Downloads hand out presigned URLs for any package, ERTS tarball or build log, so GetObject covers ` +
            `every key under ${prefix} and nothing outside the three read prefixes.`,
        });
      }
    }
    if (props.grants.includes('blob:upload-build') && bucket) {
      for (const prefix of BUILD_OUTPUT_PREFIXES) {
        Validations.of(this).acknowledge({
          id: `AwsSolutions-IAM5[Resource::${nagName(this, bucket.arnForObjects(`${prefix}*`))}]`,
          reason:
            `Each build's keys are named after its build id, made per request, so the PutObject the dispatcher's ` +
            `presigned upload URLs carry covers ${prefix}; every URL it signs names one key of one build.`,
        });
      }
    }
  }
}
