// The two stacks of one deployment, wired together; app.ts and the tests both build the app through here.
import type { App } from 'aws-cdk-lib';
import { resolveServiceOptions, type ServiceOptionsInput } from './options.js';
import { StatefulStack } from './stateful-stack.js';
import { StatelessStack } from './stateless-stack.js';

export const STATEFUL_STACK_NAME = 'EnotBuilderData';
export const STATELESS_STACK_NAME = 'EnotBuilderService';

/** Adds both stacks to `app`; environment-agnostic (no account or region), so synth needs no lookups. */
export function defineApp(app: App, input: ServiceOptionsInput = {}): { data: StatefulStack; service: StatelessStack } {
  const { bucketAccessLogs, ...serviceOptions } = resolveServiceOptions(input);
  const data = new StatefulStack(app, STATEFUL_STACK_NAME, {
    description: 'enot-builder data: artifact bucket, Aurora PostgreSQL (Data API), webhook secret',
    bucketAccessLogs,
  });
  const service = new StatelessStack(app, STATELESS_STACK_NAME, {
    description: 'enot-builder service: REST API, Lambda functions, build queue and CodeBuild pipeline, mail, alarms and dashboard',
    ...serviceOptions,
    data: data.exports,
  });
  // Named exports are plain imports to CDK, so the deploy order is said here.
  service.addStackDependency(data);
  return { data, service };
}
