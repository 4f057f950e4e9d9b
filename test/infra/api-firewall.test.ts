// The WAF web ACL in front of the API: regional, one rate-based rule per source address, associated to the stage.
import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_REQUESTS_PER_5_MINUTES, FIREWALL_BLOCK_BODY } from '../../infra/constructs/api-firewall.js';
import { resourcesOf, synthApp } from './app-fixture.js';

let template: Template;

beforeAll(() => {
  template = synthApp({}).serviceTemplate;
});

describe('API firewall', () => {
  it('is a regional web ACL that blocks a source address past the rate with a 429 in the envelope', () => {
    template.resourceCountIs('AWS::WAFv2::WebACL', 1);
    template.hasResourceProperties('AWS::WAFv2::WebACL', {
      Scope: 'REGIONAL',
      DefaultAction: { Allow: {} },
      Rules: [Match.objectLike({
        Statement: { RateBasedStatement: { Limit: DEFAULT_REQUESTS_PER_5_MINUTES, AggregateKeyType: 'IP', EvaluationWindowSec: 300 } },
        Action: { Block: { CustomResponse: { ResponseCode: 429, CustomResponseBodyKey: 'rate-limited' } } },
      })],
      CustomResponseBodies: { 'rate-limited': { ContentType: 'APPLICATION_JSON', Content: FIREWALL_BLOCK_BODY } },
    });
    expect(JSON.parse(FIREWALL_BLOCK_BODY)).toEqual({ result: false, response: expect.stringMatching(/^Rate limit exceeded/) });
  });

  it('is associated to the API stage', () => {
    const [acl] = Object.keys(resourcesOf(template, 'AWS::WAFv2::WebACL'));
    const [stage] = Object.keys(resourcesOf(template, 'AWS::ApiGateway::Stage'));
    const associations = Object.values(resourcesOf(template, 'AWS::WAFv2::WebACLAssociation'));
    expect(associations).toHaveLength(1);
    expect(associations[0].Properties!.WebACLArn).toEqual({ 'Fn::GetAtt': [acl, 'Arn'] });
    expect(JSON.stringify(associations[0].Properties!.ResourceArn)).toContain(stage);
  });
});
