// The layers of functions/, read from the imports of every file: core at the centre, http and the entry points
// around it, adapters behind the ports, wiring.ts the one place that builds adapters for the entry points.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../infra/paths.js';

const FUNCTIONS = join(PROJECT_ROOT, 'functions');

/** The package.json subpath imports, as functions/ uses them. */
const SUBPATHS: Record<string, string> = {
  '#core/': 'functions/core/',
  '#http/': 'functions/http/',
  '#adapters/': 'functions/adapters/',
  '#functions/': 'functions/',
};

// `import ... from 'x'`, `export ... from 'x'`, `import 'x'` and `import('x')`, type-only ones included: a type
// import still ties a layer to another's shape.
const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|(?:^|\n)\s*import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

/** What a file imports: repository paths (`functions/core/ports.js`) for our modules, package names otherwise. */
export function importsOf(file: string, source: string): string[] {
  const found: string[] = [];
  for (const m of source.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (!spec) continue;
    const prefix = Object.keys(SUBPATHS).find((p) => spec.startsWith(p));
    if (prefix) found.push(SUBPATHS[prefix] + spec.slice(prefix.length));
    else if (spec.startsWith('.')) found.push(posix.normalize(posix.join(posix.dirname(file), spec)));
    else found.push(spec);
  }
  return found;
}

interface Rule {
  /** Which files it governs (repository paths). */
  from: RegExp;
  /** What they may not import, as a test of the import. */
  forbids: (target: string) => boolean;
  why: string;
}

const isOurs = (t: string) => t.startsWith('functions/');
const RULES: Rule[] = [
  {
    from: /^functions\/core\//,
    // Node's own modules (crypto, streams) are no SDK; the rest of the world is.
    forbids: (t) => (isOurs(t) ? !t.startsWith('functions/core/') : !(t === 'zod' || t.startsWith('node:'))),
    why: 'core/ imports only core/, zod and node: builtins',
  },
  {
    from: /^functions\/http\//,
    forbids: (t) => t === 'functions/wiring.js' || t === 'functions/wiring.ts' || t.startsWith('functions/adapters/'),
    why: 'http/ imports neither wiring nor adapters/',
  },
  {
    from: /^functions\/(api|workers)\//,
    forbids: (t) => t.startsWith('functions/adapters/'),
    why: 'api/ and workers/ get adapters from wiring, never directly',
  },
  {
    from: /^functions\/adapters\//,
    forbids: (t) => t.startsWith('functions/http/'),
    why: 'adapters import no http/',
  },
];

/** Every `file -> import` that breaks a rule, with the rule's reason. */
export function violations(files: ReadonlyMap<string, string>): string[] {
  const found: string[] = [];
  for (const [file, source] of files) {
    for (const rule of RULES) {
      if (!rule.from.test(file)) continue;
      for (const target of importsOf(file, source)) {
        if (rule.forbids(target)) found.push(`${file} -> ${target} (${rule.why})`);
      }
    }
  }
  return found;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.(ts|mts|mjs|js)$/.test(entry.name) ? [path] : [];
  });
}

describe('layer boundaries under functions/', () => {
  it('has no import that reaches the wrong way', () => {
    const files = new Map(
      sourceFiles(FUNCTIONS).map((path) => [relative(PROJECT_ROOT, path).split('\\').join('/'), readFileSync(path, 'utf8')]),
    );
    // Enough files were read for the check to mean something.
    expect([...files.keys()].filter((f) => f.startsWith('functions/core/')).length).toBeGreaterThan(10);
    expect(violations(files)).toEqual([]);
  });

  it('flags each kind of wrong-way import', () => {
    const files = new Map([
      ['functions/core/a.ts', "import { Store } from '#adapters/postgres/open-store.js';\nimport pg from 'pg';"],
      ['functions/core/b.ts', "import type { Config } from '../config.js';"],
      ['functions/http/c.ts', "import { deps } from '#functions/wiring.js';"],
      ['functions/http/d.ts', "export { S3BlobStore } from '../adapters/blob/s3-blob-store.js';"],
      ['functions/api/e.ts', "const m = await import('#adapters/secrets/webhook-secret.js');"],
      ['functions/workers/f.ts', "import '../adapters/queue/sqs-build-queue.js';"],
      ['functions/adapters/g/h.ts', "import { ok } from '#http/envelope.js';"],
    ]);
    expect(violations(files).map((v) => v.split(' -> ')[0])).toEqual([
      'functions/core/a.ts', 'functions/core/a.ts', 'functions/core/b.ts', 'functions/http/c.ts', 'functions/http/d.ts',
      'functions/api/e.ts', 'functions/workers/f.ts', 'functions/adapters/g/h.ts',
    ]);
  });

  it('lets each layer import what it may', () => {
    const files = new Map([
      ['functions/core/a.ts', "import * as z from 'zod';\nimport { createHash } from 'node:crypto';\nimport type { Store } from './ports.js';"],
      ['functions/http/b.ts', "import { ValidationError } from '#core/errors.js';\nimport type { Log } from '#functions/log.js';"],
      ['functions/api/c.ts', "import { endpoint } from '#functions/service-endpoint.js';\nimport { ok } from '#http/envelope.js';"],
      ['functions/workers/d.ts', "import { deps } from '#functions/wiring.js';"],
      ['functions/adapters/e/f.ts', "import type { Store } from '#core/ports.js';"],
    ]);
    expect(violations(files)).toEqual([]);
    expect(importsOf('functions/api/c.ts', "import { x } from '../core/x.js';")).toEqual(['functions/core/x.js']);
    expect(dirname('functions/api/c.ts')).toBe('functions/api');
  });
});
