// What each Lambda bundle (every route and worker) loads at init: the AWS SDK clients only on first use, so a
// function that never touches blobs, the queue, CodeBuild or SES never loads their SDKs.
import { build } from 'esbuild';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { routes, workers } from '#functions/routes.js';
import { esbuildOptions } from '../../infra/bundling.js';
import { PROJECT_ROOT } from '../../infra/paths.js';

const S3_MODULES = ['@aws-sdk/client-s3', '@aws-sdk/s3-request-presigner'];
/** The build pipeline's SDKs: every bundle names them (wiring builds every adapter), none loads them at init. */
const PIPELINE_MODULES = ['@aws-sdk/client-sqs', '@aws-sdk/client-codebuild', '@aws-sdk/client-ses'];
const FUNCTIONS = [...routes, ...workers].map((f) => [f.name, f] as const);

interface Bundle {
  /** External modules imported statically: loaded when the bundle is. */
  atInit: string[];
  text: string;
}

/** Each function's bundle by its entry ("api/search.ts"), from one esbuild run over every entry point. */
let bundles: Map<string, Bundle>;

// Without `splitting` every entry point gets a bundle of its own, the same as one esbuild run per function would
// make, so one run serves every function and every assertion below.
async function bundleAll(entries: readonly string[]): Promise<Map<string, Bundle>> {
  const result = await build({
    ...esbuildOptions,
    absWorkingDir: PROJECT_ROOT,
    entryPoints: entries.map((entry) => join('functions', entry)),
    write: false,
    outdir: 'out',
    metafile: true,
    logLevel: 'silent',
  });
  const byEntry = new Map<string, Bundle>();
  for (const [outputPath, output] of Object.entries(result.metafile.outputs)) {
    if (!output.entryPoint || !outputPath.endsWith('.js')) continue;
    const js = result.outputFiles.find((f) => f.path === join(PROJECT_ROOT, outputPath));
    byEntry.set(output.entryPoint.replace(/^functions\//, ''), {
      atInit: output.imports.filter((i) => i.external && i.kind === 'import-statement').map((i) => i.path),
      text: js?.text ?? '',
    });
  }
  return byEntry;
}

function bundleOf(entry: string): Bundle {
  const found = bundles.get(entry);
  if (!found) throw new Error(`no bundle for ${entry}`);
  return found;
}

beforeAll(async () => {
  bundles = await bundleAll([...new Set(FUNCTIONS.map(([, f]) => f.entry))]);
});

describe('Lambda bundles', () => {
  it.each(FUNCTIONS)('%s loads the S3 SDK only on first use', (_name, route) => {
    const { atInit, text } = bundleOf(route.entry);
    for (const sdk of S3_MODULES) {
      expect(atInit, sdk).not.toContain(sdk);
      // Still named in the bundle: the blob store requires it when first used.
      expect(text).toContain(JSON.stringify(sdk));
    }
  });

  it.each(FUNCTIONS)('%s loads the SQS, CodeBuild and SES SDKs only on first use', (_name, route) => {
    const { atInit, text } = bundleOf(route.entry);
    for (const sdk of PIPELINE_MODULES) {
      expect(atInit, sdk).not.toContain(sdk);
      expect(text).toContain(JSON.stringify(sdk));
    }
  });

  it.each(FUNCTIONS)('%s loads at init only what the Lambda runtime provides', (_name, route) => {
    const { atInit, text } = bundleOf(route.entry);
    // Node's own modules and the AWS SDK ship with the runtime; pg and PGlite are not in the deployment package.
    const unavailable = atInit.filter((m) => !m.startsWith('node:') && !m.startsWith('@aws-sdk/') && !m.startsWith('@smithy/'));
    expect(unavailable).toEqual([]);
    expect(text).not.toMatch(/from\s*"pg"|from\s*"@electric-sql\/pglite/);
  });
});
