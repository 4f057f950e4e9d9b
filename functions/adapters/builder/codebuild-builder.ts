// The Builder on CodeBuild (AWS runtime): one StartBuild per build, the job passed as environment overrides.
// The end of a build comes back as an EventBridge event (codebuild-events.ts). The SDK is loaded on first use.
import type { CodeBuildClient, CodeBuildClientConfig, StartBuildCommandInput } from '@aws-sdk/client-codebuild';
import { BUILDER_QUEUE_LIMIT_S, buildEnvironment } from '#core/build-contract.js';
import { BuilderBusyError, type BuildJob, type Builder } from '#core/ports.js';
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

export interface CodeBuildBuilderOptions {
  projectName: string;
  /** A ready client (tests); else one is made from `clientConfig` on first use. */
  client?: CodeBuildClient;
  clientConfig?: CodeBuildClientConfig;
}

/** The build's limit in whole minutes, within what CodeBuild accepts (the build script enforces the exact seconds). */
export function timeoutMinutes(timeoutS: number): number {
  const { min, max } = CODEBUILD_TIMEOUT_MINUTES;
  return Math.min(max, Math.max(min, Math.ceil(timeoutS / 60)));
}

export class CodeBuildBuilder implements Builder {
  private client: CodeBuildClient | undefined;

  constructor(private readonly options: CodeBuildBuilderOptions) {
    this.client = options.client;
  }

  /** The StartBuild request for a job: only the contract's variables, all plain text (a job carries no secret). */
  startBuildInput(job: BuildJob): StartBuildCommandInput {
    return {
      projectName: this.options.projectName,
      environmentVariablesOverride: Object.entries(buildEnvironment(job)).map(([name, value]) => ({
        name, value, type: 'PLAINTEXT',
      })),
      timeoutInMinutesOverride: timeoutMinutes(job.timeoutS),
      // Bounded, so a build waiting for a machine ends (and is reported) before the reaper would call it lost.
      queuedTimeoutInMinutesOverride: BUILDER_QUEUE_LIMIT_S / 60,
      // A retry within CodeBuild's 5-minute token window (a lost answer, a requeue) returns the build the
      // first call started instead of starting a second one.
      idempotencyToken: job.buildId,
    };
  }

  async start(job: BuildJob): Promise<{ builderId: string }> {
    const sdk = codeBuildSdk();
    this.client ??= new sdk.CodeBuildClient(this.options.clientConfig ?? {});
    let out;
    try {
      out = await this.client.send(new sdk.StartBuildCommand(this.startBuildInput(job)));
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
