// The offline synth from a fresh clone: the real `cdk synth` (esbuild bundling, cdk-nag) with no AWS
// credentials, region or Docker, writing both templates and a bundle per function.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routes, workers } from '#functions/routes.js';
import { MIGRATIONS_DIR } from '#adapters/postgres/migrations.js';
import { PROJECT_ROOT } from '../../infra/paths.js';

const scratch = mkdtempSync(join(tmpdir(), 'enot-synth-'));
const outdir = join(scratch, 'cdk.out');
let result: ReturnType<typeof spawnSync>;

/** The environment minus anything that could point the CLI at an account, a region or a profile. */
function offlineEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(AWS_|CDK_DEFAULT_)/.test(key)) continue;
    env[key] = value;
  }
  return {
    ...env,
    CDK_HOME: join(scratch, 'cdk-home'),
    CDK_DISABLE_VERSION_CHECK: 'true',
    CDK_DISABLE_CLI_TELEMETRY: 'true',
    // Whatever profile a developer has, the synth must not need it.
    AWS_CONFIG_FILE: join(scratch, 'no-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(scratch, 'no-credentials'),
  };
}

const hadContextFile = existsSync(join(PROJECT_ROOT, 'cdk.context.json'));

beforeAll(() => {
  result = spawnSync('npx', ['cdk', 'synth', '--quiet', '--no-notices', '--output', outdir], {
    cwd: PROJECT_ROOT,
    env: offlineEnv(),
    encoding: 'utf8',
    timeout: 240_000,
  });
}, 300_000);

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

type Template = { Resources: Record<string, { Type: string; Properties: Record<string, any> }> };
const templateOf = (stack: string) => JSON.parse(readFileSync(join(outdir, `${stack}.template.json`), 'utf8')) as Template;

/** The bundle directory of a function resource. */
function bundleOf(fn: { Properties: Record<string, any> }): string {
  return join(outdir, `asset.${fn.Properties.Code.S3Key.replace(/\.zip$/, '')}`);
}

describe('npx cdk synth, offline', () => {
  it('exits 0 and writes both stack templates', () => {
    expect(result.error).toBeUndefined();
    expect(result.status, `${result.stdout}\n${result.stderr}`).toBe(0);
    expect(existsSync(join(outdir, 'EnotBuilderData.template.json'))).toBe(true);
    expect(existsSync(join(outdir, 'EnotBuilderService.template.json'))).toBe(true);
  });

  it('looks nothing up: no account, no region, no context file', () => {
    const manifest = JSON.parse(readFileSync(join(outdir, 'manifest.json'), 'utf8')) as { missing?: unknown[]; artifacts: Record<string, { environment?: string }> };
    expect(manifest.missing ?? []).toEqual([]);
    expect(manifest.artifacts.EnotBuilderData.environment).toBe('aws://unknown-account/unknown-region');
    expect(manifest.artifacts.EnotBuilderService.environment).toBe('aws://unknown-account/unknown-region');
    expect(existsSync(join(PROJECT_ROOT, 'cdk.context.json'))).toBe(hadContextFile);
  });

  it('bundles each route and worker from its own entry module as ESM with a source map', () => {
    const functions = Object.values(templateOf('EnotBuilderService').Resources).filter((r) => r.Type === 'AWS::Lambda::Function');
    const entries = [...routes, ...workers];
    expect(functions).toHaveLength(entries.length);
    for (const route of entries) {
      const fn = functions.find((f) => f.Properties.FunctionName === `EnotBuilderService-${route.name}`);
      expect(fn, route.name).toBeDefined();
      const dir = bundleOf(fn!);
      expect(readdirSync(dir).sort()).toEqual(['index.mjs', 'index.mjs.map']);
      const map = JSON.parse(readFileSync(join(dir, 'index.mjs.map'), 'utf8')) as { sources: string[] };
      expect(map.sources.some((s) => s.endsWith(`functions/${route.entry}`)), route.entry).toBe(true);
      // Only the entry of this function, not another's.
      const otherEntries = entries.filter((r) => r.entry !== route.entry).map((r) => `functions/${r.entry}`);
      expect(map.sources.filter((s) => otherEntries.some((e) => s.endsWith(e)))).toEqual([]);
      const code = readFileSync(join(dir, 'index.mjs'), 'utf8');
      expect(code.startsWith("import { createRequire as __enotCreateRequire } from 'node:module';")).toBe(true);
    }
  });

  it('stages the builder image from buildspec/ for the deploy to build, without building it', () => {
    const assets = JSON.parse(readFileSync(join(outdir, 'EnotBuilderService.assets.json'), 'utf8')) as {
      dockerImages: Record<string, { source: { directory: string; dockerFile?: string; platform?: string } }>;
    };
    const images = Object.values(assets.dockerImages ?? {});
    expect(images).toHaveLength(1);
    expect(images[0].source).toMatchObject({ platform: 'linux/amd64', dockerFile: 'buildspec/Dockerfile' });
    const staged = join(outdir, images[0].source.directory);
    expect(readFileSync(join(staged, 'buildspec', 'Dockerfile'), 'utf8'))
      .toBe(readFileSync(join(PROJECT_ROOT, 'buildspec', 'Dockerfile'), 'utf8'));
    // Not the rest of the repository: a change there must not rebuild the OTP releases.
    expect(readdirSync(staged).sort()).toEqual(['buildspec', 'functions']);
  });

  it('ships the SQL migrations beside the migration function', () => {
    const [migrate] = Object.values(templateOf('EnotBuilderData').Resources)
      .filter((r) => r.Type === 'AWS::Lambda::Function' && String(r.Properties.Description).startsWith('Applies the SQL migrations'));
    const dir = bundleOf(migrate);
    const sources = readdirSync(MIGRATIONS_DIR).filter((n) => n.endsWith('.sql')).sort();
    expect(readdirSync(join(dir, 'migrations')).sort()).toEqual(sources);
    for (const name of sources) {
      expect(readFileSync(join(dir, 'migrations', name), 'utf8')).toBe(readFileSync(join(MIGRATIONS_DIR, name), 'utf8'));
    }
  });
});
