// The build pipeline: the build queue and its dead-letter queue, the CodeBuild project builds run on, the one that
// publishes the image's ERTS tarballs, and the workers of functions/routes.ts (dispatcher, completion handler,
// reaper) wired to their triggers.
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { Duration, IgnoreMode, Stack, Validations } from 'aws-cdk-lib';
import * as codebuild from 'aws-cdk-lib/aws-codebuild';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { parse as parseYaml } from 'yaml';
import type { BuilderState } from '#core/build-contract.js';
import { workers as workerTable, type Worker } from '#functions/routes.js';
import type { ServiceResources } from '../grants.js';
import { nagName } from '../nag-suppressions.js';
import { PROJECT_ROOT } from '../paths.js';
import { ServiceFunction, type ServiceSettings } from './service-function.js';

/** buildspec/: the buildspec CodeBuild runs, the scripts it calls and the builder image's Dockerfile. */
export const BUILDSPEC_DIR = join(PROJECT_ROOT, 'buildspec');
export const BUILDSPEC_NAME = 'buildspec.yml';
/**
 * The builder image is built from the repository root (the Dockerfile copies buildspec/*.mjs, buildspec/steps/*.mjs
 * and the contract's names they import), with only the files it copies in its context: the rest of the repository
 * (and buildspec.yml, read at synth) would only make a change elsewhere rebuild every OTP release.
 */
export const BUILDER_IMAGE_CONTEXT = [
  '*', '!buildspec/Dockerfile', '!buildspec/*.mjs', '!buildspec/steps/*.mjs', '!functions/core/build-contract-names.mjs',
];

/** The dispatcher's time limit; the queue's visibility timeout is a multiple of it. */
export const DISPATCHER_TIMEOUT = Duration.seconds(60);
/** AWS's advice for an SQS-triggered function: visibility >= 6x its timeout, so retries of a batch cannot overlap. */
export const VISIBILITY_TIMEOUT_FACTOR = 6;
/** Build requests the dispatcher gets per invocation; each is reported on its own (partial batch failures). */
export const DISPATCH_BATCH_SIZE = 5;
/** Concurrent dispatchers at most: bounds StartBuild calls and Data API transactions during a burst of requests. */
export const DISPATCH_MAX_CONCURRENCY = 5;
/** Deliveries before a build request moves to the dead-letter queue. */
export const MAX_RECEIVE_COUNT = 5;
/** How long dead letters (and undeliverable completion events) wait for someone to redrive them. */
export const DEAD_LETTER_RETENTION = Duration.days(14);
/** How often the reaper runs. */
export const REAP_INTERVAL = Duration.minutes(5);
/** How often a daily worker (the retention sweep) runs: retention is counted in days. */
export const DAILY_INTERVAL = Duration.days(1);

/** The CodeBuild states that end a build: each sends a "Build State Change" event to the completion worker. */
export const ENDED_BUILD_STATES = ['SUCCEEDED', 'FAILED', 'FAULT', 'TIMED_OUT', 'STOPPED'] as const satisfies readonly BuilderState[];

/** The only bucket prefix the ERTS project may write; package builds write nothing but through their upload URLs. */
export const ERTS_PREFIX = 'erts/';

/** What the ERTS project runs: publish alone (buildspec/build.mjs, ENOT_TASK=publish-erts), never package code. */
export const ERTS_BUILDSPEC = {
  version: '0.2',
  env: { shell: 'bash' },
  phases: {
    build: { commands: ['ENOT_TASK=publish-erts node "$ENOT_SCRIPTS/build.mjs" publish'] },
  },
} as const;

/** The ERTS project's time limit: uploading a few tarballs. */
export const ERTS_TIMEOUT = Duration.minutes(30);

/**
 * Where the builder image (buildspec/Dockerfile) keeps the build scripts and the OTP installations, given to
 * every build as ENOT_SCRIPTS and ENOT_OTP_INSTALLS (functions/core/build-contract.ts, RUNNER_ENV).
 */
export const BUILDER_IMAGE_PATHS = { scripts: '/opt/enot-builder', otpInstalls: '/opt/otp' } as const;

