// Builds the adapters behind every port from the config (AWS or local). Entry points ask `deps()`;
// the local server and tests install their own with `useDeps()`. Nothing here loads an AWS SDK client
// at import: each AWS adapter loads its SDK on first use, so a function pays only for the services it calls.
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { join } from 'node:path';
import { loadConfig, type Config } from './config.js';
import type { BlobStore, Builder, BuildQueue, Mailer, RealPath, SecretReader, Signer, Store } from './core/ports.js';
import type { MetricsRecorder } from './core/metrics.js';
import {
  loadMigrations, openStore, runMigrations, type DataApiOptions, type Migration,
} from './adapters/postgres/open-store.js';
import { createDataApiClient } from './adapters/postgres/data-api-client.js';
import { FsBlobStore } from './adapters/blob/fs-blob-store.js';
import { S3BlobStore } from './adapters/blob/s3-blob-store.js';
import { InMemoryMetrics } from './adapters/metrics/memory-metrics.js';
import { LocalBuildQueue } from './adapters/queue/local-build-queue.js';
import { EmlMailer } from './adapters/mail/eml-mailer.js';
import { SqsBuildQueue } from './adapters/queue/sqs-build-queue.js';
import { SesMailer } from './adapters/mail/ses-mailer.js';
import { CodeBuildBuilder } from './adapters/builder/codebuild-builder.js';
import { PowertoolsMetricsRecorder, sharedPowertoolsMetrics } from './adapters/metrics/powertools-metrics.js';
import { webhookSecretFor } from './adapters/secrets/webhook-secret.js';
import { adminTokenHashesFor } from './adapters/secrets/admin-tokens.js';
import { authenticate, isPrivileged, type AdminTokenHashes } from './core/authorization.js';
import { headerValue } from './core/headers.js';
import { realPathOnThisMachine } from './adapters/paths/real-path.js';
import { LocalKeySigner } from './adapters/signing/local-key-signer.js';
import { KmsSigner } from './adapters/signing/kms-signer.js';
import { processLogger } from './log.js';

export interface Deps {
  config: Config;
  store: Store;
  blobs: BlobStore;
  metrics: MetricsRecorder;
  queue: BuildQueue;
  mailer: Mailer;
  /** The GitHub webhook's shared secret (read on first use: only /callback asks). */
  webhookSecret: SecretReader;
  /** The builder that starts builds: CodeBuild on AWS (the dispatcher uses it). Locally the worker owns its own. */
  builder?: Builder;
  /** Follows a file:// clone URL's symbolic links, so a link cannot lead a build out of an allowed directory. */
  realPath?: RealPath;
  /**
   * Signs statements and indexes: the key file in the data dir locally, KMS on AWS (loaded on first use). buildDeps
   * always gives one; it is optional only so that dependencies a test builds by hand need not name one.
   */
  signer?: Signer;
  /**
   * Requests the rate limits do not apply to (a valid admin or owner Bearer token); absent: nobody is exempt. The
   * read limit (http/middlewares.ts) and the build endpoints (http/build-budget.ts) ask it.
   */
  rateLimitExempt?: (event: APIGatewayProxyEvent) => Promise<boolean>;
  /** The admin tokens' hashes; absent (dependencies a test builds by hand): config.adminTokenHashes. */
  adminTokenHashes?: AdminTokenHashes;
}

let current: Promise<Deps> | undefined;
let ready: Deps | undefined;

/**
 * The process-wide dependencies, built once per container on first use. A build that fails is
 * forgotten, so the next invocation tries again instead of failing for the container's lifetime.
 */
export function deps(): Promise<Deps> {
  if (!current) {
    const building: Promise<Deps> = buildDeps(loadConfig()).then(
      (d) => {
        if (current === building) ready = d;
        return d;
      },
      (error: unknown) => {
        if (current === building) current = undefined;
        throw error;
      },
    );
    current = building;
  }
  return current;
}

/** The dependencies when they are built already, else undefined: the per-request path without a wait. */
export function readyDeps(): Deps | undefined {
  return ready;
}

/** The process dependencies as the API's endpoint factory takes them (functions/service-endpoint.ts). */
export const processDeps = { get: deps, ready: readyDeps };

/** Installs ready-made dependencies (local server, tests). */
export function useDeps(d: Deps): void {
  current = Promise.resolve(d);
  ready = d;
}

export async function buildDeps(config: Config): Promise<Deps> {
  const store = await openStore(config);
  const builder = openBuilder(config);
  const signer = await openSigner(config);
  const adminTokenHashes = adminTokenHashesFor(config);
  return {
    signer,
    adminTokenHashes,
    // Any valid admin or owner token skips the rate limits; a wrong one is limited like no token (its route answers 401).
    rateLimitExempt: (event) => authenticate({ store, adminTokenHashes }, headerValue(event.headers, 'Authorization')).then(isPrivileged, () => false),
    config, store, blobs: openBlobStore(config), metrics: openMetrics(config),
    queue: openBuildQueue(config), mailer: openMailer(config), webhookSecret: webhookSecretFor(config),
    realPath: realPathOnThisMachine,
    ...(builder ? { builder } : {}),
  };
}

/**
 * SQS on AWS. A function without the queue (no 'queue:send' grant, so no ENOT_QUEUE_URL) gets a queue that
 * refuses when used, not at start: most functions never queue anything.
 */
