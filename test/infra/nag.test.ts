// cdk-nag AwsSolutions over the whole app: nothing unacknowledged, and no acknowledgement without a finding.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { defineApp } from '../../infra/define-app.js';
import type { ServiceOptionsInput } from '../../infra/options.js';

const outdirs: string[] = [];
afterAll(() => {
  for (const dir of outdirs) rmSync(dir, { recursive: true, force: true });
});

/** Every option on, so every optional resource is checked too. */
const EVERYTHING: ServiceOptionsInput = {
  senderEmail: 'builds@example.org',
  alarmEmail: 'ops@example.org',
  bucketAccessLogs: true,
  customDomain: {
    domainName: 'builder.example.org',
    certificateArn: 'arn:aws:acm:eu-west-1:123456789012:certificate/abc',
    hostedZone: { hostedZoneId: 'Z123', zoneName: 'example.org' },
  },
};

interface ValidationReport {
  pluginReports: { pluginName: string; conclusion: string; violations: { ruleName: string; violatingConstructs: { constructPath: string }[] }[] }[];
}

/**
 * Synthesizes the app as `cdk synth` does, validation plugins included. Returns the pack's own verdict (the
 * report file lists only failures) and the findings CDK reported.
 */
function synthWithNag(options: ServiceOptionsInput, tamper?: (stacks: ReturnType<typeof defineApp>) => void) {
  const outdir = mkdtempSync(join(tmpdir(), 'enot-nag-'));
  outdirs.push(outdir);
  const app = new App({ outdir, context: { 'aws:cdk:bundling-stacks': [] } });
  const stacks = defineApp(app, options);
  tamper?.(stacks);
  const pack = new AwsSolutionsChecks(app);
  const validate = vi.spyOn(pack, 'validate');
  Validations.of(app).addPlugins(pack);
  let error: Error | undefined;
  try {
    app.synth();
  } catch (e) {
    error = e as Error;
  }
  const reportFile = join(outdir, 'validation-report.json');
  const report = existsSync(reportFile) ? (JSON.parse(readFileSync(reportFile, 'utf8')) as ValidationReport) : undefined;
  const findings = (report?.pluginReports ?? []).flatMap((r) => r.violations.map(
    (v) => `${v.ruleName} at ${v.violatingConstructs.map((c) => c.constructPath).join(', ')}`));
  return { error, findings, runs: validate.mock.results.map((r) => r.value as { success: boolean }) };
}

describe('cdk-nag AwsSolutions', () => {
  for (const [label, options] of [['defaults', {}], ['every option on', EVERYTHING]] as const) {
    it(`reports no unacknowledged finding (${label})`, () => {
      const { error, findings, runs } = synthWithNag(options);
      expect(findings).toEqual([]);
      expect(error).toBeUndefined();
      // It did run, once, over both stacks, and passed.
      expect(runs).toHaveLength(1);
      expect(runs[0].success).toBe(true);
    });
  }

  it('fails the synth on a finding nobody acknowledged', () => {
    const { error, findings } = synthWithNag({}, ({ data }) => new s3.Bucket(data, 'Unreviewed'));
    expect(error?.message).toMatch(/AwsSolutions-S1/);
    expect(findings).toContain('AwsSolutions-S1 at EnotBuilderData/Unreviewed/Resource');
  });

  it('acknowledges only findings that exist, each with a specific reason', () => {
    // Record acknowledgements instead of applying them, then see which findings they would have covered.
    const acknowledged: { id: string; reason: string; path: string }[] = [];
    type Acknowledge = (this: { scope: { node: { path: string } } }, rule: { id: string; reason: string }) => void;
    const prototype = Validations.prototype as unknown as { acknowledge: Acknowledge };
    const original = prototype.acknowledge;
    prototype.acknowledge = function (rule) {
      acknowledged.push({ ...rule, path: this.scope.node.path });
    };
    let findings: { ruleName: string; paths: string[] }[];
    try {
      const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
      defineApp(app, EVERYTHING);
      findings = new AwsSolutionsChecks(app).validateScope(app).violations.map((v) => ({
        ruleName: v.ruleName,
        paths: v.violatingResources.map((r) => r.constructPath ?? ''),
      }));
    } finally {
      prototype.acknowledge = original;
    }
    const nagAcks = acknowledged.filter((a) => a.id.startsWith('AwsSolutions-'));
    expect(nagAcks.length).toBeGreaterThan(0);
    for (const ack of nagAcks) {
      const covers = findings.some((f) => f.ruleName === ack.id && f.paths.some((p) => p === ack.path || p.startsWith(`${ack.path}/`)));
      expect(covers, `${ack.id} on ${ack.path} acknowledges nothing`).toBe(true);
      expect(ack.reason.length, `${ack.id} on ${ack.path}: reason too short`).toBeGreaterThanOrEqual(60);
    }
    // And every finding is acknowledged at or above the construct it is reported on.
    for (const finding of findings) {
      for (const path of finding.paths) {
        const covered = nagAcks.some((a) => a.id === finding.ruleName && (path === a.path || path.startsWith(`${a.path}/`)));
        expect(covered, `${finding.ruleName} at ${path}`).toBe(true);
      }
    }
  });
});
