// Alarms (each to one SNS topic, each saying what it means and what to do) and the service dashboard.
// Each watch* method adds the alarms and dashboard row of one concern, so the build pipeline adds its own.
import { Duration, Stack } from 'aws-cdk-lib';
import type * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as cw from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { BUILD_METRICS, METRICS_DIMENSIONS, METRICS_NAMESPACE, STUCK_BUILDS_METRIC } from '../metrics.js';

export interface MonitoringProps {
  /** Gets every alarm and its recovery; unset leaves the topic without subscribers. */
  alarmEmail?: string;
}

export interface WatchedFunction {
  /** Short name used in alarm names, e.g. the route name. */
  name: string;
  /** What the function serves, e.g. "GET /search", for the alarm text. */
  purpose: string;
  function: lambda.IFunction;
}

/** Fewest requests in 5 minutes for the 5xx rate to mean anything. */
export const API_5XX_MIN_REQUESTS = 5;
/** Fewest finished builds in an hour for the failure rate to mean anything. */
export const BUILD_FAILURE_MIN_BUILDS = 5;
/** A build request older than this in the queue means nothing is dispatching. */
export const QUEUE_MAX_AGE = Duration.minutes(15);

/** One of the service's own metrics (published through Powertools, hence the service dimension). */
function custom(metricName: string, period: Duration, statistic: string = cw.Stats.SUM, label?: string): cw.Metric {
  return new cw.Metric({ namespace: METRICS_NAMESPACE, metricName, dimensionsMap: METRICS_DIMENSIONS, period, statistic, label });
}

export class Monitoring extends Construct {
  readonly topic: sns.Topic;
  readonly dashboard: cw.Dashboard;
  readonly alarms: cw.Alarm[] = [];
  private readonly prefix: string;

  constructor(scope: Construct, id: string, props: MonitoringProps = {}) {
    super(scope, id);
    this.prefix = Stack.of(this).stackName;
    this.topic = new sns.Topic(this, 'Alarms', { displayName: 'enot-builder alarms', enforceSSL: true });
    if (props.alarmEmail) this.topic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
    this.dashboard = new cw.Dashboard(this, 'Dashboard', { dashboardName: this.prefix });
  }

  /** An alarm that notifies the topic when it fires and when it recovers. */
  private alarm(id: string, props: cw.AlarmProps): cw.Alarm {
    const alarm = new cw.Alarm(this, id, {
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
      ...props,
      alarmName: `${this.prefix}-${props.alarmName}`,
    });
    alarm.addAlarmAction(new actions.SnsAction(this.topic));
    alarm.addOkAction(new actions.SnsAction(this.topic));
    this.alarms.push(alarm);
    return alarm;
  }

  /** Errors and throttles of each function, and a dashboard row with their errors, throttles and duration. */
  watchFunctions(functions: readonly WatchedFunction[]): void {
    const fiveMinutes = { period: Duration.minutes(5), statistic: cw.Stats.SUM };
    for (const { name, purpose, function: fn } of functions) {
      this.alarm(`${name}-Errors`, {
        alarmName: `${name}-errors`,
        alarmDescription:
          `The ${name} function (${purpose}) ended invocations with an unhandled error, a timeout or out of memory. ` +
          'Handlers answer expected failures themselves, so this is a bug or a failing dependency (Data API, S3). ' +
          `Do: open the function's log group, filter on ERROR or "Task timed out", fix or roll back the deploy.`,
        metric: fn.metricErrors(fiveMinutes),
        threshold: 0,
        comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
      });
      this.alarm(`${name}-Throttles`, {
        alarmName: `${name}-throttles`,
        alarmDescription:
          `Lambda refused invocations of the ${name} function (${purpose}) for lack of concurrency; callers got errors. ` +
          'Do: check the account\'s concurrent executions (Lambda console, Concurrency) for a spike or a runaway ' +
          'function; request a higher concurrency quota or lower the API throttling.',
        metric: fn.metricThrottles(fiveMinutes),
        threshold: 0,
        comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
      });
    }
    this.dashboard.addWidgets(
      new cw.GraphWidget({
        title: 'Function errors',
        left: functions.map((f) => f.function.metricErrors({ ...fiveMinutes, label: f.name })),
        width: 8,
      }),
      new cw.GraphWidget({
        title: 'Function throttles',
        left: functions.map((f) => f.function.metricThrottles({ ...fiveMinutes, label: f.name })),
        width: 8,
      }),
      new cw.GraphWidget({
        title: 'Function duration p90 (ms)',
        left: functions.map((f) =>
          f.function.metricDuration({ period: Duration.minutes(5), statistic: cw.Stats.p(90), label: f.name })),
        width: 8,
      }),
    );
  }

