// The service stack's API: one function per route of the table, least-privilege grants, throttling, errors.
import { existsSync } from 'node:fs';
import { Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { routes, workers, type Route } from '#functions/routes.js';
import { DEFAULT_THROTTLING, GATEWAY_ERROR_BODIES, methodThrottling } from '../../infra/constructs/api.js';
import { ServiceFunction } from '../../infra/constructs/service-function.js';
import { defineApp } from '../../infra/define-app.js';
import { functionEntry } from '../../infra/paths.js';
import { StatefulStack } from '../../infra/stateful-stack.js';
import { StatelessStack } from '../../infra/stateless-stack.js';
import {
  actionsOf, functionLogicalId, impliedActions, policyOfFunction, resourcesOf, synthApp, unbundledApp,
} from './app-fixture.js';

const importOf = (name: string) => ({ 'Fn::ImportValue': `EnotBuilderData-${name}` });
const objectsUnder = (prefix: string) => ({ 'Fn::Join': ['', [importOf('BucketArn'), `/${prefix}`]] });

let service: ReturnType<typeof synthApp>['service'];
let template: Template;

beforeAll(() => {
  const app = synthApp({ alarmEmail: 'ops@example.org' });
  service = app.service;
  template = app.serviceTemplate;
});

/** The full path of an API Gateway resource, walking ParentId up to the root. */
function resourcePath(resourceId: unknown): string {
  const all = resourcesOf(template, 'AWS::ApiGateway::Resource');
  const parts: string[] = [];
  let ref = resourceId as { Ref?: string; 'Fn::GetAtt'?: [string, string] };
  while (ref.Ref && all[ref.Ref]) {
    parts.unshift(all[ref.Ref].Properties!.PathPart as string);
    ref = all[ref.Ref].Properties!.ParentId;
  }
  return `/${parts.join('/')}`;
}

describe('one Lambda function per route of functions/routes.ts', () => {
  it('has exactly one function per route and per worker, named after them', () => {
    const functions = Object.values(resourcesOf(template, 'AWS::Lambda::Function'));
    expect(functions.map((f) => f.Properties!.FunctionName).sort())
      .toEqual([...routes, ...workers].map((r) => `EnotBuilderService-${r.name}`).sort());
  });

  it('bundles each route from its entry module, on Node 22 arm64', () => {
    expect(service.api.functions.map((f) => f.route)).toEqual(routes);
    for (const { route, handler } of service.api.functions) {
      expect(handler.entry).toBe(functionEntry(route.entry));
      expect(existsSync(handler.entry)).toBe(true);
      const fn = resourcesOf(template, 'AWS::Lambda::Function')[functionLogicalId(template, `EnotBuilderService-${route.name}`)];
      expect(fn.Properties).toMatchObject({
        Runtime: 'nodejs22.x', Architectures: ['arm64'], Handler: 'index.handler', Description: `${route.method} ${route.path}`,
      });
    }
  });

  it('routes each method and path to its own function through a Lambda proxy integration', () => {
    // Besides the routes, only the 405 mocks (ANY), checked below.
    const methods = Object.values(resourcesOf(template, 'AWS::ApiGateway::Method')).filter((m) => m.Properties!.HttpMethod !== 'ANY');
    expect(methods).toHaveLength(routes.length);
    for (const route of routes) {
      const fnId = functionLogicalId(template, `EnotBuilderService-${route.name}`);
      const matching = methods.filter((m) => JSON.stringify(m.Properties!.Integration?.Uri ?? '').includes(`"${fnId}"`));
      expect(matching, route.name).toHaveLength(1);
      const method = matching[0].Properties!;
      expect(method.HttpMethod).toBe(route.method);
      expect(method.Integration.Type).toBe('AWS_PROXY');
      expect(resourcePath(method.ResourceId)).toBe(route.path);
    }
  });

  it('gives every function the runtime environment functions/config.ts reads', () => {
    for (const route of routes) {
      const fn = resourcesOf(template, 'AWS::Lambda::Function')[functionLogicalId(template, `EnotBuilderService-${route.name}`)];
      const env = fn.Properties!.Environment.Variables;
      expect(env).toMatchObject({
        ENOT_RUNTIME: 'aws',
        NODE_OPTIONS: '--enable-source-maps',
        ENOT_BUCKET: importOf('BucketName'),
        ENOT_DB_CLUSTER_ARN: importOf('ClusterArn'),
        ENOT_DB_SECRET_ARN: importOf('DatabaseSecretArn'),
        ENOT_DB_NAME: 'enot',
        ENOT_DEFAULT_ERL_VERSION: '25',
        ENOT_ALLOWED_CLONE_URLS: 'https://github.com/',
        ENOT_LOG_LEVEL: 'info',
        POWERTOOLS_SERVICE_NAME: 'enot-builder',
        POWERTOOLS_METRICS_NAMESPACE: 'EnotBuilder',
      });
      // The API's own address, from its id (not its stage, which would be a dependency cycle).
      expect(JSON.stringify(env.ENOT_PUBLIC_URL)).toContain('.execute-api.');
      expect(JSON.stringify(env.ENOT_PUBLIC_URL)).toMatch(/"Ref":"ApiRestApi[0-9A-F]+"/);
      expect('ENOT_GIT_SECRET_ARN' in env).toBe(route.grants.includes('secret:webhook'));
    }
  });
});

describe('grants', () => {
  it('gives each function exactly the actions its route grants imply, plus writing its own logs', () => {
    for (const route of routes) {
      const document = policyOfFunction(template, functionLogicalId(template, `EnotBuilderService-${route.name}`));
      expect([...new Set(actionsOf(document))].sort(), route.name).toEqual(impliedActions(route.grants));
    }
  });

  it('lets search query the database and nothing on S3 or SQS', () => {
    const document = policyOfFunction(template, functionLogicalId(template, 'EnotBuilderService-search'));
    const actions = actionsOf(document);
    expect(actions.filter((a) => a.startsWith('s3:') || a.startsWith('sqs:'))).toEqual([]);
    const rds = document.Statement.find((s) => actionsOf({ Statement: [s] }).includes('rds-data:ExecuteStatement'));
    expect(rds?.Resource).toEqual(importOf('ClusterArn'));
    const secret = document.Statement.find((s) => actionsOf({ Statement: [s] }).includes('secretsmanager:GetSecretValue'));
    expect(secret?.Resource).toEqual(importOf('DatabaseSecretArn'));
  });

  it('lets download read objects under artifacts/, erts/ and logs/ only', () => {
    const document = policyOfFunction(template, functionLogicalId(template, 'EnotBuilderService-download'));
    const get = document.Statement.filter((s) => actionsOf({ Statement: [s] }).includes('s3:GetObject'));
    expect(get).toHaveLength(1);
    expect(get[0].Resource).toEqual([objectsUnder('artifacts/*'), objectsUnder('erts/*'), objectsUnder('logs/*')]);
    const list = document.Statement.filter((s) => actionsOf({ Statement: [s] }).includes('s3:ListBucket'));
    expect(list).toHaveLength(1);
    expect(list[0].Resource).toEqual(importOf('BucketArn'));
    expect(list[0].Condition).toEqual({ StringLike: { 's3:prefix': ['artifacts/*', 'erts/*', 'logs/*'] } });
  });

  it('lets no route function write to S3, only the admin deletions delete, and only the queue:send routes use SQS', () => {
    for (const route of routes) {
      const actions = actionsOf(policyOfFunction(template, functionLogicalId(template, `EnotBuilderService-${route.name}`)));
      expect(actions.filter((a) => /^s3:(Put|\*)/.test(a)), route.name).toEqual([]);
      expect(actions.filter((a) => a.startsWith('s3:Delete')), route.name)
        .toEqual(route.grants.includes('blob:delete') ? ['s3:DeleteObject'] : []);
      expect(actions.filter((a) => a.startsWith('sqs:')), route.name)
        .toEqual(route.grants.includes('queue:send') ? ['sqs:SendMessage'] : []);
    }
    for (const policy of Object.values(resourcesOf(template, 'AWS::IAM::Policy'))) {
      const actions = actionsOf(policy.Properties!.PolicyDocument);
      expect(actions.some((a) => a.endsWith(':*') || a === '*')).toBe(false);
    }
  });

  function serviceWith(table: Route[]): Template {
    const app = unbundledApp();
    const data = new StatefulStack(app, 'EnotBuilderData');
    const stack = new StatelessStack(app, 'Svc', { data: data.exports, routes: table });
    return Template.fromStack(stack);
  }
  const route = (over: Partial<Route>): Route => ({
    name: 'x', method: 'POST', path: '/x', entry: 'api/search.ts', kind: 'read', grants: [], ...over,
  });

  it("turns 'secret:webhook' into reading the webhook secret and its ARN in the environment", () => {
    const t = serviceWith([route({ name: 'callback', path: '/callback', kind: 'build', grants: ['secret:webhook'] })]);
    const fnId = functionLogicalId(t, 'Svc-callback');
    const document = policyOfFunction(t, fnId);
    expect([...new Set(actionsOf(document))].sort()).toEqual(impliedActions(['secret:webhook']));
    const read = document.Statement.find((s) => actionsOf({ Statement: [s] }).includes('secretsmanager:GetSecretValue'));
    expect(read?.Resource).toEqual(importOf('WebhookSecretArn'));
    const env = resourcesOf(t, 'AWS::Lambda::Function')[fnId].Properties!.Environment.Variables;
    expect(env.ENOT_GIT_SECRET_ARN).toEqual(importOf('WebhookSecretArn'));
  });

  it("turns 'secret:admin' into reading the admin tokens secret and its ARN in the environment, for token routes only", () => {
    const t = serviceWith([
      route({ name: 'admin', path: '/v2/admin/conflicts', method: 'GET', kind: 'ops', grants: ['secret:admin'] }),
      route({ name: 'open', path: '/search', method: 'GET', grants: ['db:read'] }),
    ]);
    const fnId = functionLogicalId(t, 'Svc-admin');
    const document = policyOfFunction(t, fnId);
    expect([...new Set(actionsOf(document))].sort()).toEqual(impliedActions(['secret:admin']));
    const read = document.Statement.find((st) => actionsOf({ Statement: [st] }).includes('secretsmanager:GetSecretValue'));
    expect(read?.Resource).toEqual(importOf('AdminTokensSecretArn'));
    const functions = resourcesOf(t, 'AWS::Lambda::Function');
    expect(functions[fnId].Properties!.Environment.Variables.ENOT_ADMIN_TOKENS_SECRET_ARN).toEqual(importOf('AdminTokensSecretArn'));
    expect(functions[functionLogicalId(t, 'Svc-open')].Properties!.Environment.Variables).not.toHaveProperty('ENOT_ADMIN_TOKENS_SECRET_ARN');
    // The data stack makes the secret, generated, kept on delete, and exports it.
    const data = Template.fromStack(new StatefulStack(unbundledApp(), 'EnotBuilderData'));
    data.hasResource('AWS::SecretsManager::Secret', {
      Properties: { Description: Match.stringLikeRegexp('^Admin Bearer tokens'), GenerateSecretString: Match.objectLike({ PasswordLength: 48 }) },
      DeletionPolicy: 'Retain',
    });
    expect(Object.values(data.findOutputs('*')).map((o) => o.Export?.Name)).toContain('EnotBuilderData-AdminTokensSecretArn');
  });

  it("turns 'queue:send' into sending to the build queue only, and its URL in the environment", () => {
    const t = serviceWith([route({ name: 'build', path: '/buildAsync', kind: 'build', grants: ['db:write', 'queue:send'] })]);
    const fnId = functionLogicalId(t, 'Svc-build');
    const document = policyOfFunction(t, fnId);
    expect([...new Set(actionsOf(document))].sort()).toEqual(impliedActions(['db:write', 'queue:send']));
    const send = document.Statement.find((s) => actionsOf({ Statement: [s] }).includes('sqs:SendMessage'));
    const [queueId] = Object.keys(t.findResources('AWS::SQS::Queue', { Properties: { RedrivePolicy: Match.anyValue() } }));
    expect(send?.Resource).toEqual({ 'Fn::GetAtt': [queueId, 'Arn'] });
    const env = resourcesOf(t, 'AWS::Lambda::Function')[fnId].Properties!.Environment.Variables;
    expect(env.ENOT_QUEUE_URL).toEqual({ Ref: queueId });
  });

  it("refuses at synth a 'queue:send' grant without the build queue", () => {
    const stack = new Stack(unbundledApp(), 'Bare');
    expect(() => new ServiceFunction(stack, 'Fn', { entry: 'api/search.ts', grants: ['queue:send'], resources: {} }))
      .toThrow(/queue:send.*build queue/);
  });

  it('refuses a grant whose resource the function was not given', () => {
    const stack = new Stack(unbundledApp(), 'Bare');
    expect(() => new ServiceFunction(stack, 'Fn', { entry: 'api/search.ts', grants: ['blob:read'], resources: {} }))
      .toThrow(/blob:read.*bucket/);
  });
});

describe('throttling', () => {
  const synthetic: Route[] = [
    { name: 'read', method: 'GET', path: '/r', entry: 'api/search.ts', kind: 'read', grants: [] },
    { name: 'build', method: 'POST', path: '/b/{id}', entry: 'api/search.ts', kind: 'build', grants: [] },
    { name: 'ops', method: 'GET', path: '/o', entry: 'api/search.ts', kind: 'ops', grants: [] },
  ];

  it('gives build routes a lower rate and burst than read routes', () => {
    const settings = methodThrottling(synthetic);
    const build = settings['/b/{id}/POST'];
    const read = settings['/r/GET'];
    expect(build.throttlingRateLimit!).toBeLessThan(read.throttlingRateLimit!);
    expect(build.throttlingBurstLimit!).toBeLessThan(read.throttlingBurstLimit!);
    expect(settings['/o/GET']).toEqual({
      throttlingRateLimit: DEFAULT_THROTTLING.ops.rateLimit, throttlingBurstLimit: DEFAULT_THROTTLING.ops.burstLimit,
    });
    expect(Object.keys(settings)).toHaveLength(synthetic.length);
  });

  it('deploys one method setting per route with its kind\'s limits', () => {
    const stage = Object.values(resourcesOf(template, 'AWS::ApiGateway::Stage'))[0].Properties!;
    const settings = stage.MethodSettings as { HttpMethod: string; ResourcePath: string; ThrottlingRateLimit: number; ThrottlingBurstLimit: number }[];
    for (const route of routes) {
      const escaped = route.path.replaceAll('/', '~1');
      const setting = settings.find((s) => s.ResourcePath === `/${escaped}` && s.HttpMethod === route.method);
      expect(setting, route.name).toMatchObject({
        ThrottlingRateLimit: DEFAULT_THROTTLING[route.kind].rateLimit,
        ThrottlingBurstLimit: DEFAULT_THROTTLING[route.kind].burstLimit,
      });
    }
  });

  it('deploys tighter settings for a build route than for a read route of the same API', () => {
    const app = unbundledApp();
    const data = new StatefulStack(app, 'EnotBuilderData');
    const stack = new StatelessStack(app, 'Svc', { data: data.exports, routes: synthetic });
    const stage = Object.values(Template.fromStack(stack).findResources('AWS::ApiGateway::Stage'))[0] as { Properties: { MethodSettings: { ResourcePath: string; ThrottlingRateLimit: number; ThrottlingBurstLimit: number }[] } };
    const byPath = Object.fromEntries(stage.Properties.MethodSettings.map((s) => [s.ResourcePath, s]));
    expect(byPath['/~1b~1{id}'].ThrottlingRateLimit).toBeLessThan(byPath['/~1r'].ThrottlingRateLimit);
    expect(byPath['/~1b~1{id}'].ThrottlingBurstLimit).toBeLessThan(byPath['/~1r'].ThrottlingBurstLimit);
  });
});

describe('the REST API', () => {
  it('is regional, binary-safe and writes JSON access logs', () => {
    template.hasResourceProperties('AWS::ApiGateway::RestApi', {
      EndpointConfiguration: { Types: ['REGIONAL'] },
      BinaryMediaTypes: ['*/*'],
    });
    const stage = Object.values(resourcesOf(template, 'AWS::ApiGateway::Stage'))[0].Properties!;
    const line = JSON.parse(stage.AccessLogSetting.Format as string) as Record<string, string>;
    expect(line).toMatchObject({
      requestId: '$context.requestId', ip: '$context.identity.sourceIp', method: '$context.httpMethod',
      path: '$context.path', status: '$context.status', latency: '$context.responseLatency',
    });
    expect(JSON.stringify(stage.AccessLogSetting.DestinationArn)).toContain('ApiAccessLogs');
  });

  it('answers its own errors in the envelope, an unknown route with 404 and a large body with 413', () => {
    const responses = Object.values(resourcesOf(template, 'AWS::ApiGateway::GatewayResponse')).map((r) => r.Properties!);
    expect(responses.map((r) => r.ResponseType).sort())
      .toEqual(['DEFAULT_4XX', 'DEFAULT_5XX', 'MISSING_AUTHENTICATION_TOKEN', 'REQUEST_TOO_LARGE']);
    for (const response of responses) {
      expect(response.ResponseParameters).toEqual({
        'gatewayresponse.header.Content-Type': "'application/json; charset=utf-8'",
      });
      // What API Gateway would substitute: messageString is a quoted JSON string, the others are plain text.
      const body = (response.ResponseTemplates['application/json'] as string)
        .replaceAll('$context.error.messageString', '"Forbidden \\"x\\""')
        .replace(/\$context\.[\w.]+/g, 'value');
      const parsed = JSON.parse(body) as { result: unknown; response: unknown };
      expect(parsed.result).toBe(false);
      expect(typeof parsed.response).toBe('string');
    }
    const byType = Object.fromEntries(responses.map((r) => [r.ResponseType, r]));
    expect(byType.MISSING_AUTHENTICATION_TOKEN.StatusCode).toBe('404');
    expect(byType.MISSING_AUTHENTICATION_TOKEN.ResponseTemplates['application/json']).toBe(GATEWAY_ERROR_BODIES.MISSING_AUTHENTICATION_TOKEN);
    expect(byType.MISSING_AUTHENTICATION_TOKEN.ResponseTemplates['application/json']).toContain('No route for');
    expect(byType.REQUEST_TOO_LARGE.StatusCode).toBe('413');
    expect(byType.DEFAULT_5XX.ResponseTemplates['application/json']).toContain('$context.requestId');
  });

  it('answers another method on a known path with 405, Allow and the envelope (a mock ANY method)', () => {
    const methods = Object.values(resourcesOf(template, 'AWS::ApiGateway::Method')).map((m) => m.Properties!);
    const mocks = methods.filter((m) => m.HttpMethod === 'ANY');
    const paths = [...new Set(routes.map((r) => r.path))];
    expect(mocks.map((m) => resourcePath(m.ResourceId)).sort()).toEqual([...paths].sort());
    for (const mock of mocks) {
      const path = resourcePath(mock.ResourceId);
      const allowed = routes.filter((r) => r.path === path).map((r) => r.method);
      expect(mock.Integration.Type).toBe('MOCK');
      const answer = mock.Integration.IntegrationResponses[0];
      expect(answer.StatusCode).toBe('405');
      expect(answer.ResponseParameters['method.response.header.Allow']).toBe(`'${allowed.join(', ')}'`);
      const body = JSON.parse((answer.ResponseTemplates['application/json'] as string).replace('$context.httpMethod', 'PUT'));
      expect(body).toEqual({ result: false, response: `Method PUT not allowed on ${path}` });
      // The route's own method stays a Lambda proxy integration: explicit methods win over ANY.
      const own = methods.filter((m) => m.HttpMethod !== 'ANY' && resourcePath(m.ResourceId) === path);
      expect(own.map((m) => m.Integration.Type)).toEqual(allowed.map(() => 'AWS_PROXY'));
    }
  });

  it('serves a custom domain when given one, and points links and the DNS record at it', () => {
    const { serviceTemplate: t } = synthApp({
      customDomain: {
        domainName: 'builder.example.org',
        certificateArn: 'arn:aws:acm:eu-west-1:123456789012:certificate/abc',
        hostedZone: { hostedZoneId: 'Z123', zoneName: 'example.org' },
      },
    });
    t.hasResourceProperties('AWS::ApiGateway::DomainName', {
      DomainName: 'builder.example.org',
      RegionalCertificateArn: 'arn:aws:acm:eu-west-1:123456789012:certificate/abc',
      EndpointConfiguration: { Types: ['REGIONAL'] },
      SecurityPolicy: 'TLS_1_2',
    });
    t.resourceCountIs('AWS::ApiGateway::BasePathMapping', 1);
    t.hasResourceProperties('AWS::Route53::RecordSet', { Name: 'builder.example.org.', Type: 'A', HostedZoneId: 'Z123' });
    for (const fn of Object.values(resourcesOf(t, 'AWS::Lambda::Function'))) {
      expect(fn.Properties!.Environment.Variables.ENOT_PUBLIC_URL).toBe('https://builder.example.org');
    }
  });

  it('makes no DNS record when the custom domain names no hosted zone', () => {
    const { serviceTemplate: t } = synthApp({
      customDomain: { domainName: 'builder.example.org', certificateArn: 'arn:aws:acm:eu-west-1:123456789012:certificate/abc' },
    });
    t.resourceCountIs('AWS::ApiGateway::DomainName', 1);
    t.resourceCountIs('AWS::Route53::RecordSet', 0);
  });
});

describe('mail', () => {
  it('makes an SES identity for the sender address only when one is given', () => {
    const withMail = synthApp({ senderEmail: 'builds@example.org' });
    withMail.serviceTemplate.hasResourceProperties('AWS::SES::EmailIdentity', { EmailIdentity: 'builds@example.org' });
    template.resourceCountIs('AWS::SES::EmailIdentity', 0);
  });

  it('grants sending from that identity and nothing else', () => {
    const { service: s } = defineApp(unbundledApp(), { senderEmail: 'builds@example.org' });
    const probe = new ServiceFunction(s, 'Probe', { entry: 'api/search.ts', grants: [], resources: {} });
    s.mail!.grantSend(probe.role);
    const t = Template.fromStack(s);
    const document = Object.values(t.findResources('AWS::IAM::Policy'))
      .map((p) => (p as { Properties: { PolicyDocument: { Statement: { Action: string | string[]; Resource: unknown }[] } } }).Properties.PolicyDocument)
      .find((d) => actionsOf(d).includes('ses:SendEmail'))!;
    const send = document.Statement.find((st) => actionsOf({ Statement: [st] }).includes('ses:SendEmail'))!;
    expect(actionsOf({ Statement: [send] }).sort()).toEqual(['ses:SendEmail', 'ses:SendRawEmail']);
    expect(JSON.stringify(send.Resource)).toContain(':identity/');
    expect(JSON.stringify(send.Resource)).toMatch(/MailSender/);
  });
});
