// The static import graph of src/: which modules each source file imports (relative ones resolved to
// src-relative .ts paths, packages by name). Used by the layering test and by tests that promise a
// command never loads a heavy module.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

export interface ImportGraph {
  /** src-relative file -> src-relative files it imports (static and dynamic). */
  files: Map<string, string[]>;
  /** src-relative file -> packages it imports. */
  packages: Map<string, string[]>;
  /** src-relative file -> files it imports for types only (erased at run time: not loaded). */
  typeOnly: Map<string, Set<string>>;
}

const IMPORT = /(?:import|export)(\s+type\s)?[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|new URL\(\s*['"](\.[^'"]+)['"]/g;

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) sourceFiles(p, out);
    else if (f.endsWith('.ts')) out.push(p);
  }
  return out;
}

export function importGraph(): ImportGraph {
  const files = new Map<string, string[]>();
  const packages = new Map<string, string[]>();
  const typeOnly = new Map<string, Set<string>>();
  for (const abs of sourceFiles(SRC)) {
    const file = relative(SRC, abs);
    const deps: string[] = [];
    const types = new Set<string>();
    const pkgs: string[] = [];
    for (const m of readFileSync(abs, 'utf8').matchAll(IMPORT)) {
      const spec = m[2] ?? m[3] ?? m[4]!;
      if (spec.startsWith('.')) {
        const target = relative(SRC, resolve(dirname(abs), spec).replace(/\.js$/, '.ts'));
        if (target.startsWith('..')) continue; // the onnx worker's dist/ URL points outside src
        deps.push(target);
        if (m[1]) types.add(target);
      } else if (!spec.startsWith('node:')) pkgs.push(spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/'));
    }
    files.set(file, deps);
    packages.set(file, pkgs);
    typeOnly.set(file, types);
  }
  return { files, packages, typeOnly };
}

/** Every file loaded at run time from `entry` (src-relative; type-only imports skipped), and the packages they import. */
export function reachable(g: ImportGraph, entry: string): { files: string[]; packages: string[] } {
  const seen = new Set<string>();
  const stack = [entry];
  while (stack.length) {
    const f = stack.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    const types = g.typeOnly.get(f);
    stack.push(...(g.files.get(f) ?? []).filter((d) => !types?.has(d)));
  }
  const packages = new Set([...seen].flatMap((f) => g.packages.get(f) ?? []));
  return { files: [...seen], packages: [...packages] };
}
