// The Builder on CodeBuild (AWS runtime): one StartBuild per build, the job passed as environment overrides with
// presigned POST forms for the build's own outputs, so the build's role needs no S3 write at all.
// The end of a build comes back as an EventBridge event (workers/codebuild-state-change.ts). The SDK is loaded on first use.
import type { CodeBuildClient, CodeBuildClientConfig, StartBuildCommandInput } from '@aws-sdk/client-codebuild';
import {
  BUILDER_QUEUE_LIMIT_S, OUTPUT_CONTENT_TYPES, UPLOAD_FORM_ENV, UPLOAD_MAX_BYTES, buildBlobKeys, buildEnvironment,
  dependencyEnvironment, type DependencyPolicy, type UploadForm,
} from '#core/build-contract.js';
import { BuilderBusyError } from '#core/errors.js';
import type { BuildJob, Builder } from '#core/ports.js';
import { S3_PRESIGN_MAX_S } from '#adapters/blob/s3-blob-store.js';
import { lazyRequire } from '#adapters/lazy-require.js';

type CodeBuildSdk = typeof import('@aws-sdk/client-codebuild');

const codeBuildSdk = lazyRequire<CodeBuildSdk>('@aws-sdk/client-codebuild');

/** CodeBuild's bounds on timeoutInMinutesOverride. */
export const CODEBUILD_TIMEOUT_MINUTES = { min: 5, max: 2160 } as const;

/**
 * Errors after which the same StartBuild may succeed later: throttling (the SDK has already retried it),
 * the account's concurrent build limit, and CodeBuild's own transient failures. Anything else (a missing
 * project, an invalid input, a denied role) is a deployment problem that retrying will not fix.
 */
const BUSY_ERRORS = new Set([
  'ThrottlingException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'AccountLimitExceededException',
  'ServiceUnavailableException',
  'InternalServerException',
]);

/** Slack past the build's own limits: CodeBuild rounds the timeout up to whole minutes, and publish runs last. */
export const UPLOAD_FORM_MARGIN_S = 600;

/**
 * Makes a form that lets its holder upload one object of at most `maxBytes` at `key` with `contentType`, carrying
 * its SHA-256 (S3BlobStore.presignPost).
 */
export type PresignUpload = (key: string, contentType: string, expiresS: number, maxBytes: number) => Promise<UploadForm>;

export interface CodeBuildBuilderOptions {
  projectName: string;
  /**
   * Signs the build's upload forms. The signer's credentials need s3:PutObject on the keys (the dispatcher's role
   * has it under artifacts/ and logs/ only); the build itself gets only the forms.
   */
  presignUpload: PresignUpload;
  /** A ready client (tests); else one is made from `clientConfig` on first use. */
  client?: CodeBuildClient;
  clientConfig?: CodeBuildClientConfig;
  /** What the build's deps step may fetch (the service's allow-list and hex repository); unset: the build's defaults. */
  dependencies?: DependencyPolicy;
}

/** The build's limit in whole minutes, within what CodeBuild accepts (the build script enforces the exact seconds). */
export function timeoutMinutes(timeoutS: number): number {
  const { min, max } = CODEBUILD_TIMEOUT_MINUTES;
  return Math.min(max, Math.max(min, Math.ceil(timeoutS / 60)));
}

/**
 * How long a build's upload forms live: the build may wait BUILDER_QUEUE_LIMIT_S for a machine, then run timeoutS,
 * then publish, within S3's seven-day limit. Forms signed with temporary credentials (the Lambda role's, on AWS) also stop working when those
 * credentials expire, whatever X-Amz-Expires says; an upload refused then fails publish, so the build ends FAILED
 * rather than half-published.
 */
export function uploadFormExpiryS(timeoutS: number): number {
  return Math.min(S3_PRESIGN_MAX_S, timeoutS + BUILDER_QUEUE_LIMIT_S + UPLOAD_FORM_MARGIN_S);
}

export class CodeBuildBuilder implements Builder {
  private client: CodeBuildClient | undefined;

