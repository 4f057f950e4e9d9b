// What each Lambda bundle (every route and worker) loads at init: the AWS SDK clients only on first use, so a
// function that never touches blobs, the queue, CodeBuild or SES never loads their SDKs.
import { build, type Metafile } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { routes, workers } from '#functions/routes.js';
import { esbuildOptions } from '../../infra/bundling.js';

const FUNCTIONS_DIR = fileURLToPath(new URL('../../functions/', import.meta.url));
const S3_MODULES = ['@aws-sdk/client-s3', '@aws-sdk/s3-request-presigner'];
/** The build pipeline's SDKs: every bundle names them (wiring builds every adapter), none loads them at init. */
const PIPELINE_MODULES = ['@aws-sdk/client-sqs', '@aws-sdk/client-codebuild', '@aws-sdk/client-ses'];
const FUNCTIONS = [...routes, ...workers].map((f) => [f.name, f] as const);

interface Bundle {
  /** External modules imported statically: loaded when the bundle is. */
  atInit: string[];
  text: string;
}

async function bundle(entry: string): Promise<Bundle> {
  const result = await build({
    ...esbuildOptions, entryPoints: [FUNCTIONS_DIR + entry], write: false, outdir: 'out', metafile: true, logLevel: 'silent',
  });
  const output = Object.values((result.metafile as Metafile).outputs).find((o) => o.entryPoint);
  const js = result.outputFiles.find((f) => f.path.endsWith('.js'));
  return {
    atInit: (output?.imports ?? []).filter((i) => i.external && i.kind === 'import-statement').map((i) => i.path),
    text: js?.text ?? '',
  };
}

describe('Lambda bundles', () => {
  it.each(FUNCTIONS)('%s loads the S3 SDK only on first use', async (_name, route) => {
    const { atInit, text } = await bundle(route.entry);
    for (const sdk of S3_MODULES) {
      expect(atInit, sdk).not.toContain(sdk);
      // Still named in the bundle: the blob store requires it when first used.
      expect(text).toContain(JSON.stringify(sdk));
    }
  });

  it.each(FUNCTIONS)('%s loads the SQS, CodeBuild and SES SDKs only on first use', async (_name, route) => {
    const { atInit, text } = await bundle(route.entry);
    for (const sdk of PIPELINE_MODULES) {
      expect(atInit, sdk).not.toContain(sdk);
      expect(text).toContain(JSON.stringify(sdk));
    }
  });

  it.each(FUNCTIONS)('%s loads at init only what the Lambda runtime provides', async (_name, route) => {
    const { atInit, text } = await bundle(route.entry);
    // Node's own modules and the AWS SDK ship with the runtime; pg and PGlite are not in the deployment package.
    const unavailable = atInit.filter((m) => !m.startsWith('node:') && !m.startsWith('@aws-sdk/') && !m.startsWith('@smithy/'));
    expect(unavailable).toEqual([]);
    expect(text).not.toMatch(/from\s*"pg"|from\s*"@electric-sql\/pglite/);
  });
});