/** Each trigger's time limit for its worker. */
const WORKER_TIMEOUT: Record<Worker['trigger'], Duration> = {
  'build-queue': DISPATCHER_TIMEOUT,
  'build-events': Duration.seconds(60),
  schedule: Duration.seconds(120),
  // The retention sweep deletes objects one by one, in bounded batches (functions/workers/sweep-retention.ts).
  daily: Duration.minutes(10),
};

/** What invokes a worker, as its description and its alarms say it. */
export const WORKER_PURPOSE: Record<Worker['trigger'], string> = {
  'build-queue': 'consumes the build queue',
  'build-events': 'runs on CodeBuild build state changes',
  schedule: `runs every ${REAP_INTERVAL.toMinutes()} minutes`,
  daily: 'runs once a day',
};

export interface BuildPipelineProps {
  /** @default the `workers` of functions/routes.ts */
  workers?: readonly Worker[];
  /** The database, the bucket (builds upload into it) and the mail sender; the pipeline adds its queue and project. */
  resources: ServiceResources;
  /** The workers' runtime settings; `buildTimeoutS` is also the CodeBuild project's timeout. */
  settings: ServiceSettings & { buildTimeoutS: number };
  /** OTP releases the builder image carries (see builderOtpReleases). */
  otpReleases: readonly string[];
  /**
   * The directory holding buildspec.yml and the image's Dockerfile; the image is built from its parent with the
   * files BUILDER_IMAGE_CONTEXT lets in. @default buildspec/ of this repository
   */
  buildspecDir?: string;
}

/**
 * The Dockerfile's OTP_RELEASES build argument for the releases the deployment asks for. kerl builds only exact
 * releases ("26.2.5.6", "27.2"): those are passed as they are. Major releases ("25", the default) name what the
 * Dockerfile's own pinned list already carries, so nothing is passed; a release neither exact nor pinned throws,
 * rather than deploying an image without it.
 */
export function builderOtpReleases(otpReleases: readonly string[], dockerfile: string): string | undefined {
  if (otpReleases.every((r) => r.includes('.'))) return otpReleases.join(' ');
  const pinned = /^ARG\s+OTP_RELEASES="([^"]*)"/m.exec(dockerfile)?.[1].split(/\s+/).filter(Boolean) ?? [];
  const missing = otpReleases.filter((r) => !pinned.some((p) => p === r || p.startsWith(`${r}.`)));
  if (missing.length > 0) {
    throw new Error(
      `otpReleases ${missing.join(', ')} are not in the builder image: buildspec/Dockerfile pins ` +
      `${pinned.join(' ') || 'none'}. Give exact releases (e.g. 26.2.5.6,27.2) to build others.`,
    );
  }
  return undefined;
}

export class BuildPipeline extends Construct {
  /** Build ids to dispatch (the BuildQueue port's AWS side). */
  readonly queue: sqs.Queue;
  /** Where build requests go after MAX_RECEIVE_COUNT failed dispatches. */
  readonly deadLetterQueue: sqs.Queue;
  /** Completion events EventBridge could not deliver to the completion worker, or that it failed on after retries. */
  readonly eventDeadLetterQueue: sqs.Queue;
  /** Package builds: runs untrusted code, may write no S3 key (uploads go through the dispatcher's presigned URLs). */
  readonly project: codebuild.Project;
  readonly projectRole: iam.Role;
  readonly projectLogs: logs.LogGroup;
  /** `<stack>-erts`: uploads the image's ERTS tarballs under erts/, started by hand after an image change. */
  readonly ertsProject: codebuild.Project;
  readonly ertsProjectRole: iam.Role;
  /** One function per entry of the worker table, in table order. */
  readonly workers: { worker: Worker; handler: ServiceFunction }[] = [];
  /** CodeBuild "Build State Change" (ended states of both projects) -> the completion worker(s). */
  readonly completionRule?: events.Rule;
  /** Every REAP_INTERVAL -> the reaper(s). */
  readonly reapSchedule?: events.Rule;
  /** Every DAILY_INTERVAL -> the daily workers (the retention sweep). */
  readonly dailySchedule?: events.Rule;
  /** The resources the pipeline's functions are given: the props' plus the queue and the project. */
  readonly resources: ServiceResources;