  constructor(private readonly options: CodeBuildBuilderOptions) {
    this.client = options.client;
  }

  /**
   * The presigned POST forms for the job's three outputs, as JSON by UPLOAD_FORM_ENV name: each is good for its own
   * key, Content-Type and size only, and only with the file's SHA-256, so a build (or code that takes over one) can
   * write nothing but its own files, and S3 stores nothing but the bytes the build hashed.
   */
  async uploadForms(job: BuildJob): Promise<Record<string, string>> {
    const keys = buildBlobKeys(job.buildId);
    const expiresS = uploadFormExpiryS(job.timeoutS);
    const outputs = Object.keys(UPLOAD_FORM_ENV) as (keyof typeof UPLOAD_FORM_ENV)[];
    const forms = await Promise.all(outputs.map((output) =>
      this.options.presignUpload(keys[output], OUTPUT_CONTENT_TYPES[output], expiresS, UPLOAD_MAX_BYTES[output])));
    return Object.fromEntries(outputs.map((output, i) => [UPLOAD_FORM_ENV[output], JSON.stringify(forms[i])]));
  }

  /**
   * The StartBuild request for a job: the contract's variables and the upload forms, all plain text. A form is a
   * capability, not a credential: it names the signer's access key id (and session token) but not its secret, so
   * it signs nothing else, and it is as visible as the build's own details (BatchGetBuilds, the build's events).
   */
  startBuildInput(job: BuildJob, uploadForms: Record<string, string>): StartBuildCommandInput {
    return {
      projectName: this.options.projectName,
      environmentVariablesOverride: Object.entries({
        ...buildEnvironment(job), ...(this.options.dependencies ? dependencyEnvironment(this.options.dependencies) : {}), ...uploadForms,
      }).map(([name, value]) => ({
        name, value, type: 'PLAINTEXT',
      })),
      timeoutInMinutesOverride: timeoutMinutes(job.timeoutS),
      // Bounded, so a build waiting for a machine ends (and is reported) before the reaper would call it lost.
      queuedTimeoutInMinutesOverride: BUILDER_QUEUE_LIMIT_S / 60,
      // The SDK's retries of this call (a lost answer) resend the same request, so CodeBuild returns the build the
      // first attempt started instead of starting a second one. A later start() signs new forms, which CodeBuild
      // would refuse as a parameter mismatch within the token's 5 minutes; a requeued build comes back only after
      // the queue's visibility timeout, past them.
      idempotencyToken: job.buildId,
    };
  }

  async start(job: BuildJob): Promise<{ builderId: string }> {
    const sdk = codeBuildSdk();
    this.client ??= new sdk.CodeBuildClient(this.options.clientConfig ?? {});
    // Signed before the try: a signing failure (no credentials) is not CodeBuild being busy.
    const input = this.startBuildInput(job, await this.uploadForms(job));
    let out;
    try {
      out = await this.client.send(new sdk.StartBuildCommand(input));
    } catch (error) {
      if (isBusy(error)) throw new BuilderBusyError(`CodeBuild is busy (${errorName(error)}): ${errorMessage(error)}`);
      throw error;
    }
    const builderId = out.build?.id;
    if (!builderId) throw new Error(`CodeBuild started no build for ${job.buildId} (StartBuild answered without a build id)`);
    return { builderId };
  }
}

function errorName(error: unknown): string {
  const name = (error as { name?: unknown } | null)?.name;
  return typeof name === 'string' ? name : 'Error';
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isBusy(error: unknown): boolean {
  if (BUSY_ERRORS.has(errorName(error))) return true;
  const e = error as { $fault?: unknown; $retryable?: unknown; $metadata?: { httpStatusCode?: number } } | null;
  // A 5xx CodeBuild did not name, or an error the SDK itself marks as worth retrying.
  return e?.$fault === 'server' || Boolean(e?.$retryable) || (e?.$metadata?.httpStatusCode ?? 0) >= 500;
}
