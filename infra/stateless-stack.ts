// The stack that computes: the API and its functions, the build pipeline, mail, monitoring.
// It holds no data, so it can be redeployed or replaced freely.
import { Annotations, CfnOutput, Lazy, Stack, type StackProps } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { routes as routeTable, type Route, type Worker } from '#functions/routes.js';
import { Api, type ThrottlingByKind } from './constructs/api.js';
import { BuildPipeline, WORKER_PURPOSE } from './constructs/build-pipeline.js';
import { Mail } from './constructs/mail.js';
import { Monitoring } from './constructs/monitoring.js';
import type { ServiceSettings } from './constructs/service-function.js';
import type { ServiceResources } from './grants.js';
import { resolveServiceOptions, type ServiceOptions, type ServiceOptionsInput } from './options.js';
import type { StatefulExports } from './stateful-stack.js';

export interface StatelessStackProps extends StackProps, Omit<ServiceOptionsInput, 'bucketAccessLogs'> {
  /** The stateful stack's exports. */
  data: StatefulExports;
  /** @default functions/routes.ts */
  routes?: readonly Route[];
  /** @default the workers of functions/routes.ts */
  workers?: readonly Worker[];
  /** The buildspec and the builder image's context. @default buildspec/ of this repository */
  buildspecDir?: string;
  throttling?: ThrottlingByKind;
}

export class StatelessStack extends Stack {
  readonly options: ServiceOptions;
  readonly api: Api;
  readonly builds: BuildPipeline;
  readonly monitoring: Monitoring;
  readonly mail?: Mail;

  constructor(scope: Construct, id: string, props: StatelessStackProps) {
    super(scope, id, props);
    const { data, routes = routeTable, workers, buildspecDir, throttling, ...input } = props;
    this.options = resolveServiceOptions(input);
    const options = this.options;

    this.monitoring = new Monitoring(this, 'Monitoring', { alarmEmail: options.alarmEmail });
    if (options.senderEmail) {
      this.mail = new Mail(this, 'Mail', { senderEmail: options.senderEmail });
    } else {
      Annotations.of(this).addWarningV2('enot:no-sender-email',
        'No senderEmail in context: no SES identity is made and build-result emails stay off.');
    }

    const resources: ServiceResources = {
      database: data.database,
      bucket: s3.Bucket.fromBucketAttributes(this, 'Bucket', { bucketArn: data.bucketArn, bucketName: data.bucketName }),
      webhookSecret: secretsmanager.Secret.fromSecretCompleteArn(this, 'WebhookSecret', data.webhookSecretArn),
      adminTokensSecret: secretsmanager.Secret.fromSecretCompleteArn(this, 'AdminTokensSecret', data.adminTokensSecretArn),
      signingKey: kms.Key.fromKeyArn(this, 'SigningKey', data.signingKeyArn),
      mailSender: this.mail
        ? { address: this.mail.senderEmail, identityArn: this.mail.identity.emailIdentityArn }
        : null,
    };
    const settings: Omit<ServiceSettings, 'publicUrl'> & { buildTimeoutS: number } = {
      defaultErlVersion: options.defaultOtpRelease,
      allowedCloneUrls: options.allowedCloneUrls,
      logLevel: options.logLevel,
      buildTimeoutS: options.buildTimeoutMinutes * 60,
    };

    // Before the API, whose build routes send to its queue. Its workers link to the API's public URL (result
    // emails), which exists only once the API does; resolved at synth, it is a plain reference in the template.
    this.builds = new BuildPipeline(this, 'Builds', {
      workers,
      resources,
      settings: { ...settings, publicUrl: Lazy.string({ produce: () => this.api.publicUrl }) },
      otpReleases: options.otpReleases,
      buildspecDir,
    });

    this.api = new Api(this, 'Api', {
      routes,
      resources: this.builds.resources,
      throttling,
      customDomain: options.customDomain,
      settings,
    });

    const watched = [
      ...this.api.functions.map(({ route, handler }) => ({
        name: route.name,
        purpose: `${route.method} ${route.path}`,
        function: handler.function,
      })),
      ...this.builds.workers.map(({ worker, handler }) => ({
        name: worker.name,
        purpose: WORKER_PURPOSE[worker.trigger],
        function: handler.function,
      })),
    ];
    this.monitoring.watchApi(this.api.restApi);
    this.monitoring.watchFunctions(watched);
    this.monitoring.watchQueue(this.builds.queue, this.builds.deadLetterQueue);
    this.monitoring.watchEventDeadLetters(this.builds.eventDeadLetterQueue);
    this.monitoring.watchBuilds();
    this.monitoring.watchDownloads();

    new CfnOutput(this, 'ApiUrl', { value: this.api.restApi.url });
    new CfnOutput(this, 'PublicUrl', { value: this.api.publicUrl });
    if (this.api.customDomainTarget) {
      new CfnOutput(this, 'CustomDomainTarget', {
        value: this.api.customDomainTarget,
        description: 'Point DNS for the custom domain here (when no hosted zone was given)',
      });
    }
    new CfnOutput(this, 'BuildProjectName', { value: this.builds.project.projectName });
    new CfnOutput(this, 'ErtsProjectName', {
      value: this.builds.ertsProject.projectName,
      description: 'Start a build of it after each deploy that changed the builder image, to publish its ERTS tarballs',
    });
    new CfnOutput(this, 'BuildQueueUrl', { value: this.builds.queue.queueUrl });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.monitoring.topic.topicArn });
    new CfnOutput(this, 'DashboardName', { value: this.monitoring.dashboard.dashboardName });
  }
}
