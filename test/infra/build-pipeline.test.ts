// The build pipeline: the queue and its dead letters, the dispatcher, the CodeBuild projects (package builds and
// publish-erts) and what their roles may touch, the completion rule, the reaper's schedule, and the workers' grants.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Match, type Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { routes, workers, type Grant, type Worker } from '#functions/routes.js';
import { builderOtpReleases, ERTS_BUILDSPEC } from '../../infra/constructs/build-pipeline.js';
import { defineApp } from '../../infra/define-app.js';
import { PROJECT_ROOT } from '../../infra/paths.js';
import {
  actionsOf, functionLogicalId, impliedActions, policyOfFunction, resourcesOf, synthApp, type Resources,
} from './app-fixture.js';

type Statement = { Action: string | string[]; Resource: unknown; Effect?: string; Condition?: unknown };
type Ref = { 'Fn::GetAtt': [string, string] };

const importOf = (name: string) => ({ 'Fn::ImportValue': `EnotBuilderData-${name}` });
const objectsUnder = (prefix: string) => ({ 'Fn::Join': ['', [importOf('BucketArn'), `/${prefix}`]] });

/**
 * What a trigger adds to its worker's role besides the grants: consuming the queue, for the dispatcher; keeping
 * the events it failed on in the events' dead-letter queue, for the completion worker.
 */
const TRIGGER_ACTIONS: Record<Worker['trigger'], string[]> = {
  'build-queue': [
    'sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:ReceiveMessage',
  ],
  'build-events': ['sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:SendMessage'],
  schedule: [],
  daily: [],
};

const workerNamed = (trigger: Worker['trigger']) => {
  const found = workers.filter((w) => w.trigger === trigger);
  expect(found, trigger).toHaveLength(1);
  return found[0];
};

let template: Template;
let functions: Resources;
let queues: Resources;
/**
 * Logical ids: the build queue, its dead-letter queue, the completion events' dead-letter queue, the package build
 * project and its role, the ERTS project and its role.
 */
let ids: {
  queue: string; deadLetters: string; eventDeadLetters: string; project: string; role: string; ertsProject: string; ertsRole: string;
};

const fnId = (name: string) => functionLogicalId(template, `EnotBuilderService-${name}`);

beforeAll(() => {
  template = synthApp({ senderEmail: 'builds@example.org', alarmEmail: 'ops@example.org' }).serviceTemplate;
  functions = resourcesOf(template, 'AWS::Lambda::Function');
  queues = resourcesOf(template, 'AWS::SQS::Queue');
  const withRedrive = Object.entries(queues).filter(([, q]) => q.Properties?.RedrivePolicy);
  expect(withRedrive).toHaveLength(1);
  const [queue, props] = withRedrive[0];
  const deadLetters = (props.Properties!.RedrivePolicy.deadLetterTargetArn as Ref)['Fn::GetAtt'][0];
  const others = Object.keys(queues).filter((id) => id !== queue && id !== deadLetters);
  expect(others).toHaveLength(1);
  const projects = Object.entries(resourcesOf(template, 'AWS::CodeBuild::Project'));
  expect(projects.map(([, p]) => p.Properties!.Name).sort()).toEqual(['EnotBuilderService-builds', 'EnotBuilderService-erts']);
  const named = (name: string) => {
    const [id, p] = projects.find(([, q]) => q.Properties!.Name === `EnotBuilderService-${name}`)!;
    return { id, role: (p.Properties!.ServiceRole as Ref)['Fn::GetAtt'][0] };
  };
  const builds = named('builds');
  const erts = named('erts');
  expect(builds.role).not.toBe(erts.role);
  ids = {
    queue, deadLetters, eventDeadLetters: others[0],
    project: builds.id, role: builds.role, ertsProject: erts.id, ertsRole: erts.role,
  };
});