export function openBuildQueue(config: Config): BuildQueue {
  if (config.runtime === 'aws') {
    const queueUrl = config.aws.queueUrl;
    if (!queueUrl) return { enqueue: () => Promise.reject(new Error('ENOT_QUEUE_URL is not set: this function cannot queue builds')) };
    return new SqsBuildQueue({ queueUrl, clientConfig: { region: config.aws.region } });
  }
  return new LocalBuildQueue();
}

/**
 * SES on AWS. Without ENOT_MAIL_FROM (a deployment with no sender, or a function without 'mail:send') a
 * result email is logged and dropped, never an error: a deployment may choose to send no mail.
 */
export function openMailer(config: Config): Mailer {
  if (config.runtime === 'aws') {
    const from = config.aws.mailFrom;
    if (!from) {
      return {
        send: async (mail) => {
          processLogger(config.logLevel).info('mail is off (no ENOT_MAIL_FROM); result email dropped', { subject: mail.subject });
        },
      };
    }
    return new SesMailer({ from, clientConfig: { region: config.aws.region } });
  }
  return new EmlMailer(join(config.dataDir, 'mail'));
}

/**
 * CodeBuild on AWS when the function may start builds (ENOT_BUILD_PROJECT); locally the worker owns its builder.
 * Builds upload through forms this function presigns, so it needs the bucket too (and 'blob:upload-build').
 */
export function openBuilder(config: Config): Builder | undefined {
  if (config.runtime !== 'aws' || !config.aws.buildProject) return undefined;
  if (!config.aws.bucket) throw new Error('ENOT_BUCKET is required with ENOT_BUILD_PROJECT: builds upload through forms presigned for it');
  const uploads = openS3BlobStore(config, config.aws.bucket);
  return new CodeBuildBuilder({
    projectName: config.aws.buildProject,
    clientConfig: { region: config.aws.region },
    presignUpload: (key, contentType, expiresS, maxBytes) => uploads.presignPost(key, contentType, expiresS, maxBytes),
    dependencies: config.dependencies,
  });
}

/**
 * KMS on AWS when the function may sign (ENOT_SIGNING_KEY_ID, given with 'sign:build'), else a signer that refuses
 * when used: nothing but the completion worker signs. Locally the key in ENOT_DATA_DIR/signing, made on first start.
 */
export async function openSigner(config: Config): Promise<Signer> {
  if (config.runtime === 'aws') {
    const kmsKeyId = config.aws.signingKeyId;
    if (kmsKeyId) return new KmsSigner({ kmsKeyId, clientConfig: { region: config.aws.region } });
    const refuse = () => Promise.reject(new Error('ENOT_SIGNING_KEY_ID is not set: this function cannot sign'));
    return { keyId: refuse, sign: refuse, publicKeys: refuse };
  }
  return LocalKeySigner.open(join(config.dataDir, 'signing'));
}

/** CloudWatch EMF through Powertools in AWS; locally, totals in memory (shown by GET /metrics), nothing printed. */
export function openMetrics(config: Config): MetricsRecorder {
  if (config.runtime === 'aws') {
    return new PowertoolsMetricsRecorder(sharedPowertoolsMetrics(processLogger(config.logLevel)));
  }
  return new InMemoryMetrics();
}

export function openBlobStore(config: Config): BlobStore {
  if (config.runtime === 'aws') {
    if (!config.aws.bucket) throw new Error('ENOT_BUCKET is required in the aws runtime');
    return openS3BlobStore(config, config.aws.bucket);
  }
  return new FsBlobStore(join(config.dataDir, 'blobs'));
}

/** The bucket as the S3 adapter sees it: the one S3 configuration for downloads, uploads and build upload URLs. */
function openS3BlobStore(config: Config, bucket: string): S3BlobStore {
  return new S3BlobStore({
    clientConfig: {
      region: config.aws.region,
      ...(config.aws.s3Endpoint ? { endpoint: config.aws.s3Endpoint, forcePathStyle: true } : {}),
    },
    bucket,
    presignTtlS: config.presignTtlS,
  });
}

export type { DataApiOptions, Migration };

// A paused Serverless v2 cluster resumes in seconds to tens of seconds: wait for it longer than an API call would.
const MIGRATION_RESUME_RETRIES = 6;

/** The SQL migrations this build of the service ships (the deploy-time migration applies them). */
export function loadSchemaMigrations(): Promise<Migration[]> {
  return loadMigrations();
}

/**
 * Aurora through the Data API as the deploy-time migration sees it (workers/migrate.ts). `apply` runs the
 * migrations not yet recorded and answers their names.
 */
export function openMigrationTarget(dataApi: DataApiOptions): {
  apply(migrations: Migration[]): Promise<string[]>;
  close(): Promise<void>;
} {
  const client = createDataApiClient(dataApi);
  return { apply: (migrations) => runMigrations(client, migrations), close: () => client.close() };
}

/** The cluster and secret the migration applies to, from the config the stack sets. */
export function migrationDataApiOf(config: Config): DataApiOptions {
  const { aws } = config;
  if (!aws.dbClusterArn || !aws.dbSecretArn) {
    throw new Error('ENOT_DB_CLUSTER_ARN and ENOT_DB_SECRET_ARN are required to migrate');
  }
  return {
    resourceArn: aws.dbClusterArn,
    secretArn: aws.dbSecretArn,
    database: aws.dbName,
    region: aws.region,
    endpoint: aws.rdsDataEndpoint,
    resumeRetries: MIGRATION_RESUME_RETRIES,
  };
}
