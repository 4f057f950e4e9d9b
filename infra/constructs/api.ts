// The REST API: one Lambda function per entry of functions/routes.ts, made by a loop over the table,
// behind per-method throttling, a WAF rate-based rule, access logs and gateway errors in the contract's envelope.
import { Stack, Validations } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as targets from 'aws-cdk-lib/aws-route53-targets';
import { Construct } from 'constructs';
import type { Route } from '#functions/routes.js';
import type { ServiceResources } from '../grants.js';
import type { CustomDomain } from '../options.js';
import { ApiFirewall } from './api-firewall.js';
import { ServiceFunction, type ServiceSettings } from './service-function.js';

export interface ThrottleLimit {
  /** Steady requests per second. */
  rateLimit: number;
  /** Requests allowed in a burst above the rate. */
  burstLimit: number;
}

/** Per route kind: build requests start real work, so they get far less room than reads. */
export type ThrottlingByKind = Record<Route['kind'], ThrottleLimit>;

export const DEFAULT_THROTTLING: ThrottlingByKind = {
  read: { rateLimit: 100, burstLimit: 200 },
  build: { rateLimit: 5, burstLimit: 10 },
  ops: { rateLimit: 10, burstLimit: 20 },
};

/** Stage method settings, keyed `/path/METHOD` as API Gateway's methodOptions expect, from each route's kind. */
export function methodThrottling(
  routes: readonly Route[], limits: ThrottlingByKind = DEFAULT_THROTTLING,
): Record<string, apigw.MethodDeploymentOptions> {
  const options: Record<string, apigw.MethodDeploymentOptions> = {};
  for (const route of routes) {
    const { rateLimit, burstLimit } = limits[route.kind];
    options[`${route.path}/${route.method}`] = { throttlingRateLimit: rateLimit, throttlingBurstLimit: burstLimit };
  }
  return options;
}

/**
 * Bodies of the errors API Gateway answers itself, in the envelope `{"result":false,"response":"..."}`.
 * Only simple variable substitution is available here; `messageString` is already a quoted JSON string.
 */
export const GATEWAY_ERROR_BODIES = {
  DEFAULT_4XX: '{"result":false,"response":$context.error.messageString}',
  DEFAULT_5XX: '{"result":false,"response":"$context.error.message (request id $context.requestId)"}',
  // A REST API answers an unknown route with 403 Missing Authentication Token. The path is left out: it is
  // substituted unescaped, and a `"` in it would break the JSON.
  MISSING_AUTHENTICATION_TOKEN: '{"result":false,"response":"No route for $context.httpMethod on this path"}',
  REQUEST_TOO_LARGE: '{"result":false,"response":"Request body too large"}',
} as const;

export const ENVELOPE_CONTENT_TYPE = 'application/json; charset=utf-8';

/** The methods the route table serves on each path. */
export function methodsByPath(routes: readonly Route[]): Map<string, string[]> {
  const byPath = new Map<string, string[]>();
  for (const route of routes) byPath.set(route.path, [...(byPath.get(route.path) ?? []), route.method]);
  return byPath;
}

/**
 * A known path asked with another method answers 405 with Allow, as the local server does. API Gateway
 * prefers a path's explicit methods over ANY, so this mock only catches the others (without it a REST API
 * answers them like an unknown route).
 */
export function methodNotAllowed(path: string, methods: readonly string[]): apigw.MockIntegration {
  return new apigw.MockIntegration({
    passthroughBehavior: apigw.PassthroughBehavior.NEVER,
    requestTemplates: { 'application/json': '{"statusCode": 405}' },
    integrationResponses: [{
      statusCode: '405',
      responseParameters: {
        'method.response.header.Allow': `'${methods.join(', ')}'`,
        'method.response.header.Content-Type': `'${ENVELOPE_CONTENT_TYPE}'`,
      },
      responseTemplates: {
        'application/json': `{"result":false,"response":"Method $context.httpMethod not allowed on ${path}"}`,
      },
    }],
  });
}

/** The JSON access-log line: enough to find a request (id, caller, route, status, time) without the body. */
export const ACCESS_LOG_FORMAT = JSON.stringify({
  requestId: '$context.requestId',
  // The Lambda request id: what X-Request-Id, the 500 message and the function's log lines carry.
  lambdaRequestId: '$context.integration.requestId',
  ip: '$context.identity.sourceIp',
  method: '$context.httpMethod',
  path: '$context.path',
  resourcePath: '$context.resourcePath',
  status: '$context.status',
  latency: '$context.responseLatency',
  integrationLatency: '$context.integrationLatency',
  responseLength: '$context.responseLength',
  userAgent: '$context.identity.userAgent',
  error: '$context.error.responseType',
});

export interface ApiProps {
  routes: readonly Route[];
  resources: ServiceResources;
  /** Everything but the public URL, which is this API's own address (or the custom domain). */
  settings: Omit<ServiceSettings, 'publicUrl'>;
  throttling?: ThrottlingByKind;
  customDomain?: CustomDomain;
  /** @default "prod" */
  stageName?: string;
  /** The WAF rule's requests per source address in five minutes (api-firewall.ts). */
  firewallRequestsPer5Minutes?: number;
}