/** Every statement of every policy attached to a role (and its inline ones), checking it has no managed policy. */
function roleStatements(roleId: string, principal = 'codebuild.amazonaws.com'): Statement[] {
  const role = resourcesOf(template, 'AWS::IAM::Role')[roleId].Properties!;
  expect(role.AssumeRolePolicyDocument.Statement).toEqual([
    expect.objectContaining({ Principal: { Service: principal } }),
  ]);
  // No managed policy, and no inline one on the role itself: only attached policy documents.
  expect(role.ManagedPolicyArns).toBeUndefined();
  const attached = [
    ...Object.values(resourcesOf(template, 'AWS::IAM::Policy')),
    ...Object.values(resourcesOf(template, 'AWS::IAM::ManagedPolicy')),
  ].filter((p) => ((p.Properties!.Roles ?? []) as { Ref: string }[]).some((r) => r.Ref === roleId));
  expect(attached.length).toBeGreaterThan(0);
  return [
    ...((role.Policies ?? []) as { PolicyDocument: { Statement: Statement[] } }[]).flatMap((p) => p.PolicyDocument.Statement),
    ...attached.flatMap((p) => p.Properties!.PolicyDocument.Statement as Statement[]),
  ];
}

const statementActions = (s: Statement) => actionsOf({ Statement: [s] });

/** The project's log group is `/aws/codebuild/<name>`, the project logs there, and the role writes no other group. */
function expectOwnLogGroupOnly(projectId: string, projectName: string, statements: Statement[]): void {
  const groups = Object.entries(resourcesOf(template, 'AWS::Logs::LogGroup'))
    .filter(([, g]) => g.Properties!.LogGroupName === `/aws/codebuild/${projectName}`);
  expect(groups).toHaveLength(1);
  expect(resourcesOf(template, 'AWS::CodeBuild::Project')[projectId].Properties!.LogsConfig)
    .toEqual({ CloudWatchLogs: { GroupName: { Ref: groups[0][0] }, Status: 'ENABLED' } });
  const logStatements = statements.filter((st) => statementActions(st).some((a) => a.startsWith('logs:')));
  expect(logStatements.length).toBeGreaterThan(0);
  for (const s of logStatements) {
    for (const resource of [s.Resource].flat()) {
      const text = JSON.stringify(resource);
      const ownGroup = text === JSON.stringify({ 'Fn::GetAtt': [groups[0][0], 'Arn'] });
      const ownPath = text.includes(':log-group:/aws/codebuild/"') && text.includes(`{"Ref":"${projectId}"}`);
      expect(ownGroup || ownPath, text).toBe(true);
    }
  }
}

/** Logs and pulling the builder image: what CodeBuild gives every project role. */
const LOGS_AND_IMAGE_PULL =
  /^(logs:(CreateLogGroup|CreateLogStream|PutLogEvents)|ecr:(GetAuthorizationToken|BatchCheckLayerAvailability|GetDownloadUrlForLayer|BatchGetImage))$/;

describe('the build queue', () => {
  it('moves a request to a dead-letter queue kept 14 days after 5 failed deliveries', () => {
    const { RedrivePolicy } = queues[ids.queue].Properties!;
    expect(RedrivePolicy).toEqual({ deadLetterTargetArn: { 'Fn::GetAtt': [ids.deadLetters, 'Arn'] }, maxReceiveCount: 5 });
    expect(queues[ids.deadLetters].Properties!.MessageRetentionPeriod).toBe(14 * 24 * 3600);
  });

  it('hides a message for at least 6 times the dispatcher\'s timeout', () => {
    const timeout = functions[fnId(workerNamed('build-queue').name)].Properties!.Timeout as number;
    expect(timeout).toBeGreaterThan(0);
    expect(queues[ids.queue].Properties!.VisibilityTimeout).toBeGreaterThanOrEqual(6 * timeout);
  });

  it('encrypts every queue with SQS-managed keys and refuses requests without TLS', () => {
    const policies = Object.values(resourcesOf(template, 'AWS::SQS::QueuePolicy'));
    for (const id of Object.keys(queues)) {
      expect(queues[id].Properties!.SqsManagedSseEnabled, id).toBe(true);
      expect(queues[id].Properties!.KmsMasterKeyId, id).toBeUndefined();
      const policy = policies.find((p) => (p.Properties!.Queues as { Ref: string }[]).some((q) => q.Ref === id));
      expect(policy?.Properties!.PolicyDocument.Statement, id).toContainEqual(expect.objectContaining({
        Effect: 'Deny', Action: 'sqs:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } },
      }));
    }
  });

  it('feeds the dispatcher in batches whose failures are reported per message', () => {
    const mappings = Object.values(resourcesOf(template, 'AWS::Lambda::EventSourceMapping'));
    expect(mappings).toHaveLength(1);
    expect(mappings[0].Properties).toMatchObject({
      EventSourceArn: { 'Fn::GetAtt': [ids.queue, 'Arn'] },
      FunctionName: { Ref: fnId(workerNamed('build-queue').name) },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BatchSize: 5,
    });
  });
});

