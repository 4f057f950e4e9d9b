// The layers of functions/, read from the imports of every file: core at the centre, http and the entry points
// around it, adapters behind the ports, wiring.ts the one place that builds adapters for the entry points.
import { readdirSync, readFileSync } from 'node:fs';
import { join, posix, relative } from 'node:path';
import ts from 'typescript';
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

/** Every module a file names: imports, re-exports, dynamic imports, `import x = require()` and `require()` calls. */
function specifiersOf(source: string): string[] {
  // TypeScript's own scanner, so multi-line imports, comments and strings are read as the compiler reads them.
  const scanned = ts.preProcessFile(source, true, true).importedFiles.map((f) => f.fileName);
  // require() and createRequire(...)(x), and import() of a template literal, are caught by their text.
  const required = [...source.matchAll(/(?:\brequire|createRequire\([^)]*\))\s*\(\s*[`'"]([^`'"$]+)[`'"]/g)].map((m) => m[1]);
  const dynamic = [...source.matchAll(/\bimport\s*\(\s*`([^`$]+)`/g)].map((m) => m[1]);
  return [...new Set([...scanned, ...required, ...dynamic])];
}

/** What a file imports: repository paths (`functions/core/ports.js`) for our modules, package names otherwise. */
export function importsOf(file: string, source: string): string[] {
  return specifiersOf(source).map((spec) => {
    const prefix = Object.keys(SUBPATHS).find((p) => spec.startsWith(p));
    if (prefix) return SUBPATHS[prefix] + spec.slice(prefix.length);
    if (spec.startsWith('.')) return posix.normalize(posix.join(posix.dirname(file), spec));
    return spec;
  });
}

interface Rule {
  /** Which files it governs (repository paths). */
  from: RegExp;
  /** What they may not import, as a test of the import. */
  forbids: (target: string) => boolean;
  why: string;
  /** Also through the modules under functions/ it imports, and theirs. */
  transitive?: boolean;
}

/** Our modules by their import path: `x.js` is the file `x.ts` (or `x.mts` for `.mjs`), as tsc resolves it. */
function sourceOf(files: ReadonlyMap<string, string>, target: string): string | undefined {
  const candidates = [target, target.replace(/\.js$/, '.ts'), target.replace(/\.mjs$/, '.mts')];
  for (const c of candidates) if (files.has(c)) return c;
  return undefined;
}

/** Everything a file reaches: its imports, and for our own modules, theirs in turn. */
function reachable(files: ReadonlyMap<string, string>, file: string): string[] {
  const seen = new Set<string>();
  const queue = [file];
  while (queue.length > 0) {
    const current = queue.pop()!;
    for (const target of importsOf(current, files.get(current) ?? '')) {
      if (seen.has(target)) continue;
      seen.add(target);
      const next = sourceOf(files, target);
      if (next && next !== file) queue.push(next);
    }
  }
  return [...seen];
}

const isOurs = (t: string) => t.startsWith('functions/');
/** The Node modules the core may use: pure computation and types, nothing that loads code or touches the machine. */
const CORE_NODE_MODULES = new Set(['node:crypto', 'node:stream', 'node:buffer', 'node:util']);
const isWiring = (t: string) => t.startsWith('functions/wiring.') || t.startsWith('functions/service-endpoint.');
const RULES: Rule[] = [
  {
    from: /^functions\/core\//,
    forbids: (t) => (isOurs(t) ? !t.startsWith('functions/core/') : !(t === 'zod' || CORE_NODE_MODULES.has(t))),
    why: `core/ imports only core/, zod and ${[...CORE_NODE_MODULES].join(', ')}`,
  },
  {
    from: /^functions\/http\//,
    forbids: (t) => isWiring(t) || t.startsWith('functions/adapters/'),
    why: 'http/ reaches neither wiring nor adapters/, directly or through another module',
    transitive: true,
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
      for (const target of rule.transitive ? reachable(files, file) : importsOf(file, source)) {
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
    return /\.(ts|mts|cts|tsx|mjs|cjs|js)$/.test(entry.name) ? [path] : [];
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
      // The forms a line-by-line reader misses.
      ['functions/core/i.ts', "import {\n  a, // the store's\n  b,\n} from '#adapters/x.js';"],
      ['functions/core/j.ts', "const m = await import(`#adapters/x.js`);"],
      ['functions/core/k.ts', "const pg = createRequire(import.meta.url)('pg');"],
      ['functions/core/l.ts', "import pg = require('pg');"],
      ['functions/core/m.ts', "const x = 1; import { y } from '../wiring.js';"],
      ['functions/core/n.ts', "import { createRequire } from 'node:module';"],
      // http/ through a module that is not itself an adapter or wiring.
      ['functions/http/o.ts', "import { endpoint } from '#functions/service-endpoint.js';"],
      ['functions/http/p.ts', "import { q } from './q.js';"],
      ['functions/http/q.ts', "import { r } from '../r.js';"],
      ['functions/r.ts', "import { S3BlobStore } from './adapters/blob/s3-blob-store.js';"],
    ]);
    expect(violations(files).map((v) => v.split(' -> ')[0])).toEqual([
      'functions/core/a.ts', 'functions/core/a.ts', 'functions/core/b.ts', 'functions/http/c.ts', 'functions/http/d.ts',
      'functions/api/e.ts', 'functions/workers/f.ts', 'functions/adapters/g/h.ts',
      'functions/core/i.ts', 'functions/core/j.ts', 'functions/core/k.ts', 'functions/core/l.ts', 'functions/core/m.ts',
      'functions/core/n.ts', 'functions/http/o.ts', 'functions/http/p.ts', 'functions/http/q.ts',
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
  });
});
