import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { SplitFeatures } from '../../src/cache/types.js';
import { runEval } from '../../src/cli/eval.js';
import { runCompare } from '../../src/cli/compare.js';
import { loadHead } from '../../src/head/file.js';
import { Rng } from '../../src/random.js';
import type { CacheReader } from '../../src/train/cache-reader.js';
import { runSweep, type SweepArgs } from '../../src/cli/sweep.js';
import { argsWith } from '../helpers/args.js';
import { compareBuilder, evalBuilder, sweepBuilder } from '../../src/cli/commands.js';
import { capture, fingerprint, memoryCache, noisy, useTempDir } from '../train/fixtures.js';

const base: Partial<SweepArgs> = { grid: 'transform=none,std,l2;views=clean,all;lr=3e-3;epochs=8', folds: 3, seed: 0, json: false, workers: 1 };

/** The splits a sweep reads, recorded; any other split (evaluation data) is served too, so reading it would show. */
function recording(splits: Record<string, SplitFeatures>, summary: Parameters<typeof memoryCache>[1]): { open: () => Promise<CacheReader>; read: Set<string> } {
  const read = new Set<string>();
  const inner = memoryCache(splits, summary);
  return {
    read,
    open: async () => {
      const c = await inner();
      return { ...c, readSplit: async (s: string) => (read.add(s), c.readSplit(s)) };
    },
  };
}

function shuffled(s: SplitFeatures, seed: number): SplitFeatures {
  const labels = s.labels.slice();
  new Rng(seed, 99).shuffle(labels);
  return { ...s, labels };
}

