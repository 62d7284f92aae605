import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { ViewPicker, trainHead, type TrainOptions } from '../../src/train/loop.js';
import { separable } from './fixtures.js';

// Small data, so a higher rate and smaller batches than the recipe's defaults.
const fast: TrainOptions = { epochs: 12, lr: 1e-2, batch: 16, stepSize: 5, gamma: 0.5 };

describe('trainHead', () => {
  it('reaches 100% on linearly separable features and the loss falls', async () => {
    const { train, val, classes } = separable();
    const seen: number[] = [];
    const r = await trainHead(train, val, classes, fast, (e) => seen.push(e.epoch));
    expect(seen).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(r.history).toHaveLength(12);
    expect(r.best.valAcc).toBe(1);
    expect(r.last.valAcc).toBe(1);
    const first = r.history[0]!, last = r.history[11]!;
    expect(last.trainLoss).toBeLessThan(first.trainLoss * 0.5);
    expect(last.valLoss).toBeLessThan(first.valLoss * 0.5);
    for (const e of r.history) expect(Number.isFinite(e.trainLoss) && Number.isFinite(e.valLoss)).toBe(true);
    expect(r.math).toBe('wasm-simd');
  });

  it('uses the StepLR rates 1e-3, 5e-4, 2.5e-4 at epochs 1, 6, 11 by default', async () => {
    const { train, val, classes } = separable({ perClass: 4, valPerClass: 2 });
    const r = await trainHead(train, val, classes, { epochs: 11 });
    expect(r.history.map((e) => e.lr)).toEqual([1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 5e-4, 5e-4, 5e-4, 2.5e-4]);
    expect(r.options).toMatchObject({ epochs: 11, lr: 1e-3, stepSize: 5, gamma: 0.5, batch: 64, seed: 0, views: 'aug' });
  });

  it('reproduces the same history bit for bit from the same seed, and another with another seed', async () => {
    const { train, val, classes } = separable({ classes: 5, dim: 24 });
    const a = await trainHead(train, val, classes, { ...fast, seed: 3 });
    const b = await trainHead(train, val, classes, { ...fast, seed: 3 });
    expect(b.history).toEqual(a.history);
    expect(Buffer.from(b.last.head.weight.buffer)).toEqual(Buffer.from(a.last.head.weight.buffer));
    const c = await trainHead(train, val, classes, { ...fast, seed: 4 });
    expect(c.history.map((e) => e.trainLoss)).not.toEqual(a.history.map((e) => e.trainLoss));
  });

  it('weight decay and label smoothing change the training (and stay finite); out-of-range values are refused', async () => {
    const { train, val, classes } = separable({ classes: 5, dim: 24 });
    const plain = await trainHead(train, val, classes, fast);
    const wd = await trainHead(train, val, classes, { ...fast, weightDecay: 0.1 });
    const ls = await trainHead(train, val, classes, { ...fast, labelSmoothing: 0.1 });
    let normPlain = 0, normWd = 0;
    for (let i = 0; i < plain.last.head.weight.length; i++) {
      normPlain += plain.last.head.weight[i]! ** 2;
      normWd += wd.last.head.weight[i]! ** 2;
    }
    expect(normWd).toBeLessThan(normPlain);
    // Smoothed targets keep the loss away from zero.
    expect(ls.history[11]!.trainLoss).toBeGreaterThan(plain.history[11]!.trainLoss);
    expect(ls.best.valAcc).toBe(1);
    await expect(trainHead(train, val, classes, { weightDecay: -1 })).rejects.toThrow('--weight-decay must be a number >= 0, got -1');
    await expect(trainHead(train, val, classes, { labelSmoothing: 1 })).rejects.toThrow('--label-smoothing must be in [0, 1), got 1');
  });

  it('keeps the best epoch by val accuracy (ties keep the earlier) and the last', async () => {
    const { train, val, classes } = separable();
    const r = await trainHead(train, val, classes, fast);
    const max = Math.max(...r.history.map((e) => e.valAcc));
    const firstMax = r.history.find((e) => e.valAcc === max)!;
    expect(r.best.epoch).toBe(firstMax.epoch);
    expect(r.best.valAcc).toBe(max);
    expect(r.last.epoch).toBe(12);
    // The best head is a snapshot, not the live parameters.
    if (r.best.epoch !== 12) expect(r.best.head.weight).not.toEqual(r.last.head.weight);
  });

  it('--views clean reads only the clean view, --views aug only the augmented ones', async () => {
    // A NaN in any row the mode must not read would poison the loss.
    const s = separable();
    const augNaN = { ...s.train, aug: new Float32Array(s.train.aug.length).fill(NaN) };
    const clean = await trainHead(augNaN, s.val, s.classes, { ...fast, views: 'clean' });
    expect(clean.history.every((e) => Number.isFinite(e.trainLoss))).toBe(true);
    expect(clean.best.valAcc).toBe(1);
    const cleanNaN = { ...s.train, clean: new Float32Array(s.train.clean!.length).fill(NaN) };
    const aug = await trainHead(cleanNaN, s.val, s.classes, { ...fast, views: 'aug' });
    expect(aug.history.every((e) => Number.isFinite(e.trainLoss))).toBe(true);
    const all = await trainHead(cleanNaN, s.val, s.classes, { ...fast, views: 'all' });
    expect(all.history.some((e) => Number.isNaN(e.trainLoss))).toBe(true);
  });

  it('refuses unusable inputs with clear errors', async () => {
    const s = separable();
    const one = separable({ classes: 1, dim: 4 });
    await expect(trainHead(one.train, one.val, one.classes, fast)).rejects.toThrow('need at least 2 classes to train a classifier, the cache has 1 ("class_0")');
    const empty = { ...s.train, labels: new Int32Array(0), aug: new Float32Array(0), clean: new Float32Array(0), paths: [], hashes: [] };
    await expect(trainHead(empty, s.val, s.classes, fast)).rejects.toThrow(/no training images/);
    const noVal = { ...s.val, labels: new Int32Array(0), clean: new Float32Array(0), paths: [], hashes: [] };
    await expect(trainHead(s.train, noVal, s.classes, fast)).rejects.toThrow(/no validation images/);
    const noClean = { ...s.train, clean: null };
    await expect(trainHead(noClean, s.val, s.classes, { ...fast, views: 'clean' })).rejects.toThrow(/--views clean needs the clean view .*\(extract without --no-clean-view\)/);
    await expect(trainHead(noClean, s.val, s.classes, { ...fast, views: 'all' })).rejects.toThrow(/--views all needs the clean view/);
    const noAug = { ...s.train, views: 0, aug: new Float32Array(0) };
    await expect(trainHead(noAug, s.val, s.classes, fast)).rejects.toThrow(/--views aug needs augmented views/);
    const badLabel = { ...s.train, labels: s.train.labels.map((y, i) => (i === 3 ? 9 : y)) };
    await expect(trainHead(badLabel, s.val, s.classes, fast)).rejects.toThrow(/image \/data\/train\/3\.jpg has label 9, outside the 4 classes/);
    await expect(trainHead(s.train, s.val, s.classes, { epochs: 0 })).rejects.toThrow(UserError);
    await expect(trainHead(s.train, s.val, s.classes, { lr: -1 })).rejects.toThrow('--lr must be a positive number, got -1');
    await expect(trainHead(s.train, s.val, s.classes, { batch: 2.5 })).rejects.toThrow('--batch must be a positive integer, got 2.5');
  });
});

