// The signing key: a KMS ECC_NIST_P256 signing key in the stateful stack, retained; only build-finished may sign.
import type { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { workers } from '#functions/routes.js';
import { actionsOf, functionLogicalId, policyOfFunction, resourcesOf, synthApp } from './app-fixture.js';

let dataTemplate: Template;
let serviceTemplate: Template;

beforeAll(() => {
  ({ dataTemplate, serviceTemplate } = synthApp());
});

describe('the signing key', () => {
  it('is one asymmetric ECC_NIST_P256 signing key in the stateful stack, retained', () => {
    const keys = Object.values(resourcesOf(dataTemplate, 'AWS::KMS::Key'));
    expect(keys).toHaveLength(1);
    expect(keys[0].Properties).toMatchObject({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });
    expect(keys[0].DeletionPolicy).toBe('Retain');
    expect(Object.keys(resourcesOf(serviceTemplate, 'AWS::KMS::Key'))).toHaveLength(0);
  });

  it('only build-finished may call kms:Sign, on that key alone, and only it is told the key', () => {
    const signers: string[] = [];
    for (const [id, fn] of Object.entries(resourcesOf(serviceTemplate, 'AWS::Lambda::Function'))) {
      const name = String(fn.Properties?.FunctionName ?? id);
      const env = (fn.Properties?.Environment?.Variables ?? {}) as Record<string, unknown>;
      let document;
      try {
        document = policyOfFunction(serviceTemplate, id);
      } catch {
        continue; // a function without a policy of its own (CDK's custom resources) signs nothing either
      }
      const signs = actionsOf(document).some((a) => a === 'kms:Sign' || a === 'kms:*' || a === '*');
      if (signs) signers.push(name);
      expect('ENOT_SIGNING_KEY_ID' in env, name).toBe(signs);
    }
    const finished = workers.find((w) => w.name === 'build-finished')!;
    expect(finished.grants).toContain('sign:build');
    expect(signers).toHaveLength(1);
    const id = functionLogicalId(serviceTemplate, signers[0]);
    const statement = policyOfFunction(serviceTemplate, id).Statement.find((s) => actionsOf({ Statement: [s] }).includes('kms:Sign'))!;
    expect(actionsOf({ Statement: [statement] }).sort()).toEqual(['kms:GetPublicKey', 'kms:Sign']);
    expect(JSON.stringify(statement.Resource)).toContain('SigningKeyArn');
    expect(signers[0]).toMatch(/build-finished/);
  });
});
