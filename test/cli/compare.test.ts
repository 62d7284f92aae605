import { join } from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { runCompare } from '../../src/cli/compare.js';
import { loadRun } from '../../src/run/run.js';
import { runTrain } from '../../src/cli/train.js';
import { capture, fingerprint, memoryCache, separable, useTempDir } from '../train/fixtures.js';
import { argsWith } from '../helpers/args.js';
import { compareBuilder, trainBuilder } from '../../src/cli/commands.js';

describe('viewprobe compare', () => {
  const dir = useTempDir('viewprobe-compare-');
  const s = separable({ classes: 4, dim: 8, perClass: 10, valPerClass: 6 });
  const openCache = memoryCache({ train: s.train, val: s.val }, { fingerprint: fingerprint(8), fingerprintId: 'fp-cmp', classes: s.classes });
  const runs: string[] = [];

  beforeAll(async () => {
    capture();
    for (const [seed, views] of [[0, 'aug'], [1, 'aug'], [2, 'aug'], [0, 'clean']] as const) {
      const out = join(dir(), `run-${views}-${seed}`);
      await runTrain(argsWith(trainBuilder, { cache: join(dir(), 'cache'), out, epochs: 4, lr: 5e-3, stepSize: 5, gamma: 0.5, batch: 8, seed, views, json: false }), { openCache });
      runs.push(out);
    }
    vi.restoreAllMocks();
  });

  it('--json: one row per run with what it recorded, and a group for the runs that differ only by seed', async () => {
    const io = capture();
    expect(await runCompare(argsWith(compareBuilder, { runs, json: true }))).toBe(0);
    vi.restoreAllMocks();
    const c = JSON.parse(io.out[0]!) as { rows: { run: string; views: string; seed: number; best: number; final: number; epochs: number }[]; groups: { runs: number; recipe: string; best: { mean: number; min: number; max: number } }[] };
    expect(c.rows.map((r) => [r.views, r.seed, r.epochs])).toEqual([['aug', 0, 4], ['aug', 1, 4], ['aug', 2, 4], ['clean', 0, 4]]);
    for (const [i, r] of c.rows.entries()) {
      const run = await loadRun(runs[i]!);
      expect([r.best, r.final]).toEqual([run.best.valAcc, run.final.valAcc]);
    }
    // the three aug runs form one group (clean is alone, so no group)
    expect(c.groups).toHaveLength(1);
    expect(c.groups[0]!.runs).toBe(3);
    expect(c.groups[0]!.recipe).toContain('--views aug');
    const bests = c.rows.slice(0, 3).map((r) => r.best);
    expect(c.groups[0]!.best.mean).toBeCloseTo(bests.reduce((a, b) => a + b, 0) / 3, 12);
    expect([c.groups[0]!.best.min, c.groups[0]!.best.max]).toEqual([Math.min(...bests), Math.max(...bests)]);
  });

  it('prints its table on stdout (nothing on stderr); a directory that is not a run is a clear error naming it', async () => {
    const io = capture();
    await runCompare(argsWith(compareBuilder, { runs: runs.slice(0, 2), json: false }));
    vi.restoreAllMocks();
    const text = io.out.join('');
    expect(io.err.join('')).toBe('');
    expect(text).toMatch(/^run\s+backbone\s+preset\s+views\s+seed\s+best \(epoch\)\s+final$/m);
    expect(text).toContain(runs[1]!);
    expect(text).toMatch(/2 runs, best \d+\.\d% \(\d+\.\d%–\d+\.\d%\)/);
    await expect(runCompare(argsWith(compareBuilder, { runs: [dir()], json: false }))).rejects.toThrow(/options\.json.*not a viewprobe run directory/);
  });
});
