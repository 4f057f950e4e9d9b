// How every Lambda is bundled: shared by the CDK stack (NodejsFunction) and the benchmark's cold-start figures.

/** Node's `require` inside an ESM bundle, for CommonJS dependencies that call it. */
export const ESM_REQUIRE_SHIM =
  "import { createRequire as __enotCreateRequire } from 'node:module'; const require = __enotCreateRequire(import.meta.url);";

/**
 * Left out of every bundle: the AWS SDK v3 ships with the Node 22 Lambda runtime, and the local-only
 * database drivers (pg, PGlite) are loaded lazily by functions/adapters/postgres/open-store.ts and
 * never in the aws runtime.
 */
export const EXTERNAL_MODULES = ['@aws-sdk/*', '@smithy/*', '@electric-sql/pglite', 'pg', 'pg-native'];

export const BUNDLE_TARGET = 'node22';

/** esbuild options equivalent to the stack's NodejsFunction bundling. */
export const esbuildOptions = {
  bundle: true,
  platform: 'node' as const,
  format: 'esm' as const,
  target: BUNDLE_TARGET,
  minify: true,
  sourcemap: true,
  mainFields: ['module', 'main'],
  external: EXTERNAL_MODULES,
  banner: { js: ESM_REQUIRE_SHIM },
};
