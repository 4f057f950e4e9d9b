// The outer fence of the API: a regional WAF web ACL on the API's stage whose rate-based rule blocks a source address
// that sends far more than the service's own limits allow (those are counted in the database, per route kind).
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import type * as apigw from 'aws-cdk-lib/aws-apigateway';
import { Construct } from 'constructs';

/**
 * Requests one source address may send in five minutes before WAF blocks it: twice what the service's default read
 * limit allows (600 a minute), so WAF only stops floods the functions would otherwise be invoked for.
 */
export const DEFAULT_REQUESTS_PER_5_MINUTES = 6000;

/** What a blocked request is answered: a 429 in the contract's envelope (WAF cannot say when to retry). */
export const FIREWALL_BLOCK_BODY =
  '{"result":false,"response":"Rate limit exceeded: too many requests from one client; retry in a few minutes"}';

export interface ApiFirewallProps {
  stage: apigw.Stage;
  /** @default DEFAULT_REQUESTS_PER_5_MINUTES */
  requestsPer5Minutes?: number;
}

export class ApiFirewall extends Construct {
  readonly webAcl: wafv2.CfnWebACL;

  constructor(scope: Construct, id: string, props: ApiFirewallProps) {
    super(scope, id);
    const metric = (name: string) => ({ cloudWatchMetricsEnabled: true, metricName: name, sampledRequestsEnabled: true });
    this.webAcl = new wafv2.CfnWebACL(this, 'WebAcl', {
      scope: 'REGIONAL',
      // CloudFormation allows no parentheses here.
      description: 'enot-builder - blocks a source address that floods the API, far above the per-client limits',
      defaultAction: { allow: {} },
      visibilityConfig: metric('enot-api'),
      customResponseBodies: { 'rate-limited': { contentType: 'APPLICATION_JSON', content: FIREWALL_BLOCK_BODY } },
      rules: [{
        name: 'requests-per-source-ip',
        priority: 0,
        // The address API Gateway sees (IP), never a forwarded header a client could write.
        statement: {
          rateBasedStatement: {
            limit: props.requestsPer5Minutes ?? DEFAULT_REQUESTS_PER_5_MINUTES, aggregateKeyType: 'IP', evaluationWindowSec: 300,
          },
        },
        action: { block: { customResponse: { responseCode: 429, customResponseBodyKey: 'rate-limited' } } },
        visibilityConfig: metric('enot-api-requests-per-source-ip'),
      }],
    });
    new wafv2.CfnWebACLAssociation(this, 'StageAssociation', {
      resourceArn: props.stage.stageArn,
      webAclArn: this.webAcl.attrArn,
    });
  }
}
