// The stack that computes: the API and its functions, mail, monitoring (and, with its issue, the build pipeline).
// It holds no data, so it can be redeployed or replaced freely.
import { Annotations, CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { routes as routeTable, type Route } from '#functions/routes.js';
import { Api, type ThrottlingByKind } from './constructs/api.js';
import { Mail } from './constructs/mail.js';
import { Monitoring } from './constructs/monitoring.js';
import type { ServiceResources } from './constructs/service-function.js';
import { resolveServiceOptions, type ServiceOptions, type ServiceOptionsInput } from './options.js';
import type { StatefulExports } from './stateful-stack.js';

export interface StatelessStackProps extends StackProps, Omit<ServiceOptionsInput, 'bucketAccessLogs'> {
  /** The stateful stack's exports. */
  data: StatefulExports;
  /** @default functions/routes.ts */
  routes?: readonly Route[];
  throttling?: ThrottlingByKind;
}

export class StatelessStack extends Stack {
  readonly options: ServiceOptions;
  readonly api: Api;
  readonly monitoring: Monitoring;
  readonly mail?: Mail;

  constructor(scope: Construct, id: string, props: StatelessStackProps) {
    super(scope, id, props);
    const { data, routes = routeTable, throttling, ...input } = props;
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
    };

    // The build pipeline goes here, as one construct, before the API (build routes send to its queue):
    //   const builds = new BuildPipeline(this, 'Builds', { resources, mail: this.mail, options });
    //   this.monitoring.watchQueue(builds.queue, builds.deadLetterQueue);
    // and the API below gets { ...resources, queue: builds.queue } (ServiceResources gains `queue`, GRANTS its
    // 'queue:send' statement).

    this.api = new Api(this, 'Api', {
      routes,
      resources,
      throttling,
      customDomain: options.customDomain,
      settings: {
        defaultErlVersion: options.defaultOtpRelease,
        allowedCloneUrls: options.allowedCloneUrls,
        logLevel: options.logLevel,
      },
    });

    const watched = this.api.functions.map(({ route, handler }) => ({
      name: route.name,
      purpose: `${route.method} ${route.path}`,
      function: handler.function,
    }));
    this.monitoring.watchApi(this.api.restApi);
    this.monitoring.watchFunctions(watched);
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
    new CfnOutput(this, 'AlarmTopicArn', { value: this.monitoring.topic.topicArn });
    new CfnOutput(this, 'DashboardName', { value: this.monitoring.dashboard.dashboardName });
  }
}
