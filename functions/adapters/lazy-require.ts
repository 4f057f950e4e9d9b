// AWS SDK clients are CommonJS and come with the Lambda runtime: they are required (cheaper to load than
// an ESM import) and only on first use, so a function that never calls a service never loads its SDK.
import { createRequire } from 'node:module';

const requireCommonJs = createRequire(import.meta.url);

/** A function that loads `moduleName` on its first call and returns the same module afterwards. */
export function lazyRequire<T>(moduleName: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= requireCommonJs(moduleName) as T);
}
