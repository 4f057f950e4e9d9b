// The one way this service makes a Lambda function: every default (Node 22, arm64, ESM bundle, log group,
// environment) in one place; what it may touch comes from infra/grants.ts, its cdk-nag acknowledgements from
// infra/nag-suppressions.ts.
import { Duration } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { Grant } from '#functions/routes.js';
import { esbuildOptions } from '../bundling.js';
import { grantStatements, type ServiceResources } from '../grants.js';
import { METRICS_NAMESPACE, SERVICE_NAME } from '../metrics.js';
import { acknowledgeFunctionFindings } from '../nag-suppressions.js';
import { LOCK_FILE, PROJECT_ROOT, functionEntry } from '../paths.js';

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
  if (grants.includes('secret:admin') && resources.adminTokensSecret) {
    env.ENOT_ADMIN_TOKENS_SECRET_ARN = resources.adminTokensSecret.secretArn;
  }
  if (grants.includes('queue:send') && resources.queue) env.ENOT_QUEUE_URL = resources.queue.queueUrl;
  if (grants.includes('build:start') && resources.buildProject) {
    env.ENOT_BUILD_PROJECT = resources.buildProject.projectName;
  }
  if (grants.includes('mail:send') && resources.mailSender) env.ENOT_MAIL_FROM = resources.mailSender.address;
  if (grants.includes('sign:build') && resources.signingKey) env.ENOT_SIGNING_KEY_ID = resources.signingKey.keyArn;
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

    acknowledgeFunctionFindings(this, { grants: props.grants, bucket: props.resources.bucket, tracing: props.tracing });

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
}