export class Api extends Construct {
  readonly restApi: apigw.RestApi;
  /** One function per route, in table order. */
  readonly functions: { route: Route; handler: ServiceFunction }[] = [];
  /** What links and emails point at. */
  readonly publicUrl: string;
  readonly accessLogs: logs.LogGroup;
  /** Where DNS for the custom domain must point (the regional API Gateway domain), when there is one. */
  readonly customDomainTarget?: string;
  /** The web ACL on the stage: the outer fence, in front of the per-client limits the functions count. */
  readonly firewall: ApiFirewall;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);
    const stackName = Stack.of(this).stackName;
    const throttling = props.throttling ?? DEFAULT_THROTTLING;
    const stageName = props.stageName ?? 'prod';

    this.accessLogs = new logs.LogGroup(this, 'AccessLogs', { retention: logs.RetentionDays.THREE_MONTHS });
    this.restApi = new apigw.RestApi(this, 'RestApi', {
      restApiName: stackName,
      description: 'enot-builder: builds Erlang packages once per OTP release and serves them to enot',
      endpointConfiguration: { types: [apigw.EndpointType.REGIONAL] },
      // Every type, because clients send `Accept: */*`: a buffered package body (isBase64Encoded) reaches
      // them as bytes, text answers stay text, and request bodies arrive base64 (the middleware decodes).
      binaryMediaTypes: ['*/*'],
      cloudWatchRole: false,
      deployOptions: {
        stageName,
        accessLogDestination: new apigw.LogGroupLogDestination(this.accessLogs),
        accessLogFormat: apigw.AccessLogFormat.custom(ACCESS_LOG_FORMAT),
        // Stage-wide ceiling for any method without its own setting.
        throttlingRateLimit: throttling.read.rateLimit,
        throttlingBurstLimit: throttling.read.burstLimit,
        methodOptions: methodThrottling(props.routes, throttling),
      },
    });
    this.firewall = new ApiFirewall(this, 'Firewall', {
      stage: this.restApi.deploymentStage, requestsPer5Minutes: props.firewallRequestsPer5Minutes,
    });
    for (const [type, body] of Object.entries(GATEWAY_ERROR_BODIES)) {
      this.restApi.addGatewayResponse(`Gateway${type}`, {
        type: apigw.ResponseType.of(type),
        ...(type === 'MISSING_AUTHENTICATION_TOKEN' ? { statusCode: '404' } : {}),
        ...(type === 'REQUEST_TOO_LARGE' ? { statusCode: '413' } : {}),
        responseHeaders: { 'Content-Type': `'${ENVELOPE_CONTENT_TYPE}'` },
        templates: { 'application/json': body },
      });
    }

    // Built from the API id rather than restApi.url: that names the stage, which depends on the methods,
    // which depend on the functions whose environment holds this URL (a cycle).
    const stack = Stack.of(this);
    this.publicUrl = props.customDomain
      ? `https://${props.customDomain.domainName}`
      : `https://${this.restApi.restApiId}.execute-api.${stack.region}.${stack.urlSuffix}/${stageName}`;
    if (props.customDomain) this.customDomainTarget = this.addCustomDomain(props.customDomain);

    const settings: ServiceSettings = { ...props.settings, publicUrl: this.publicUrl };
    for (const route of props.routes) {
      const handler = new ServiceFunction(this, `Route-${route.name}`, {
        entry: route.entry,
        functionName: `${stackName}-${route.name}`,
        description: `${route.method} ${route.path}`,
        grants: route.grants,
        resources: props.resources,
        settings,
      });
      this.restApi.root
        .resourceForPath(route.path)
        .addMethod(route.method, new apigw.LambdaIntegration(handler.function, { allowTestInvoke: false }));
      this.functions.push({ route, handler });
    }
    for (const [path, methods] of methodsByPath(props.routes)) {
      this.restApi.root.resourceForPath(path).addMethod('ANY', methodNotAllowed(path, methods), {
        methodResponses: [{
          statusCode: '405',
          responseParameters: { 'method.response.header.Allow': true, 'method.response.header.Content-Type': true },
        }],
      });
    }

    this.acknowledgeFindings();
  }

  private addCustomDomain(domain: CustomDomain): string {
    const name = this.restApi.addDomainName('Domain', {
      domainName: domain.domainName,
      certificate: acm.Certificate.fromCertificateArn(this, 'Certificate', domain.certificateArn),
      endpointType: apigw.EndpointType.REGIONAL,
      securityPolicy: apigw.SecurityPolicy.TLS_1_2,
    });
    if (domain.hostedZone) {
      new route53.ARecord(this, 'DomainRecord', {
        zone: route53.HostedZone.fromHostedZoneAttributes(this, 'Zone', domain.hostedZone),
        recordName: domain.domainName,
        target: route53.RecordTarget.fromAlias(new targets.ApiGatewayDomain(name)),
      });
    }
    return name.domainNameAliasDomainName;
  }

  private acknowledgeFindings(): void {
    const acknowledge = (id: string, reason: string) => Validations.of(this.restApi).acknowledge({ id, reason });
    acknowledge('AwsSolutions-APIG2',
      'Each handler validates its own input with zod so that a bad request is answered in the enot envelope; ' +
      'an API Gateway request validator would answer in its own format, which the enot client cannot read.');
    acknowledge('AwsSolutions-APIG4',
      'The enot contract has no authentication: the enot client and GitHub call these routes anonymously ' +
      '(the webhook route authenticates with its HMAC signature in the handler).');
    acknowledge('AwsSolutions-COG4',
      'No Cognito user pool: the enot client and GitHub call the API anonymously by contract, so there are no ' +
      'users to sign in (see APIG4).');
    acknowledge('AwsSolutions-APIG6',
      'Per-request JSON access logs are on; execution logging needs the account-wide API Gateway CloudWatch role, ' +
      'a singleton this stack should not own.');
  }
}
