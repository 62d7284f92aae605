// The shape of the code: each folder of src/ is a layer, and a module imports only its own layer or
// lower ones; no import cycles at all. Add a folder here when you add one to src/.
import { describe, expect, it } from 'vitest';
import { importGraph } from './helpers/imports.js';

/** Lowest first. Files directly in src/ (errors, log, format, shared, random) are the base layer. */
const LAYERS = ['', 'wasm', 'data', 'image', 'backbone', 'cache', 'extract', 'head', 'train', 'eval', 'run', 'export', 'cli', 'demo'];

function layerOf(file: string): number {
  const folder = file.includes('/') ? file.slice(0, file.indexOf('/')) : '';
  const i = LAYERS.indexOf(folder);
  if (i < 0) throw new Error(`src/${file}: folder "${folder}" has no layer in test/layers.test.ts`);
  return i;
}

describe('layers', () => {
  const g = importGraph();

  it('no module imports a higher layer', () => {
    const upward: string[] = [];
    for (const [file, deps] of g.files) {
      for (const d of deps) if (layerOf(d) > layerOf(file)) upward.push(`${file} -> ${d}`);
    }
    expect(upward).toEqual([]);
  });

  it('no import cycles', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const path: string[] = [];
    const visit = (f: string) => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'open') {
        cycles.push([...path.slice(path.indexOf(f)), f].join(' -> '));
        return;
      }
      state.set(f, 'open');
      path.push(f);
      for (const d of g.files.get(f) ?? []) visit(d);
      path.pop();
      state.set(f, 'done');
    };
    for (const f of g.files.keys()) visit(f);
    expect(cycles).toEqual([]);
  });

  it('finds the imports it checks (the walker is not blind)', () => {
    expect(g.files.get('cli/main.ts')?.length).toBeGreaterThan(3);
    expect(g.files.size).toBeGreaterThan(30);
  });
});
