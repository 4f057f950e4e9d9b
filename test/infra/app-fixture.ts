// Builds the CDK app for the infra tests: both stacks, bundling skipped (the synth test bundles for real).
import { App, type Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { Grant } from '#functions/routes.js';
import { defineApp } from '../../infra/define-app.js';
import type { ServiceOptionsInput } from '../../infra/options.js';

/** An app whose NodejsFunctions are not bundled: asset code is a placeholder, everything else is real. */
export function unbundledApp(): App {
  return new App({ context: { 'aws:cdk:bundling-stacks': [] } });
}

export function synthApp(options: ServiceOptionsInput = {}) {
  const app = unbundledApp();
  const stacks = defineApp(app, options);
  return {
    app,
    ...stacks,
    dataTemplate: Template.fromStack(stacks.data),
    serviceTemplate: Template.fromStack(stacks.service),
  };
}

export type Resources = Record<string, { Type: string; Properties?: Record<string, any>; [key: string]: unknown }>;

/** The template's resources of one type, by logical id. */
export function resourcesOf(template: Template, type: string): Resources {
  return template.findResources(type) as Resources;
}

/** IAM actions of a policy document, flattened. */
export function actionsOf(document: { Statement: { Action: string | string[] }[] }): string[] {
  return document.Statement.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action]));
}

/** The logical id of `stack`'s function named `name`. */
export function functionLogicalId(template: Template, functionName: string): string {
  const found = Object.entries(resourcesOf(template, 'AWS::Lambda::Function'))
    .filter(([, r]) => r.Properties?.FunctionName === functionName);
  if (found.length !== 1) throw new Error(`expected one function named ${functionName}, found ${found.length}`);
  return found[0][0];
}

/** The policy document attached to the role that `functionLogicalId` runs as. */
export function policyOfFunction(template: Template, fnLogicalId: string) {
  const fn = resourcesOf(template, 'AWS::Lambda::Function')[fnLogicalId];
  const roleId = fn.Properties!.Role['Fn::GetAtt'][0] as string;
  const policies = Object.values(resourcesOf(template, 'AWS::IAM::Policy'))
    .filter((p) => (p.Properties!.Roles as { Ref: string }[]).some((r) => r.Ref === roleId));
  if (policies.length !== 1) throw new Error(`expected one policy for ${roleId}, found ${policies.length}`);
  return policies[0].Properties!.PolicyDocument as { Statement: { Action: string | string[]; Resource: unknown; Condition?: unknown }[] };
}

/** What each grant must allow, written out here rather than read from infra so the two can disagree. */
export const IMPLIED_ACTIONS: Record<Grant, string[]> = {
  'db:read': ['rds-data:ExecuteStatement', 'secretsmanager:GetSecretValue'],
  'db:write': [
    'rds-data:ExecuteStatement', 'rds-data:BeginTransaction', 'rds-data:CommitTransaction',
    'rds-data:RollbackTransaction', 'secretsmanager:GetSecretValue',
  ],
  'blob:read': ['s3:GetObject', 's3:ListBucket'],
  'blob:upload-build': ['s3:PutObject'],
  'queue:send': ['sqs:SendMessage'],
  'secret:webhook': ['secretsmanager:GetSecretValue'],
  'secret:admin': ['secretsmanager:GetSecretValue'],
  'build:start': ['codebuild:StartBuild'],
  'mail:send': ['ses:SendEmail', 'ses:SendRawEmail'],
  'sign:build': ['kms:GetPublicKey', 'kms:Sign'],
  'blob:read-index': ['s3:GetObject', 's3:ListBucket'],
  'blob:write-index': ['s3:PutObject'],
  'blob:delete': ['s3:DeleteObject'],
};

/** Every function writes its own log group. */
export const OWN_LOGS = ['logs:CreateLogStream', 'logs:PutLogEvents'];

/** The sorted, distinct actions `grants` imply, plus writing the function's own logs and `extra`. */
export function impliedActions(grants: readonly Grant[], extra: readonly string[] = []): string[] {
  return [...new Set([...OWN_LOGS, ...grants.flatMap((g) => IMPLIED_ACTIONS[g]), ...extra])].sort();
}

export type { Stack };
