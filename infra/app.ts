// The CDK app cdk.json runs: settings from context (`-c key=value` or cdk.json), both stacks, cdk-nag on synth.
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { defineApp } from './define-app.js';
import { serviceOptionsFromContext } from './options.js';

const app = new App();
defineApp(app, serviceOptionsFromContext((key) => app.node.tryGetContext(key)));
// Any unacknowledged AwsSolutions finding fails the synth.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
app.synth();