  constructor(scope: Construct, id: string, props: BuildPipelineProps) {
    super(scope, id);
    const bucket = props.resources.bucket;
    if (!bucket) throw new Error('The build pipeline needs the bucket: builds upload their outputs and ERTS tarballs into it');
    const stackName = Stack.of(this).stackName;
    const buildTimeout = Duration.seconds(props.settings.buildTimeoutS);

    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetters', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: DEAD_LETTER_RETENTION,
    });
    this.queue = new sqs.Queue(this, 'Queue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(DISPATCHER_TIMEOUT.toSeconds() * VISIBILITY_TIMEOUT_FACTOR),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: MAX_RECEIVE_COUNT },
    });
    this.eventDeadLetterQueue = new sqs.Queue(this, 'EventDeadLetters', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: DEAD_LETTER_RETENTION,
    });
    Validations.of(this.eventDeadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        'This queue is itself a dead-letter queue: EventBridge puts here the completion events it could not deliver ' +
        'to the build-finished function, and Lambda those it failed on (no SQS redrive policy points at it).',
    });

    const dir = props.buildspecDir ?? BUILDSPEC_DIR;
    const image = this.builderImage(dir, props.otpReleases);
    ({ project: this.project, role: this.projectRole, logs: this.projectLogs } =
      this.packageProject(`${stackName}-builds`, image, buildTimeout, dir));
    ({ project: this.ertsProject, role: this.ertsProjectRole } = this.ertsPublishProject(`${stackName}-erts`, image, bucket));

    this.resources = { ...props.resources, queue: this.queue, buildProject: this.project };
    for (const worker of props.workers ?? workerTable) {
      const handler = new ServiceFunction(this, `Worker-${worker.name}`, {
        entry: worker.entry,
        functionName: `${stackName}-${worker.name}`,
        description: `${worker.entry}: ${WORKER_PURPOSE[worker.trigger]}`,
        grants: worker.grants,
        resources: this.resources,
        settings: props.settings,
        timeout: WORKER_TIMEOUT[worker.trigger],
      });
      this.workers.push({ worker, handler });
      const fn = handler.function;
      switch (worker.trigger) {
        case 'build-queue':
          fn.addEventSource(new SqsEventSource(this.queue, {
            batchSize: DISPATCH_BATCH_SIZE,
            reportBatchItemFailures: true,
            maxConcurrency: DISPATCH_MAX_CONCURRENCY,
          }));
          break;
        case 'build-events':
          // publish-erts builds too: build-finished records the releases a successful one uploaded.
          this.completionRule ??= new events.Rule(this, 'BuildEnded', {
            description: 'Builds of the package and ERTS projects that ended -> the completion worker',
            eventPattern: {
              source: ['aws.codebuild'],
              detailType: ['CodeBuild Build State Change'],
              detail: {
                'project-name': [this.project.projectName, this.ertsProject.projectName],
                'build-status': [...ENDED_BUILD_STATES],
              },
            },
          });
          this.completionRule.addTarget(this.completionTarget(fn));
          // EventBridge hands the event over once Lambda accepts it; a failing handler is retried by Lambda,
          // and what still fails is kept beside the undelivered events rather than dropped.
          fn.configureAsyncInvoke({
            retryAttempts: 2,
            maxEventAge: Duration.hours(6),
            onFailure: new SqsDestination(this.eventDeadLetterQueue),
          });
          break;
        case 'schedule':
          this.reapSchedule ??= new events.Rule(this, 'Reap', {
            description: `Every ${REAP_INTERVAL.toMinutes()} minutes -> the reaper`,
            schedule: events.Schedule.rate(REAP_INTERVAL),
          });
          // A missed run is made up by the next one, so a failed delivery is not retried for long.
          this.reapSchedule.addTarget(new targets.LambdaFunction(fn, { retryAttempts: 2, maxEventAge: Duration.minutes(4) }));
          break;
        case 'daily':
          this.dailySchedule ??= new events.Rule(this, 'Daily', {
            description: 'Once a day -> the retention sweep',
            schedule: events.Schedule.rate(DAILY_INTERVAL),
          });
          // The sweep is idempotent: a retried delivery redoes nothing, and a missed day is made up the next.
          this.dailySchedule.addTarget(new targets.LambdaFunction(fn, { retryAttempts: 2, maxEventAge: Duration.hours(1) }));
          break;
      }
    }
  }

  /** A lost completion leaves a build in flight until the reaper fails it, so delivery is retried, then kept. */
  private completionTarget(fn: lambda.IFunction): targets.LambdaFunction {
    return new targets.LambdaFunction(fn, {
      retryAttempts: 8,
      maxEventAge: Duration.hours(2),
      deadLetterQueue: this.eventDeadLetterQueue,
    });
  }

  /** The builder image, built from buildspec/Dockerfile by `cdk deploy` (synth only stages the directory, no Docker needed). */
  private builderImage(dir: string, otpReleases: readonly string[]): codebuild.IBuildImage {
    const dockerfile = join(dir, 'Dockerfile');
    if (!existsSync(dockerfile)) throw new Error(`The build pipeline needs ${dockerfile}`);
    const releases = builderOtpReleases(otpReleases, readFileSync(dockerfile, 'utf8'));
    return codebuild.LinuxBuildImage.fromAsset(this, 'Image', {
      directory: dirname(dir),
      file: join(basename(dir), 'Dockerfile'),
      ignoreMode: IgnoreMode.DOCKER,
      exclude: BUILDER_IMAGE_CONTEXT.map((p) => p.replace('buildspec/', `${basename(dir)}/`)),
      platform: Platform.LINUX_AMD64,
      ...(releases ? { buildArgs: { OTP_RELEASES: releases } } : {}),
    });
  }

  /**
   * A project role that may write its own log group (CodeBuild's construct adds that) and pull the image, plus
   * `statements`: nothing else (no database, no secret, no reading the bucket).
   */
  private projectRoleWith(id: string, description: string, statements: iam.PolicyStatement[]): iam.Role {
    const role = new iam.Role(this, id, { assumedBy: new iam.ServicePrincipal('codebuild.amazonaws.com'), description });
    for (const statement of statements) role.addToPrincipalPolicy(statement);
    return role;
  }

  /** At CodeBuild's default path, so the logging statement CodeBuild's construct always adds names this group only. */
  private projectLogGroup(id: string, projectName: string): logs.LogGroup {
    return new logs.LogGroup(this, id, { logGroupName: `/aws/codebuild/${projectName}`, retention: logs.RetentionDays.ONE_MONTH });
  }

  private packageProject(
    projectName: string, image: codebuild.IBuildImage, timeout: Duration, dir: string,
  ): { project: codebuild.Project; role: iam.Role; logs: logs.LogGroup } {
    const file = join(dir, BUILDSPEC_NAME);
    if (!existsSync(file)) throw new Error(`The build pipeline needs ${file}`);
    const buildSpec = parseYaml(readFileSync(file, 'utf8')) as Record<string, unknown>;
    const logGroup = this.projectLogGroup('BuildLogs', projectName);
    // Builds run untrusted package code: the role writes the build's log and pulls the image, nothing else. A build
    // uploads its outputs through the presigned URLs the dispatcher gives it, each for one of its own keys.
    const role = this.projectRoleWith('BuildRole', 'Runs package builds: no S3, no database, no secret (uploads go through presigned URLs)', []);

    const project = new codebuild.Project(this, 'Project', {
      projectName,
      description: 'Builds one Erlang package version on one OTP release (buildspec/buildspec.yml)',
      role,
      // No source: the buildspec clones the requested ref itself, from the job's environment.
      buildSpec: codebuild.BuildSpec.fromObjectToYaml(buildSpec),
      environment: {
        buildImage: image,
        computeType: codebuild.ComputeType.SMALL,
        // Lets bubblewrap make its namespaces: the package's own code (compile, dependency fetching) then runs
        // without capabilities, in its own PID namespace (it cannot read the parent's environment, which holds
        // this build's upload URLs) and, for the compile, without network. Unprivileged, it would run bare.
        privileged: true,
        environmentVariables: {
          ENOT_SCRIPTS: { value: BUILDER_IMAGE_PATHS.scripts },
          ENOT_OTP_INSTALLS: { value: BUILDER_IMAGE_PATHS.otpInstalls },
        },
      },
      timeout,
      logging: { cloudWatch: { logGroup } },
      grantReportGroupPermissions: false,
    });
    this.acknowledgeProjectFindings(project, role);
    return { project, role, logs: logGroup };
  }

  /**
   * The ERTS project: the same image, publish-erts only (a fixed inline buildspec, no job, no package code), so the
   * one role that may write erts/ never runs anything from a package. ENOT_TASK is a project variable, so the
   * "Build State Change" event lists it and build-finished knows the build for a publish-erts one.
   */
  private ertsPublishProject(
    projectName: string, image: codebuild.IBuildImage, bucket: s3.IBucket,
  ): { project: codebuild.Project; role: iam.Role } {
    const logGroup = this.projectLogGroup('ErtsLogs', projectName);
    const role = this.projectRoleWith('ErtsRole', `Publishes the builder image's ERTS tarballs: uploads under ${ERTS_PREFIX} only`, [
      new iam.PolicyStatement({ actions: ['s3:PutObject'], resources: [bucket.arnForObjects(`${ERTS_PREFIX}*`)] }),
    ]);
    const project = new codebuild.Project(this, 'ErtsProject', {
      projectName,
      description: 'Uploads the ERTS tarballs of the builder image to erts/ (publish-erts); runs no package code',
      role,
      buildSpec: codebuild.BuildSpec.fromObjectToYaml(ERTS_BUILDSPEC),
      environment: {
        buildImage: image,
        computeType: codebuild.ComputeType.SMALL,
        privileged: false,
        environmentVariables: {
          ENOT_TASK: { value: 'publish-erts' },
          ENOT_UPLOAD_BUCKET: { value: bucket.bucketName },
          ENOT_SCRIPTS: { value: BUILDER_IMAGE_PATHS.scripts },
        },
      },
      timeout: ERTS_TIMEOUT,
      logging: { cloudWatch: { logGroup } },
      grantReportGroupPermissions: false,
    });
    this.acknowledgeProjectFindings(project, role);
    Validations.of(role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${nagName(role, bucket.arnForObjects(`${ERTS_PREFIX}*`))}]`,
      reason:
        'The tarballs go to erts/<release>/erts-<vsn>.tar for the releases the image carries, known only when the ' +
        'image is built, and the index to erts/index.jsonl: PutObject covers erts/ and nothing else in the bucket.',
    });
    return { project, role };
  }

  private acknowledgeProjectFindings(project: codebuild.Project, role: iam.Role): void {
    Validations.of(project).acknowledge({
      id: 'AwsSolutions-CB4',
      reason:
        'The project produces no CodeBuild artifacts (a build uploads its outputs to the SSE-S3 bucket itself), ' +
        'so a customer KMS key would encrypt nothing; the AWS-managed key covers what CodeBuild stores.',
    });
    Validations.of(project).acknowledge({
      id: 'AwsSolutions-CB5',
      reason:
        'Builds need kerl-built OTP releases, enot and rebar3, which no CodeBuild-managed image carries; the image ' +
        'is built from buildspec/Dockerfile in this repository and reviewed with it.',
    });
    Validations.of(role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${nagName(role, `${logGroupArnPrefix(project)}:*`)}]`,
      reason:
        'The logging statement CodeBuild adds to every project role: it names this project\'s own log group ' +
        '(made above at that path, with a retention) and the streams in it, one per build.',
    });
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'ecr:GetAuthorizationToken, to pull the builder image, has no resource-level permissions; the pull itself ' +
        'is granted on the asset repository alone.',
    });
  }
}

/** The ARN of CodeBuild's default log group of `project`, as the construct's logging statement spells it. */
function logGroupArnPrefix(project: codebuild.Project): string {
  const stack = Stack.of(project);
  return `arn:${stack.partition}:logs:${stack.region}:${stack.account}:log-group:/aws/codebuild/${project.projectName}`;
}