  /** The 5xx rate alarm of the API, and a dashboard row with its requests, latency and errors. */
  watchApi(api: apigw.RestApi): void {
    const fiveMinutes = { period: Duration.minutes(5), statistic: cw.Stats.SUM };
    const requests = api.metricCount(fiveMinutes);
    const serverErrors = api.metricServerError(fiveMinutes);
    this.alarm('Api5xxRate', {
      alarmName: 'api-5xx-rate',
      alarmDescription:
        `More than 1% of API requests in 5 minutes (at least ${API_5XX_MIN_REQUESTS}) were answered 5xx: enot clients ` +
        'see failures. Do: find the route in the API access log (status 5xx), then read that function\'s log; ' +
        'the function error and throttle alarms and Aurora (Data API errors, capacity) are the usual causes.',
      metric: new cw.MathExpression({
        label: '5xx % of requests',
        expression: `IF(FILL(requests, 0) >= ${API_5XX_MIN_REQUESTS}, 100 * FILL(errors, 0) / FILL(requests, 1), 0)`,
        usingMetrics: { requests, errors: serverErrors },
        period: Duration.minutes(5),
      }),
      threshold: 1,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
    });
    this.dashboard.addWidgets(
      new cw.GraphWidget({ title: 'API requests', left: [requests], width: 8 }),
      new cw.GraphWidget({
        title: 'API latency (ms)',
        left: [cw.Stats.p(50), cw.Stats.p(90), cw.Stats.p(99)].map((statistic) =>
          api.metricLatency({ period: Duration.minutes(5), statistic, label: `latency ${statistic}` })),
        right: [api.metricIntegrationLatency({ period: Duration.minutes(5), statistic: cw.Stats.p(90) })],
        width: 8,
      }),
      new cw.GraphWidget({
        title: 'API errors',
        left: [api.metricClientError(fiveMinutes), serverErrors],
        width: 8,
      }),
    );
  }

  /** Build outcome alarms (failure rate, stuck builds) from the pipeline's custom metrics, and their dashboard row. */
  watchBuilds(): void {
    const build = custom;
    const hour = Duration.hours(1);
    const failedHourly = build(BUILD_METRICS.failed, hour);
    const succeededHourly = build(BUILD_METRICS.succeeded, hour);
    this.alarm('BuildFailureRate', {
      alarmName: 'build-failure-rate',
      alarmDescription:
        `More than half of the builds finished in the last hour failed (at least ${BUILD_FAILURE_MIN_BUILDS} builds). ` +
        'Packages rarely all break at once: suspect the builder image, a missing OTP release or GitHub being ' +
        'unreachable. Do: read a few failed logs (GET /build_log?build_id=...) and the CodeBuild project\'s recent ' +
        'builds, fix the image or buildspec, then rebuild the failed versions.',
      metric: new cw.MathExpression({
        label: 'failed % of finished builds',
        expression:
          `IF(FILL(succeeded, 0) + FILL(failed, 0) >= ${BUILD_FAILURE_MIN_BUILDS}, ` +
          '100 * FILL(failed, 0) / (FILL(succeeded, 0) + FILL(failed, 0)), 0)',
        usingMetrics: { succeeded: succeededHourly, failed: failedHourly },
        period: hour,
      }),
      threshold: 50,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
    });
    const stuck = build(STUCK_BUILDS_METRIC, Duration.minutes(15), cw.Stats.MAXIMUM);
    this.alarm('StuckBuilds', {
      alarmName: 'stuck-builds',
      alarmDescription:
        'The reaper found builds still starting or running past the build timeout and failed them. Builds are being ' +
        'started but their completion is lost. Do: check the dispatcher\'s errors, the EventBridge rule for CodeBuild ' +
        'state changes and the build-finished function\'s errors; users can rebuild the failed versions.',
      metric: stuck,
      threshold: 0,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
    });
    const fiveMinutes = Duration.minutes(5);
    this.dashboard.addWidgets(
      new cw.GraphWidget({
        title: 'Builds',
        left: [
          build(BUILD_METRICS.queued, fiveMinutes, cw.Stats.SUM, 'queued'),
          build(BUILD_METRICS.succeeded, fiveMinutes, cw.Stats.SUM, 'succeeded'),
          build(BUILD_METRICS.failed, fiveMinutes, cw.Stats.SUM, 'failed'),
        ],
        width: 8,
      }),
      new cw.GraphWidget({
        title: 'Build duration (ms)',
        left: [
          build(BUILD_METRICS.duration, fiveMinutes, cw.Stats.AVERAGE, 'average'),
          build(BUILD_METRICS.duration, fiveMinutes, cw.Stats.p(90), 'p90'),
        ],
        width: 8,
      }),
      new cw.GraphWidget({ title: 'Stuck builds (reaper)', left: [stuck.with({ label: 'stuck builds' })], width: 8 }),
    );
  }