describe('viewprobe sweep', () => {
  const dir = useTempDir('viewprobe-sweep-');
  afterEach(() => vi.restoreAllMocks());
  const d = noisy(2);
  // Evaluation data: another split of the cache, as `eval --data` stores it.
  const evalSplit: SplitFeatures = { ...noisy(3).val, split: 'eval:/data/test' };
  const summary = { fingerprint: fingerprint(d.train.dim), fingerprintId: 'fp-sweep', classes: d.classes };

  it('writes an ordinary run (eval and compare read it) plus sweep.json, and prints the leaderboard with the seed recipe', async () => {
    const out = join(dir(), 'run');
    const io = capture();
    const rec = recording({ train: d.train, val: d.val, [evalSplit.split]: evalSplit }, summary);
    expect(await runSweep(argsWith(sweepBuilder, { ...base, cache: 'c', out }), { openCache: rec.open })).toBe(0);
    vi.restoreAllMocks();
    expect([...rec.read].sort()).toEqual(['train', 'val']);
    expect((await readdir(out)).sort()).toEqual(['head-best.json', 'head-last.json', 'history.json', 'options.json', 'sweep.json']);
    const text = io.out.join('');
    expect(text).toMatch(/^Selection score = val accuracy \(48 images of the cache's val split\)\n/);
    expect(text).toMatch(/rank +score +epoch +secs +trial/);
    expect(text).toMatch(/\(seed recipe\)/);
    expect(text).toMatch(/\(chosen\)/);
    const sw = JSON.parse(await readFile(join(out, 'sweep.json'), 'utf8'));
    expect(sw).toMatchObject({ format: 'viewprobe-sweep', selection: { kind: 'val' }, seedRecipe: 0 });
    expect(sw.trials).toHaveLength(7);
    const w = sw.trials[sw.winner];
    expect(w.rank).toBe(1);
    const opts = JSON.parse(await readFile(join(out, 'options.json'), 'utf8'));
    expect(opts).toMatchObject({ format: 'viewprobe-run', command: 'sweep', options: w.spec, selection: { kind: 'val', score: w.score }, fingerprintId: 'fp-sweep' });
    const head = await loadHead(join(out, 'head-best.json'), { dim: d.train.dim, classes: d.classes });
    expect(head.valAcc).toBe(w.score);
    if (w.spec.transform === 'l2') expect(head.transform).toEqual({ l2: true });

    // eval on the run's val features: the accuracy the sweep recorded for the head.
    const ev = capture();
    await runEval(argsWith(evalBuilder, { run: out, json: true }), { openCache: rec.open });
    vi.restoreAllMocks();
    expect(JSON.parse(ev.out[0]!).eval.accuracy).toBe(w.score);
    const cmp = capture();
    expect(await runCompare(argsWith(compareBuilder, { runs: [out], json: true }))).toBe(0);
    vi.restoreAllMocks();
    expect(JSON.parse(cmp.out[0]!)).toBeTruthy();
  });

  it('never reads evaluation data: its labels shuffled, the same choice and scores (val and CV selection)', async () => {
    for (const select of ['val', 'cv'] as const) {
      const runs = [];
      for (const ev of [evalSplit, shuffled(evalSplit, 1)]) {
        const io = capture();
        const rec = recording({ train: d.train, val: d.val, [ev.split]: ev }, summary);
        await runSweep(argsWith(sweepBuilder, { ...base, select, json: true, cache: 'c', out: join(dir(), `leak-${select}-${runs.length}`) }), { openCache: rec.open });
        vi.restoreAllMocks();
        runs.push(JSON.parse(io.out[0]!));
      }
      expect(runs[1].winner.trial, select).toBe(runs[0].winner.trial);
      expect(runs[1].winner.score, select).toBe(runs[0].winner.score);
      expect(runs[1].top.map((t: { score: number }) => t.score)).toEqual(runs[0].top.map((t: { score: number }) => t.score));
    }
    // The test can fail: the selection split's labels shuffled do change the scores.
    const io = capture();
    await runSweep(argsWith(sweepBuilder, { ...base, json: true, cache: 'c', out: join(dir(), 'leak-val-shuffled') }), { openCache: memoryCache({ train: d.train, val: shuffled(d.val, 1) }, summary) });
    vi.restoreAllMocks();
    const moved = JSON.parse(io.out[0]!);
    const first = JSON.parse(await readFile(join(dir(), 'leak-val-0', 'sweep.json'), 'utf8'));
    expect(moved.seedRecipe.score).not.toBe(first.trials[0].score);
  });

  it('--json prints one object; refuses an existing run, --trials with --grid, too many folds', async () => {
    const out = join(dir(), 'json');
    const io = capture();
    await runSweep(argsWith(sweepBuilder, { ...base, json: true, cache: 'c', out }), { openCache: memoryCache({ train: d.train, val: d.val }, summary) });
    vi.restoreAllMocks();
    expect(io.out).toHaveLength(1);
    const j = JSON.parse(io.out[0]!);
    expect(j).toMatchObject({ selection: { kind: 'val' }, workers: 1, seedRecipe: { trial: 0, description: 'adam aug lr=0.001 wd=0 50ep step5/0.5 b64' } });
    expect(j.top.length).toBe(7);
    expect(j.trialsPerSecond).toBeGreaterThan(0);
    const open = { openCache: memoryCache({ train: d.train, val: d.val }, summary) };
    await expect(runSweep(argsWith(sweepBuilder, { ...base, cache: 'c', out }), open)).rejects.toThrow(/holds a run; choose another directory, or pass --force/);
    await expect(runSweep(argsWith(sweepBuilder, { ...base, trials: 3, cache: 'c', out: join(dir(), 'x') }), open)).rejects.toThrow(/--trials and --grid exclude each other/);
    await expect(runSweep(argsWith(sweepBuilder, { ...base, select: 'cv', folds: 40, cache: 'c', out: join(dir(), 'y') }), open)).rejects.toThrow(/--folds 40: a class has only 24 training images/);
    await expect(runSweep(argsWith(sweepBuilder, { ...base, select: 'val', cache: 'c', out: join(dir(), 'z') }), { openCache: memoryCache({ train: d.train }, summary) })).rejects.toThrow(/no validation split/);
  });
});
