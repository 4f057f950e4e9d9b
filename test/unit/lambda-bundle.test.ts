// What each route's Lambda bundle loads at init: the S3 SDK only on first use, so routes without blobs never load it.
import { build, type Metafile } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { routes } from '#functions/routes.js';
import { esbuildOptions } from '../../infra/bundling.js';

const FUNCTIONS_DIR = fileURLToPath(new URL('../../functions/', import.meta.url));
const S3_MODULES = ['@aws-sdk/client-s3', '@aws-sdk/s3-request-presigner'];

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
  it.each(routes.map((r) => [r.name, r] as const))('%s loads the S3 SDK only on first use', async (_name, route) => {
    const { atInit, text } = await bundle(route.entry);
    for (const sdk of S3_MODULES) {
      expect(atInit, sdk).not.toContain(sdk);
      // Still named in the bundle: the blob store requires it when first used.
      expect(text).toContain(JSON.stringify(sdk));
    }
  });

  it.each(routes.map((r) => [r.name, r] as const))('%s loads at init only what the Lambda runtime provides', async (_name, route) => {
    const { atInit, text } = await bundle(route.entry);
    // Node's own modules and the AWS SDK ship with the runtime; pg and PGlite are not in the deployment package.
    const unavailable = atInit.filter((m) => !m.startsWith('node:') && !m.startsWith('@aws-sdk/') && !m.startsWith('@smithy/'));
    expect(unavailable).toEqual([]);
    expect(text).not.toMatch(/from\s*"pg"|from\s*"@electric-sql\/pglite/);
  });
});
