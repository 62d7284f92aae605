// The bench scripts are not run by CI, so nothing else notices when a module they import moves or
// loses an export (bench/int8.mjs once imported extract/decode.js after decode moved to image/).
// Every dist module a bench names must exist as a source file, and export the names it takes.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';

const benchDir = join(__dirname, '..', 'bench');
// Every way the benches name a compiled module: dist('p'), D + 'p' (D = the dist folder),
// '../dist/p' (static or dynamic import, new URL), join(..., 'dist', 'p').
const MODULE = /(?:dist\(|D \+ )'([^']+\.js)'|'\.\.\/dist\/([^']+\.js)'|'dist', '([^']+\.js)'/g;
// Those taken with `const { a, b } = await import(...)` or `import { a, b } from '../dist/...'`: their names too.
const NAMED = /const \{([^}]*)\} = await import\((?:dist\(|D \+ )?'(?:\.\.\/dist\/)?([^']+\.js)'\)?\)|import \{([^}]*)\} from '\.\.\/dist\/([^']+)'/g;

async function source(path: string): Promise<Record<string, unknown> | null> {
  return (await import(join(__dirname, '..', 'src', path.replace(/\.js$/, '.ts'))).catch(() => null)) as Record<string, unknown> | null;
}

it('every module a bench script imports from dist/ exists in src/ with the names it takes', async () => {
  const files = readdirSync(benchDir).filter((n) => n.endsWith('.mjs'));
  let modules = 0;
  for (const f of files) {
    const text = readFileSync(join(benchDir, f), 'utf8');
    for (const m of text.matchAll(MODULE)) {
      const path = m[1] ?? m[2] ?? m[3]!;
      expect(await source(path), `${f}: src/${path.replace(/\.js$/, '.ts')} does not exist`).not.toBeNull();
      modules++;
    }
    for (const m of text.matchAll(NAMED)) {
      const path = m[2] ?? m[4]!;
      const mod = await source(path);
      const names = (m[1] ?? m[3]!).split(',').map((s) => s.trim().split(/\s*:\s*|\s+as\s+/)[0]!).filter(Boolean);
      for (const n of names) expect(mod?.[n], `${f}: src/${path} does not export ${n}`).toBeDefined();
    }
  }
  // Each bench that uses dist/ is seen (a pattern that stopped matching would otherwise pass quietly).
  const usesDist = files.filter((f) => /dist/.test(readFileSync(join(benchDir, f), 'utf8')));
  const seen = files.filter((f) => [...readFileSync(join(benchDir, f), 'utf8').matchAll(MODULE)].length > 0);
  expect(seen).toEqual(usesDist);
  expect(modules).toBeGreaterThan(40);
});