describe('the CodeBuild project', () => {
  const project = () => resourcesOf(template, 'AWS::CodeBuild::Project')[ids.project].Properties!;

  it('runs outside any VPC, with no source but the buildspec of buildspec/buildspec.yml', () => {
    expect(project().VpcConfig).toBeUndefined();
    expect(project().Source.Type).toBe('NO_SOURCE');
    const file = parseYaml(readFileSync(join(PROJECT_ROOT, 'buildspec', 'buildspec.yml'), 'utf8')) as unknown;
    expect(parseYaml(project().Source.BuildSpec as string)).toEqual(file);
  });

  it('runs the image built from buildspec/Dockerfile on a small Linux machine', () => {
    const environment = project().Environment;
    expect(environment).toMatchObject({
      Type: 'LINUX_CONTAINER', ComputeType: 'BUILD_GENERAL1_SMALL', ImagePullCredentialsType: 'SERVICE_ROLE',
    });
    expect(JSON.stringify(environment.Image)).toContain('container-assets');
  });

  it('is privileged, so that bubblewrap can sandbox the package\'s own code', () => {
    // buildspec/sandbox.mjs needs namespaces; unprivileged, the compile would run next to the build's credentials.
    expect(project().Environment.PrivilegedMode).toBe(true);
  });

  it('tells a build where the image keeps its scripts and OTP releases, and names no bucket', () => {
    const variables = Object.fromEntries((project().Environment.EnvironmentVariables as { Name: string; Value: unknown }[])
      .map((v) => [v.Name, v.Value]));
    // Where to upload comes per build, as presigned URLs in the StartBuild overrides.
    expect(variables).toEqual({
      ENOT_SCRIPTS: '/opt/enot-builder',
      ENOT_OTP_INSTALLS: '/opt/otp',
    });
  });

  it('stops a build at the build timeout, which every function knows too', () => {
    expect(project().TimeoutInMinutes).toBe(15);
    for (const fn of Object.values(functions)) expect(fn.Properties!.Environment.Variables.ENOT_BUILD_TIMEOUT_S).toBe('900');
    const longer = synthApp({ buildTimeoutMinutes: 40 }).serviceTemplate;
    longer.hasResourceProperties('AWS::CodeBuild::Project', { TimeoutInMinutes: 40 });
    for (const fn of Object.values(resourcesOf(longer, 'AWS::Lambda::Function'))) {
      expect(fn.Properties!.Environment.Variables.ENOT_BUILD_TIMEOUT_S).toBe('2400');
    }
  });

  describe('its role, over every policy attached to it', () => {
    let statements: Statement[];

    beforeAll(() => {
      statements = roleStatements(ids.role);
    });

    it('has no S3 action whatsoever: a build uploads only through its presigned URLs', () => {
      const s3 = statements.filter((s) => statementActions(s).some((a) => /^s3:/i.test(a) || a === '*'));
      expect(s3).toEqual([]);
      expect(JSON.stringify(statements)).not.toContain('BucketArn');
    });

    it('cannot touch the database, its secret, the webhook secret, queues, mail or the bucket', () => {
      const text = JSON.stringify(statements);
      for (const name of ['ClusterArn', 'DatabaseSecretArn', 'WebhookSecretArn', 'BucketArn', 'BucketName']) expect(text).not.toContain(name);
      for (const s of statements) {
        expect(s.Effect ?? 'Allow').toBe('Allow');
        for (const action of statementActions(s)) expect(action).toMatch(LOGS_AND_IMAGE_PULL);
      }
    });

    it('writes logs only to the project\'s own log group', () => {
      expectOwnLogGroupOnly(ids.project, 'EnotBuilderService-builds', statements);
    });
  });
});

