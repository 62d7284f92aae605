// The bench scripts are not run by CI, so nothing else notices when a module they import moves or
// loses an export (bench/int8.mjs once imported extract/decode.js after decode moved to image/).
// Every dist module a bench names must exist as a source file and export the names the bench takes.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';

const benchDir = join(__dirname, '..', 'bench');
const IMPORT = /const \{([^}]*)\} = await import\(dist\('([^']+)'\)\)|import \{([^}]*)\} from '\.\.\/dist\/([^']+)'/g;

it('every module a bench script imports from dist/ exists in src/ with the names it takes', async () => {
  const seen: string[] = [];
  for (const f of readdirSync(benchDir).filter((n) => n.endsWith('.mjs'))) {
    const text = readFileSync(join(benchDir, f), 'utf8');
    for (const m of text.matchAll(IMPORT)) {
      const names = (m[1] ?? m[3]!).split(',').map((s) => s.trim().split(/\s*:\s*|\s+as\s+/)[0]!).filter(Boolean);
      const path = (m[2] ?? m[4]!).replace(/\.js$/, '.ts');
      const mod = (await import(join(__dirname, '..', 'src', path)).catch(() => null)) as Record<string, unknown> | null;
      expect(mod, `${f}: src/${path} does not exist`).not.toBeNull();
      for (const n of names) expect(mod![n], `${f}: src/${path} does not export ${n}`).toBeDefined();
      seen.push(`${f}:${path}`);
    }
  }
  expect(seen.length).toBeGreaterThan(10);
});
