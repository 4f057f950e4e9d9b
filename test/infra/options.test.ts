// Deployment settings: defaults, context strings and lists, and refusals with a message that says why.
import { App } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import { resolveServiceOptions, serviceOptionsFromContext } from '../../infra/options.js';
import { synthApp } from './app-fixture.js';

const fromContext = (context: Record<string, unknown>) => {
  const app = new App({ context });
  return serviceOptionsFromContext((key) => app.node.tryGetContext(key));
};

describe('service options', () => {
  it('defaults to OTP 25, 26 and 27 with 25 by default, GitHub clones, no mail and no alarm email', () => {
    expect(resolveServiceOptions()).toEqual({
      otpReleases: ['25', '26', '27'],
      defaultOtpRelease: '25',
      allowedCloneUrls: ['https://github.com/'],
      logLevel: 'info',
      buildTimeoutMinutes: 15,
      bucketAccessLogs: false,
    });
  });

  it('reads `-c key=value` strings: comma lists, JSON lists, JSON objects and booleans', () => {
    const options = fromContext({
      senderEmail: 'builds@example.org',
      alarmEmail: 'ops@example.org',
      otpReleases: '26, 27',
      defaultOtpRelease: '27',
      allowedCloneUrls: '["https://github.com/", "https://gitlab.com/"]',
      customDomain: '{"domainName":"builder.example.org","certificateArn":"arn:aws:acm:eu-west-1:1:certificate/x"}',
      bucketAccessLogs: 'true',
      logLevel: 'debug',
      buildTimeoutMinutes: '30',
    });
    expect(options).toEqual({
      senderEmail: 'builds@example.org',
      alarmEmail: 'ops@example.org',
      otpReleases: ['26', '27'],
      defaultOtpRelease: '27',
      allowedCloneUrls: ['https://github.com/', 'https://gitlab.com/'],
      customDomain: { domainName: 'builder.example.org', certificateArn: 'arn:aws:acm:eu-west-1:1:certificate/x' },
      bucketAccessLogs: true,
      logLevel: 'debug',
      buildTimeoutMinutes: 30,
    });
  });

  it('reads the same keys as real lists and objects (cdk.json context)', () => {
    const options = fromContext({ otpReleases: ['24', '25'], customDomain: { domainName: 'a.example.org', certificateArn: 'arn:x' } });
    expect(options.otpReleases).toEqual(['24', '25']);
    expect(options.customDomain?.domainName).toBe('a.example.org');
  });

  it('refuses a default release that is not among the releases', () => {
    expect(() => fromContext({ otpReleases: '26,27' })).toThrow(/defaultOtpRelease must be one of otpReleases/);
  });

  it('refuses malformed values, naming each', () => {
    expect(() => resolveServiceOptions({ senderEmail: 'nobody', otpReleases: ['r25'] }))
      .toThrow(/senderEmail.*otpReleases\.0: must be an OTP release/s);
    expect(() => resolveServiceOptions({ allowedCloneUrls: ['https://a/,b'] })).toThrow(/must not contain a comma/);
    expect(() => fromContext({ customDomain: '{not json' })).toThrow(/Invalid enot-builder settings/);
    // CodeBuild's own bounds, in whole minutes.
    expect(() => fromContext({ buildTimeoutMinutes: '4' })).toThrow(/buildTimeoutMinutes/);
    expect(() => fromContext({ buildTimeoutMinutes: '2161' })).toThrow(/buildTimeoutMinutes/);
    expect(() => fromContext({ buildTimeoutMinutes: '7.5' })).toThrow(/buildTimeoutMinutes/);
  });

  it('flows into the stacks: releases, clone URLs and log level reach every function', () => {
    const { serviceTemplate } = synthApp({ otpReleases: ['26', '27'], defaultOtpRelease: '26', allowedCloneUrls: ['https://github.com/', 'https://gitlab.com/'], logLevel: 'warn' });
    const functions = Object.values(serviceTemplate.findResources('AWS::Lambda::Function')) as { Properties: { Environment: { Variables: Record<string, unknown> } } }[];
    expect(functions.length).toBeGreaterThan(0);
    for (const fn of functions) {
      expect(fn.Properties.Environment.Variables).toMatchObject({
        ENOT_DEFAULT_ERL_VERSION: '26',
        ENOT_ALLOWED_CLONE_URLS: 'https://github.com/,https://gitlab.com/',
        ENOT_LOG_LEVEL: 'warn',
      });
    }
  });
});
