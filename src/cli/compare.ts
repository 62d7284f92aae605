// `viewprobe compare RUN...`: runs side by side — what each was trained on (backbone, preset, views,
// seed) and its best and final val accuracy — from the run directories alone (no cache, no backbone),
// so that recipes are compared in one command. Runs that differ only in their head seed are also
// summarised together (mean and range), since one seed says little on a 500-image val set.
import { pct } from '../format.js';
import { printJson } from '../log.js';
import { loadRun } from '../run/run.js';
import type { compareBuilder } from './commands.js';
import type { ArgsOf } from './options.js';

export interface CompareRow {
  run: string;
  arch: string;
  preset: string;
  views: string;
  seed: number | null;
  epochs: number;
  best: number;
  bestEpoch: number;
  final: number;
}

export interface CompareGroup {
  /** What the runs share: arch, preset, views (and the cache they read). */
  recipe: string;
  runs: number;
  best: { mean: number; min: number; max: number };
  final: { mean: number; min: number; max: number };
}

export async function compareRuns(dirs: string[]): Promise<{ rows: CompareRow[]; groups: CompareGroup[] }> {
  const rows: CompareRow[] = [];
  const recipes = new Map<string, CompareRow[]>();
  for (const dir of dirs) {
    const run = await loadRun(dir);
    const o = (run.options.options ?? {}) as Record<string, unknown>;
    const fp = run.head.fingerprint;
    const row: CompareRow = {
      run: dir,
      arch: fp?.arch ?? 'unknown',
      preset: fp?.preset ?? 'unknown',
      views: typeof o.views === 'string' ? o.views : 'aug',
      seed: typeof o.seed === 'number' ? o.seed : null,
      epochs: run.final.epoch,
      best: run.best.valAcc,
      bestEpoch: run.best.epoch,
      final: run.final.valAcc,
    };
    rows.push(row);
    const recipe = `${row.arch} ${row.preset} --views ${row.views}, ${row.epochs} epochs, cache ${run.cache}`;
    recipes.set(recipe, [...(recipes.get(recipe) ?? []), row]);
  }
  const stats = (xs: number[]) => ({ mean: xs.reduce((a, b) => a + b, 0) / xs.length, min: Math.min(...xs), max: Math.max(...xs) });
  const groups = [...recipes].filter(([, rs]) => rs.length > 1).map(([recipe, rs]) => ({
    recipe, runs: rs.length, best: stats(rs.map((r) => r.best)), final: stats(rs.map((r) => r.final)),
  }));
  return { rows, groups };
}

export function formatCompare(c: { rows: CompareRow[]; groups: CompareGroup[] }): string[] {
  const header = ['run', 'backbone', 'preset', 'views', 'seed', 'best (epoch)', 'final'];
  const cells = c.rows.map((r) => [r.run, r.arch, r.preset, r.views, r.seed === null ? '?' : String(r.seed), `${pct(r.best)} (${r.bestEpoch})`, pct(r.final)]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((row) => row[i]!.length)));
  const line = (row: string[]) => row.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  const out = [line(header), ...cells.map(line)];
  for (const g of c.groups) {
    out.push('', `${g.recipe}: ${g.runs} runs, best ${pct(g.best.mean)} (${pct(g.best.min)}–${pct(g.best.max)}), final ${pct(g.final.mean)} (${pct(g.final.min)}–${pct(g.final.max)})`);
  }
  return out;
}

export async function runCompare(a: ArgsOf<typeof compareBuilder>): Promise<number> {
  const c = await compareRuns(a.runs);
  if (a.json) printJson(c);
  else process.stdout.write(formatCompare(c).join('\n') + '\n');
  return 0;
}
