// Where the CDK app finds the code it deploys, relative to this file so any checkout works.
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** The repository root: package.json, package-lock.json, functions/. */
export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The lock file NodejsFunction keys its bundling on. */
export const LOCK_FILE = join(PROJECT_ROOT, 'package-lock.json');

/** The absolute path of a module under functions/ (a route's `entry`, e.g. "api/search.ts"). */
export function functionEntry(entry: string): string {
  return join(PROJECT_ROOT, 'functions', entry);
}