  /** Packages and ERTS tarballs served, as the download routes count them. */
  watchDownloads(): void {
    const period = Duration.minutes(5);
    this.dashboard.addWidgets(new cw.GraphWidget({
      title: 'Downloads',
      left: [
        custom(BUILD_METRICS.downloads, period, cw.Stats.SUM, 'packages'),
        custom(BUILD_METRICS.ertsDownloads, period, cw.Stats.SUM, 'ERTS'),
      ],
      width: 24,
    }));
  }

  /**
   * The build queue's alarms: anything in the dead-letter queue, and the oldest waiting request. Called by the
   * build pipeline once its queue exists.
   */
  watchQueue(queue: sqs.IQueue, deadLetterQueue: sqs.IQueue): void {
    const fiveMinutes = Duration.minutes(5);
    const dead = deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: fiveMinutes, statistic: cw.Stats.MAXIMUM });
    const oldest = queue.metricApproximateAgeOfOldestMessage({ period: fiveMinutes, statistic: cw.Stats.MAXIMUM });
    this.alarm('DeadLetters', {
      alarmName: 'build-queue-dead-letters',
      alarmDescription:
        'Build requests failed dispatch repeatedly and were moved to the dead-letter queue; those builds stay queued. ' +
        'Do: read the dispatcher\'s log for the error, fix it, then redrive the dead-letter queue to the build queue ' +
        '(SQS console, Start DLQ redrive).',
      metric: dead,
      threshold: 0,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
    });
    this.alarm('QueueAge', {
      alarmName: 'build-queue-age',
      alarmDescription:
        `The oldest build request has waited more than ${QUEUE_MAX_AGE.toMinutes()} minutes: nothing is dispatching. ` +
        'Do: check the dispatcher\'s errors and throttles and CodeBuild\'s concurrent-build quota; the queue drains ' +
        'by itself once the dispatcher runs again.',
      metric: oldest,
      threshold: QUEUE_MAX_AGE.toSeconds(),
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
    });
    this.dashboard.addWidgets(
      new cw.GraphWidget({ title: 'Build queue: oldest request (s)', left: [oldest], width: 12 }),
      new cw.GraphWidget({ title: 'Build queue: dead letters', left: [dead], width: 12 }),
    );
  }

  /**
   * Anything in the queue of CodeBuild completion events that were not handled (undeliverable, or failing after
   * Lambda's retries): those builds stay in flight until the reaper fails them.
   */
  watchEventDeadLetters(queue: sqs.IQueue): void {
    const dead = queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: cw.Stats.MAXIMUM });
    this.alarm('EventDeadLetters', {
      alarmName: 'build-events-dead-letters',
      alarmDescription:
        'CodeBuild completion events were not handled: EventBridge could not deliver them to the build-finished ' +
        'function, or it kept failing on them. Those builds stay running until the reaper fails them. Do: read ' +
        'the messages (the ERROR_CODE attribute, or the failure record\'s responsePayload) and the function\'s ' +
        'log; once fixed, rebuild the affected versions and purge the queue.',
      metric: dead,
      threshold: 0,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
    });
    this.dashboard.addWidgets(new cw.GraphWidget({ title: 'Undelivered build events', left: [dead], width: 24 }));
  }
}