describe('ViewPicker', () => {
  it('shows every view of an image once per round, in a new order each round', () => {
    const n = 50, k = 10;
    const p = new ViewPicker(n, k, 0);
    const rounds: number[][][] = [];
    for (let round = 0; round < 3; round++) {
      const perImage: number[][] = Array.from({ length: n }, () => []);
      for (let e = round * k + 1; e <= (round + 1) * k; e++) for (let i = 0; i < n; i++) perImage[i]!.push(p.pick(i, e));
      for (const seq of perImage) expect([...seq].sort((a, b) => a - b)).toEqual([...Array(k).keys()]);
      rounds.push(perImage);
    }
    const same = rounds[0]!.filter((seq, i) => seq.join() === rounds[1]![i]!.join()).length;
    expect(same).toBeLessThan(2);
    // Images do not move in lockstep.
    expect(new Set(rounds[0]!.map((s) => s[0])).size).toBeGreaterThan(5);
  });

  it('is a pure function of the seed and epoch, whatever order it is asked in', () => {
    const a = new ViewPicker(20, 4, 9), b = new ViewPicker(20, 4, 9);
    const fwd = [1, 2, 3, 4, 5, 6, 7, 8].map((e) => a.pick(7, e));
    const back = [8, 7, 6, 5, 4, 3, 2, 1].map((e) => b.pick(7, e)).reverse();
    expect(back).toEqual(fwd);
  });
});