describe('the ERTS project', () => {
  const project = () => resourcesOf(template, 'AWS::CodeBuild::Project')[ids.ertsProject].Properties!;

  it('runs the builder image, outside any VPC, unprivileged, with no source', () => {
    const builds = resourcesOf(template, 'AWS::CodeBuild::Project')[ids.project].Properties!;
    expect(project().Environment.Image).toEqual(builds.Environment.Image);
    expect(project().Environment).toMatchObject({ Type: 'LINUX_CONTAINER', ImagePullCredentialsType: 'SERVICE_ROLE' });
    expect(project().Environment.PrivilegedMode).toBe(false);
    expect(project().VpcConfig).toBeUndefined();
    expect(project().Source.Type).toBe('NO_SOURCE');
  });

  it('runs only the publish step as publish-erts: no clone, no compile, no package code', () => {
    const spec = parseYaml(project().Source.BuildSpec as string) as typeof ERTS_BUILDSPEC;
    expect(spec).toEqual(ERTS_BUILDSPEC);
    const commands = Object.values(spec.phases).flatMap((phase) => [...phase.commands]);
    expect(commands).toEqual(['ENOT_TASK=publish-erts node "$ENOT_SCRIPTS/build.mjs" publish']);
  });

  it('names the bucket, the scripts and the task, so its completion event says publish-erts', () => {
    const variables = Object.fromEntries((project().Environment.EnvironmentVariables as { Name: string; Value: unknown }[])
      .map((v) => [v.Name, v.Value]));
    expect(variables).toEqual({
      ENOT_TASK: 'publish-erts',
      ENOT_UPLOAD_BUCKET: importOf('BucketName'),
      ENOT_SCRIPTS: '/opt/enot-builder',
    });
  });

  describe('its role', () => {
    let statements: Statement[];

    beforeAll(() => {
      statements = roleStatements(ids.ertsRole);
    });

    it('writes to the bucket only PutObject, only under erts/', () => {
      const s3 = statements.filter((s) => statementActions(s).some((a) => /^s3:/i.test(a) || a === '*'));
      expect(s3).toHaveLength(1);
      expect(statementActions(s3[0])).toEqual(['s3:PutObject']);
      expect([s3[0].Resource].flat()).toEqual([objectsUnder('erts/*')]);
    });

    it('cannot touch the database, the secrets, queues or mail', () => {
      const text = JSON.stringify(statements);
      for (const name of ['ClusterArn', 'DatabaseSecretArn', 'WebhookSecretArn']) expect(text).not.toContain(name);
      for (const s of statements) {
        expect(s.Effect ?? 'Allow').toBe('Allow');
        for (const action of statementActions(s)) expect(action === 's3:PutObject' || LOGS_AND_IMAGE_PULL.test(action), action).toBe(true);
      }
    });

    it('writes logs only to the project\'s own log group', () => {
      expectOwnLogGroupOnly(ids.ertsProject, 'EnotBuilderService-erts', statements);
    });
  });
});

describe('the completion rule', () => {
  it('sends the ended builds of both projects, and nothing else, to the completion worker', () => {
    const rules = Object.values(resourcesOf(template, 'AWS::Events::Rule')).filter((r) => r.Properties!.EventPattern);
    expect(rules).toHaveLength(1);
    const rule = rules[0].Properties!;
    expect(rule.EventPattern).toEqual({
      source: ['aws.codebuild'],
      'detail-type': ['CodeBuild Build State Change'],
      detail: {
        'project-name': [{ Ref: ids.project }, { Ref: ids.ertsProject }],
        'build-status': ['SUCCEEDED', 'FAILED', 'FAULT', 'TIMED_OUT', 'STOPPED'],
      },
    });
    expect(rule.Targets).toHaveLength(1);
    expect(rule.Targets[0]).toMatchObject({
      Arn: { 'Fn::GetAtt': [fnId(workerNamed('build-events').name), 'Arn'] },
      RetryPolicy: { MaximumRetryAttempts: expect.any(Number), MaximumEventAgeInSeconds: expect.any(Number) },
      DeadLetterConfig: { Arn: { 'Fn::GetAtt': [ids.eventDeadLetters, 'Arn'] } },
    });
    expect(rule.Targets[0].RetryPolicy.MaximumRetryAttempts).toBeGreaterThan(0);
  });

  it('keeps the events the completion worker still fails on after Lambda\'s retries in the same queue', () => {
    const configs = Object.values(resourcesOf(template, 'AWS::Lambda::EventInvokeConfig'));
    expect(configs).toHaveLength(1);
    expect(configs[0].Properties).toMatchObject({
      FunctionName: { Ref: fnId(workerNamed('build-events').name) },
      MaximumRetryAttempts: 2,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [ids.eventDeadLetters, 'Arn'] } } },
    });
  });

  it('lets only that rule put undeliverable events in their dead-letter queue', () => {
    const [ruleId] = Object.keys(template.findResources('AWS::Events::Rule', { Properties: { EventPattern: Match.anyValue() } }));
    const policy = Object.values(resourcesOf(template, 'AWS::SQS::QueuePolicy'))
      .find((p) => (p.Properties!.Queues as { Ref: string }[]).some((q) => q.Ref === ids.eventDeadLetters))!;
    const allows = (policy.Properties!.PolicyDocument.Statement as (Statement & { Principal: unknown })[]).filter((s) => s.Effect === 'Allow');
    expect(allows).toEqual([expect.objectContaining({
      Action: 'sqs:SendMessage',
      Principal: { Service: 'events.amazonaws.com' },
      Condition: { ArnEquals: { 'aws:SourceArn': { 'Fn::GetAtt': [ruleId, 'Arn'] } } },
    })]);
  });
});

