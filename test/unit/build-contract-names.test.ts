// The build contract's names are plain JavaScript (the build scripts run without TypeScript) with hand-written
// types beside them; this keeps the two the same shape, since tsc does not read the .mjs against its .d.mts.
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import * as names from '#core/build-contract-names.mjs';
import { PROJECT_ROOT } from '../../infra/paths.js';

const DECLARATIONS = join(PROJECT_ROOT, 'functions/core/build-contract-names.d.mts');

/** Each declared export: a function, or an object with these keys, or a plain value. */
function declaredShapes(): Map<string, { kind: 'function' } | { kind: 'object'; keys: string[] } | { kind: 'value' }> {
  const program = ts.createProgram([DECLARATIONS], { strict: true, module: ts.ModuleKind.NodeNext, noEmit: true });
  const checker = program.getTypeChecker();
  const file = program.getSourceFile(DECLARATIONS);
  if (!file) throw new Error(`cannot read ${DECLARATIONS}`);
  const module = checker.getSymbolAtLocation(file);
  if (!module) throw new Error(`${DECLARATIONS} declares no module`);
  const shapes = new Map<string, { kind: 'function' } | { kind: 'object'; keys: string[] } | { kind: 'value' }>();
  // Values only: a declaration file also exports its type aliases.
  for (const symbol of checker.getExportsOfModule(module).filter((s) => s.flags & ts.SymbolFlags.Value)) {
    const type = checker.getTypeOfSymbolAtLocation(symbol, file);
    if (type.getCallSignatures().length > 0) shapes.set(symbol.name, { kind: 'function' });
    else if (type.flags & ts.TypeFlags.Object) shapes.set(symbol.name, { kind: 'object', keys: type.getProperties().map((p) => p.name).sort() });
    else shapes.set(symbol.name, { kind: 'value' });
  }
  return shapes;
}

describe('build-contract-names.mjs against its declarations', () => {
  const declared = declaredShapes();
  const actual = names as Record<string, unknown>;

  it('exports exactly what the declarations name', () => {
    expect(declared.size).toBeGreaterThan(5);
    expect(Object.keys(actual).sort()).toEqual([...declared.keys()].sort());
  });

  it.each([...declared.keys()])('%s has the declared shape', (name) => {
    const shape = declared.get(name)!;
    const value = actual[name];
    if (shape.kind === 'function') expect(typeof value).toBe('function');
    else if (shape.kind === 'object') expect(Object.keys(value as object).sort()).toEqual(shape.keys);
    else expect(typeof value === 'object' || typeof value === 'function').toBe(false);
  });
});
