// Builds the CDK app for the infra tests: both stacks, bundling skipped (the synth test bundles for real).
import { App, type Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
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

export type { Stack };