describe('the reaper', () => {
  it('runs every 5 minutes', () => {
    // The other schedule is the daily retention sweep's (test/infra/retention.test.ts).
    const schedules = Object.values(resourcesOf(template, 'AWS::Events::Rule'))
      .filter((r) => r.Properties!.ScheduleExpression && r.Properties!.ScheduleExpression !== 'rate(1 day)');
    expect(schedules).toHaveLength(1);
    expect(schedules[0].Properties!.ScheduleExpression).toBe('rate(5 minutes)');
    expect(schedules[0].Properties!.Targets).toEqual([
      expect.objectContaining({ Arn: { 'Fn::GetAtt': [fnId(workerNamed('schedule').name), 'Arn'] } }),
    ]);
  });
});

describe('the workers of functions/routes.ts', () => {
  it('are one function each, bundled from their entry module', () => {
    for (const worker of workers) {
      expect(existsSync(join(PROJECT_ROOT, 'functions', worker.entry)), worker.entry).toBe(true);
      expect(functions[fnId(worker.name)].Properties).toMatchObject({ Runtime: 'nodejs22.x', Architectures: ['arm64'] });
    }
  });

  it('hold exactly the actions of their grants (and, for the dispatcher, consuming the queue)', () => {
    for (const worker of workers) {
      const document = policyOfFunction(template, fnId(worker.name));
      expect([...new Set(actionsOf(document))].sort(), worker.name)
        .toEqual(impliedActions(worker.grants, TRIGGER_ACTIONS[worker.trigger]));
    }
  });

  it('get the queue URL, the project name and the sender for their grants, and the public URL', () => {
    for (const worker of workers) {
      const env = functions[fnId(worker.name)].Properties!.Environment.Variables as Record<string, unknown>;
      const has = (grant: Grant) => worker.grants.includes(grant);
      expect(env.ENOT_QUEUE_URL, worker.name).toEqual(has('queue:send') ? { Ref: ids.queue } : undefined);
      expect(env.ENOT_BUILD_PROJECT, worker.name).toEqual(has('build:start') ? { Ref: ids.project } : undefined);
      expect(env.ENOT_MAIL_FROM, worker.name).toEqual(has('mail:send') ? 'builds@example.org' : undefined);
      // Result emails link to the API's address.
      expect(JSON.stringify(env.ENOT_PUBLIC_URL)).toMatch(/"Ref":"ApiRestApi[0-9A-F]+"/);
      expect(env).toMatchObject({ ENOT_RUNTIME: 'aws', ENOT_DB_CLUSTER_ARN: importOf('ClusterArn'), ENOT_BUCKET: importOf('BucketName') });
    }
  });

  it('may start builds of this project only, and send mail from the sender identity only', () => {
    for (const worker of workers) {
      const statements = policyOfFunction(template, fnId(worker.name)).Statement;
      for (const s of statements) {
        const actions = actionsOf({ Statement: [s] });
        if (actions.includes('codebuild:StartBuild')) expect(s.Resource).toEqual({ 'Fn::GetAtt': [ids.project, 'Arn'] });
        if (actions.includes('ses:SendEmail')) expect(JSON.stringify(s.Resource)).toMatch(/:identity\/.*MailSender/);
      }
    }
  });

  it('let only the dispatcher PutObject, to presign build uploads, and only under artifacts/ and logs/', () => {
    const dispatcher = workerNamed('build-queue');
    expect(dispatcher.grants).toContain('blob:upload-build');
    for (const entry of [...routes, ...workers]) {
      const statements = policyOfFunction(template, fnId(entry.name)).Statement;
      const writes = statements.filter((s) => actionsOf({ Statement: [s] }).some((a) => /^s3:(Put|Delete|\*)|^\*$/.test(a)));
      // The completion writes the checksum indexes again, and nothing else.
      if (entry.name === 'build-finished') {
        expect(writes, entry.name).toHaveLength(1);
        expect(actionsOf({ Statement: writes })).toEqual(['s3:PutObject']);
        expect([writes[0].Resource].flat()).toEqual([objectsUnder('index/*')]);
        continue;
      }
      // The retention sweep and the admin's deletes remove logs and packages (never ERTS), and write nothing.
      if (entry.grants.includes('blob:delete')) {
        expect(actionsOf({ Statement: writes })).toEqual(['s3:DeleteObject']);
        expect([writes[0].Resource].flat()).toEqual([objectsUnder('artifacts/*'), objectsUnder('logs/*')]);
        continue;
      }
      if (entry.name !== dispatcher.name) {
        expect(writes, entry.name).toEqual([]);
        continue;
      }
      expect(writes).toHaveLength(1);
      expect(actionsOf({ Statement: writes })).toEqual(['s3:PutObject']);
      expect([writes[0].Resource].flat()).toEqual([objectsUnder('artifacts/*'), objectsUnder('logs/*')]);
      expect(writes[0].Condition).toBeUndefined();
      // It signs for the bucket it is told of, in the project it starts.
      const env = functions[fnId(entry.name)].Properties!.Environment.Variables as Record<string, unknown>;
      expect(env).toMatchObject({ ENOT_BUCKET: importOf('BucketName'), ENOT_BUILD_PROJECT: { Ref: ids.project } });
    }
  });

  it('send no mail and get no sender when the deployment has no senderEmail', () => {
    const t = synthApp().serviceTemplate;
    for (const worker of workers.filter((w) => w.grants.includes('mail:send'))) {
      const id = functionLogicalId(t, `EnotBuilderService-${worker.name}`);
      expect(actionsOf(policyOfFunction(t, id)).filter((a) => a.startsWith('ses:'))).toEqual([]);
      expect(resourcesOf(t, 'AWS::Lambda::Function')[id].Properties!.Environment.Variables.ENOT_MAIL_FROM).toBeUndefined();
    }
  });
});

