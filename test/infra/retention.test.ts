// Retention on AWS: the bucket expires build logs after the days the functions count (and their bytes a day later),
// has no rule touching artifacts/ or erts/, and the daily sweep is scheduled with DeleteObject on artifacts/ and logs/.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Template } from 'aws-cdk-lib/assertions';
import { RETENTION_DEFAULTS } from '#core/retention.js';
import { workers } from '#functions/routes.js';
import { actionsOf, functionLogicalId, policyOfFunction, resourcesOf, synthApp } from './app-fixture.js';

let data: Template;
let service: Template;

beforeAll(() => {
  const app = synthApp();
  data = app.dataTemplate;
  service = app.serviceTemplate;
});

describe('retention in the stacks', () => {
  it('expires logs/ after ENOT_LOG_RETENTION_DAYS\'s default, and nothing under artifacts/ or erts/', () => {
    const [bucket] = Object.values(resourcesOf(data, 'AWS::S3::Bucket'));
    const rules = bucket.Properties!.LifecycleConfiguration.Rules as Record<string, unknown>[];
    expect(rules).toContainEqual(expect.objectContaining({
      Prefix: 'logs/', ExpirationInDays: RETENTION_DEFAULTS.logDays, NoncurrentVersionExpiration: { NoncurrentDays: 1 }, Status: 'Enabled',
    }));
    // Only the logs rule expires current objects; the other rule ends old versions only.
    const expiring = rules.filter((r) => r.ExpirationInDays !== undefined);
    expect(expiring.map((r) => r.Prefix)).toEqual(['logs/']);
    for (const rule of rules) expect(String(rule.Prefix ?? '')).not.toMatch(/^(artifacts|erts)\//);
  });

  it('runs sweep-retention once a day', () => {
    const sweep = workers.find((w) => w.name === 'sweep-retention');
    expect(sweep).toMatchObject({ trigger: 'daily' });
    const fnId = functionLogicalId(service, 'EnotBuilderService-sweep-retention');
    const rules = Object.values(resourcesOf(service, 'AWS::Events::Rule'))
      .filter((r) => (r.Properties!.Targets as { Arn: unknown }[] | undefined)
        ?.some((t) => JSON.stringify(t.Arn) === JSON.stringify({ 'Fn::GetAtt': [fnId, 'Arn'] })));
    expect(rules).toHaveLength(1);
    expect(rules[0].Properties!.ScheduleExpression).toBe('rate(1 day)');
  });

  it('lets the sweep delete under artifacts/ and logs/ only, never erts/, and write nothing', () => {
    const fnId = functionLogicalId(service, 'EnotBuilderService-sweep-retention');
    const policy = policyOfFunction(service, fnId);
    const deletes = policy.Statement.filter((s) => actionsOf({ Statement: [s] }).includes('s3:DeleteObject'));
    expect(deletes).toHaveLength(1);
    const resources = JSON.stringify(deletes[0].Resource);
    expect(resources).toContain('/artifacts/*');
    expect(resources).toContain('/logs/*');
    expect(resources).not.toContain('erts/');
    const actions = actionsOf(policy);
    expect(actions.filter((a) => a.startsWith('s3:'))).toEqual(['s3:DeleteObject']);
  });
});
