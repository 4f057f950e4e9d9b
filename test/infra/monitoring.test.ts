// Alarms and dashboard: every alarm the runbook lists exists, notifies the topic, and says what to do.
import { Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { beforeAll, describe, expect, it } from 'vitest';
import { routes, workers } from '#functions/routes.js';
import { Monitoring } from '../../infra/constructs/monitoring.js';
import { resourcesOf, synthApp, unbundledApp } from './app-fixture.js';

type Alarm = { Properties: Record<string, any> };

let template: Template;
let alarms: Record<string, Alarm>;
let topicId: string;

beforeAll(() => {
  template = synthApp({ alarmEmail: 'ops@example.org' }).serviceTemplate;
  alarms = Object.fromEntries(
    Object.values(resourcesOf(template, 'AWS::CloudWatch::Alarm')).map((a) => [a.Properties!.AlarmName as string, a as Alarm]),
  );
  const topics = Object.keys(resourcesOf(template, 'AWS::SNS::Topic'));
  expect(topics).toHaveLength(1);
  topicId = topics[0];
});

function expectNotifiesTopic(alarm: Alarm) {
  expect(alarm.Properties.AlarmActions).toEqual([{ Ref: topicId }]);
  expect(alarm.Properties.OKActions).toEqual([{ Ref: topicId }]);
}

function expectExplained(alarm: Alarm) {
  const description = alarm.Properties.AlarmDescription as string;
  expect(description.length).toBeGreaterThan(80);
  expect(description).toMatch(/Do: /);
}

/** The metric math expression of an alarm, and the metric names it reads. */
function mathOf(alarm: Alarm): { expression: string; metrics: string[] } {
  const queries = alarm.Properties.Metrics as { Expression?: string; MetricStat?: { Metric: { MetricName: string } } }[];
  return {
    expression: queries.find((q) => q.Expression)!.Expression!,
    metrics: queries.flatMap((q) => (q.MetricStat ? [q.MetricStat.Metric.MetricName] : [])),
  };
}

describe('alarms', () => {
  it('watches errors and throttles of every route and worker function', () => {
    for (const route of [...routes, ...workers]) {
      for (const [suffix, metric] of [['errors', 'Errors'], ['throttles', 'Throttles']] as const) {
        const alarm = alarms[`EnotBuilderService-${route.name}-${suffix}`];
        expect(alarm, `${route.name} ${suffix}`).toBeDefined();
        expect(alarm.Properties).toMatchObject({
          MetricName: metric, Namespace: 'AWS/Lambda', Threshold: 0, ComparisonOperator: 'GreaterThanThreshold',
          TreatMissingData: 'notBreaching',
        });
        expect(alarm.Properties.Dimensions).toEqual([{ Name: 'FunctionName', Value: { Ref: expect.stringMatching(/Function/) } }]);
        expectNotifiesTopic(alarm);
        expectExplained(alarm);
      }
    }
  });

  it('alarms on an API 5xx rate above 1% over 5 minutes', () => {
    const alarm = alarms['EnotBuilderService-api-5xx-rate'];
    expect(alarm.Properties).toMatchObject({ Threshold: 1, ComparisonOperator: 'GreaterThanThreshold', EvaluationPeriods: 1 });
    const { expression, metrics } = mathOf(alarm);
    expect(metrics.sort()).toEqual(['5XXError', 'Count']);
    expect(expression).toContain('100 * FILL(errors, 0) / FILL(requests, 1)');
    const periods = (alarm.Properties.Metrics as { MetricStat?: { Period: number } }[]).flatMap((q) => (q.MetricStat ? [q.MetricStat.Period] : []));
    expect(periods).toEqual([300, 300]);
    expectNotifiesTopic(alarm);
    expectExplained(alarm);
  });

  it('alarms when more than half of an hour\'s builds failed, given a minimum of builds', () => {
    const alarm = alarms['EnotBuilderService-build-failure-rate'];
    expect(alarm.Properties).toMatchObject({ Threshold: 50, ComparisonOperator: 'GreaterThanThreshold' });
    const { expression, metrics } = mathOf(alarm);
    expect(metrics.sort()).toEqual(['BuildsFailed', 'BuildsSucceeded']);
    expect(expression).toMatch(/>= 5/);
    const stats = (alarm.Properties.Metrics as { MetricStat?: { Period: number; Metric: { Namespace: string; Dimensions: unknown } } }[])
      .flatMap((q) => (q.MetricStat ? [q.MetricStat] : []));
    for (const stat of stats) {
      expect(stat.Period).toBe(3600);
      expect(stat.Metric.Namespace).toBe('EnotBuilder');
      // Powertools publishes with the service dimension; an alarm without it would never see data.
      expect(stat.Metric.Dimensions).toEqual([{ Name: 'service', Value: 'enot-builder' }]);
    }
    expectNotifiesTopic(alarm);
    expectExplained(alarm);
  });

  it('alarms on any stuck build the reaper reports', () => {
    const alarm = alarms['EnotBuilderService-stuck-builds'];
    expect(alarm.Properties).toMatchObject({
      Namespace: 'EnotBuilder', MetricName: 'StuckBuilds', Threshold: 0, ComparisonOperator: 'GreaterThanThreshold',
      Dimensions: [{ Name: 'service', Value: 'enot-builder' }],
    });
    expectNotifiesTopic(alarm);
    expectExplained(alarm);
  });

  it('alarms on the build pipeline\'s queues: dead letters, the oldest request, undelivered completion events', () => {
    const queues = resourcesOf(template, 'AWS::SQS::Queue');
    const queueOf = (alarm: Alarm) => (alarm.Properties.Dimensions as { Value: { 'Fn::GetAtt': [string, string] } }[])[0].Value['Fn::GetAtt'][0];
    const [buildQueue] = Object.entries(queues).filter(([, q]) => q.Properties?.RedrivePolicy);
    const deadLetterQueue = (buildQueue[1].Properties!.RedrivePolicy.deadLetterTargetArn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    const rules = Object.values(resourcesOf(template, 'AWS::Events::Rule'));
    const eventDeadLetterQueues = rules.flatMap((r) => (r.Properties!.Targets as { DeadLetterConfig?: { Arn: { 'Fn::GetAtt': [string, string] } } }[])
      .flatMap((t) => (t.DeadLetterConfig ? [t.DeadLetterConfig.Arn['Fn::GetAtt'][0]] : [])));
    expect(eventDeadLetterQueues).toHaveLength(1);

    const dead = alarms['EnotBuilderService-build-queue-dead-letters'];
    expect(dead.Properties).toMatchObject({ MetricName: 'ApproximateNumberOfMessagesVisible', Threshold: 0, ComparisonOperator: 'GreaterThanThreshold' });
    expect(queueOf(dead)).toBe(deadLetterQueue);
    const age = alarms['EnotBuilderService-build-queue-age'];
    expect(age.Properties).toMatchObject({ MetricName: 'ApproximateAgeOfOldestMessage', Threshold: 900 });
    expect(queueOf(age)).toBe(buildQueue[0]);
    const events = alarms['EnotBuilderService-build-events-dead-letters'];
    expect(events.Properties).toMatchObject({ MetricName: 'ApproximateNumberOfMessagesVisible', Threshold: 0, ComparisonOperator: 'GreaterThanThreshold' });
    expect(queueOf(events)).toBe(eventDeadLetterQueues[0]);
    for (const alarm of [dead, age, events]) {
      expectNotifiesTopic(alarm);
      expectExplained(alarm);
    }
  });

  it('has no alarm beyond those, and none without an action', () => {
    // Errors and throttles per function, 5xx rate, build failure rate, stuck builds, and the three queue alarms.
    expect(Object.keys(alarms)).toHaveLength((routes.length + workers.length) * 2 + 3 + 3);
    for (const alarm of Object.values(alarms)) expectNotifiesTopic(alarm);
  });

  it('sends alarms to the alarm email when one is given, and to no one otherwise', () => {
    template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.org' });
    synthApp().serviceTemplate.resourceCountIs('AWS::SNS::Subscription', 0);
  });

  it('adds the dead-letter and queue-age alarms when the build pipeline hands over its queue', () => {
    const stack = new Stack(unbundledApp(), 'Queues');
    const monitoring = new Monitoring(stack, 'Monitoring');
    const deadLetterQueue = new sqs.Queue(stack, 'Dead');
    const queue = new sqs.Queue(stack, 'Builds', { deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: 3 } });
    monitoring.watchQueue(queue, deadLetterQueue);
    const t = Template.fromStack(stack);
    const byName = Object.fromEntries(Object.values(resourcesOf(t, 'AWS::CloudWatch::Alarm'))
      .map((a) => [a.Properties!.AlarmName as string, a as Alarm]));
    const dead = byName['Queues-build-queue-dead-letters'];
    expect(dead.Properties).toMatchObject({
      MetricName: 'ApproximateNumberOfMessagesVisible', Namespace: 'AWS/SQS', Threshold: 0,
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [expect.stringMatching(/^Dead/), 'QueueName'] } }],
    });
    const age = byName['Queues-build-queue-age'];
    expect(age.Properties).toMatchObject({
      MetricName: 'ApproximateAgeOfOldestMessage', Threshold: 900,
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [expect.stringMatching(/^Builds/), 'QueueName'] } }],
    });
    for (const alarm of [dead, age]) {
      expect(alarm.Properties.AlarmActions).toHaveLength(1);
      expectExplained(alarm);
    }
  });
});

describe('dashboard', () => {
  it('shows the API, the functions, the builds and the downloads', () => {
    const [dashboard] = Object.values(resourcesOf(template, 'AWS::CloudWatch::Dashboard'));
    const body = JSON.stringify(dashboard.Properties!.DashboardBody);
    for (const title of ['API requests', 'API latency', 'API errors', 'Function errors', 'Function throttles',
      'Function duration', 'Builds', 'Build duration', 'Stuck builds', 'Downloads']) {
      expect(body).toContain(title);
    }
    for (const metric of ['BuildsQueued', 'BuildsSucceeded', 'BuildsFailed', 'BuildDuration', 'Downloads', 'ErtsDownloads', '5XXError']) {
      expect(body).toContain(metric);
    }
  });

  it('refuses non-TLS publishing to the alarm topic', () => {
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });
});