describe('sending to the build queue', () => {
  it('is allowed to the functions granted queue:send, and to no read route', () => {
    const senders: string[] = [];
    const buildQueue = { 'Fn::GetAtt': [ids.queue, 'Arn'] };
    for (const entry of [...routes, ...workers]) {
      const statements = policyOfFunction(template, fnId(entry.name)).Statement;
      const send = statements.filter((s) => actionsOf({ Statement: [s] }).includes('sqs:SendMessage'));
      const toBuildQueue = send.filter((s) => JSON.stringify(s.Resource) === JSON.stringify(buildQueue));
      if (toBuildQueue.length > 0) senders.push(entry.name);
      expect(toBuildQueue.length > 0, entry.name).toBe(entry.grants.includes('queue:send'));
      // Anything else sent is the completion worker's own failures, to the events' dead-letter queue.
      const others = send.filter((s) => !toBuildQueue.includes(s));
      const isCompletion = 'trigger' in entry && entry.trigger === 'build-events';
      expect(others.map((s) => s.Resource), entry.name)
        .toEqual(isCompletion ? [{ 'Fn::GetAtt': [ids.eventDeadLetters, 'Arn'] }] : []);
    }
    expect(senders.length).toBeGreaterThan(0);
    for (const route of routes.filter((r) => r.kind === 'read')) expect(senders, route.name).not.toContain(route.name);
  });
});

describe('the builder image', () => {
  const outdirs: string[] = [];
  afterAll(() => {
    for (const dir of outdirs) rmSync(dir, { recursive: true, force: true });
  });

  type Image = { source: { directory: string; dockerFile?: string; platform?: string; dockerBuildArgs?: Record<string, string> } };

  /** Synthesizes the app with neither a docker on PATH nor CDK_DOCKER: any attempt to run Docker fails the synth. */
  function synthWithoutDocker(options: Parameters<typeof defineApp>[1] = {}): { outdir: string; images: Image[] } {
    const outdir = mkdtempSync(join(tmpdir(), 'enot-image-'));
    outdirs.push(outdir);
    const saved = { PATH: process.env.PATH, CDK_DOCKER: process.env.CDK_DOCKER };
    process.env.PATH = '';
    process.env.CDK_DOCKER = join(outdir, 'no-docker');
    try {
      const app = new App({ outdir, context: { 'aws:cdk:bundling-stacks': [] } });
      defineApp(app, options);
      app.synth();
    } finally {
      process.env.PATH = saved.PATH;
      if (saved.CDK_DOCKER === undefined) delete process.env.CDK_DOCKER;
      else process.env.CDK_DOCKER = saved.CDK_DOCKER;
    }
    const assets = JSON.parse(readFileSync(join(outdir, 'EnotBuilderService.assets.json'), 'utf8')) as { dockerImages: Record<string, Image> };
    return { outdir, images: Object.values(assets.dockerImages) };
  }

  it('is staged at synth with no Docker at hand, with only what the Dockerfile copies (the deploy builds it)', () => {
    const { outdir, images } = synthWithoutDocker();
    expect(images).toHaveLength(1);
    expect(images[0].source).toMatchObject({ platform: 'linux/amd64', dockerFile: 'buildspec/Dockerfile' });
    // The default major releases are what the Dockerfile pins: no build argument overrides them.
    expect(images[0].source.dockerBuildArgs).toBeUndefined();
    const staged = join(outdir, images[0].source.directory);
    expect(readdirSync(staged).sort()).toEqual(['buildspec', 'functions']);
    // Files only, as paths under buildspec/ (the steps are in a folder of their own).
    const filesUnder = (dir: string) => (readdirSync(dir, { recursive: true }) as string[])
      .filter((f) => statSync(join(dir, f)).isFile()).map((f) => f.split(sep).join('/')).sort();
    const files = filesUnder(join(staged, 'buildspec'));
    expect(files).toContain('Dockerfile');
    expect(files).toContain('steps/compile.mjs');
    expect(files.filter((f) => f !== 'Dockerfile').every((f) => f.endsWith('.mjs'))).toBe(true);
    expect(files).toEqual(filesUnder(join(PROJECT_ROOT, 'buildspec')).filter((f) => f === 'Dockerfile' || f.endsWith('.mjs')));
    // The scripts import the contract's names from functions/core/: that one file and nothing else of functions/.
    expect(filesUnder(join(staged, 'functions'))).toEqual(['core/build-contract-names.mjs']);
    expect(readFileSync(join(staged, 'buildspec', 'Dockerfile'), 'utf8'))
      .toBe(readFileSync(join(PROJECT_ROOT, 'buildspec', 'Dockerfile'), 'utf8'));
  });

  it('passes exact OTP releases to the Dockerfile', () => {
    const { images } = synthWithoutDocker({ otpReleases: ['26.2.5.6', '27.2'], defaultOtpRelease: '27.2' });
    expect(images[0].source.dockerBuildArgs).toEqual({ OTP_RELEASES: '26.2.5.6 27.2' });
  });

  it('takes major releases from the Dockerfile\'s pinned list, and refuses one it does not pin', () => {
    const dockerfile = 'FROM debian\nARG OTP_RELEASES="25.3.2.12 26.2.5.6 27.2"\n';
    expect(builderOtpReleases(['25', '26', '27'], dockerfile)).toBeUndefined();
    expect(builderOtpReleases(['26.2', '27'], dockerfile)).toBeUndefined();
    expect(builderOtpReleases(['26.2.5.6', '27.2'], dockerfile)).toBe('26.2.5.6 27.2');
    expect(() => builderOtpReleases(['24', '25'], dockerfile)).toThrow(/otpReleases 24 are not in the builder image.*25\.3\.2\.12/);
    expect(() => builderOtpReleases(['2'], dockerfile)).toThrow(/otpReleases 2 /);
    expect(() => synthApp({ otpReleases: ['24'], defaultOtpRelease: '24' })).toThrow(/otpReleases 24/);
  });
});
