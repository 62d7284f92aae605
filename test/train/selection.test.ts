import { describe, expect, it } from 'vitest';
import { chooseSelection, foldSplits, stratifiedFolds, subsetSplit } from '../../src/train/selection.js';
import { separable } from './fixtures.js';

describe('stratified k-fold', () => {
  const labels = Int32Array.from({ length: 103 }, (_, i) => (i * 7) % 4 === 3 ? 3 : i % 3);

  it('puts every image in one fold, balances classes and sizes, and is seeded', () => {
    const k = 5;
    const f = stratifiedFolds(labels, k, 0);
    const sizes = new Array<number>(k).fill(0);
    for (const v of f) sizes[v]!++;
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    for (const c of [0, 1, 2, 3]) {
      const per = new Array<number>(k).fill(0);
      f.forEach((v, i) => { if (labels[i] === c) per[v]!++; });
      expect(Math.max(...per) - Math.min(...per), `class ${c}`).toBeLessThanOrEqual(1);
    }
    expect([...stratifiedFolds(labels, k, 0)]).toEqual([...f]);
    expect([...stratifiedFolds(labels, k, 1)]).not.toEqual([...f]);
    expect(() => stratifiedFolds(labels, 1, 0)).toThrow(/at least 2 folds/);
  });

  it('splits a split into training and held-out parts with their rows', () => {
    const { train } = separable({ classes: 3, perClass: 5, views: 2 });
    const folds = stratifiedFolds(train.labels, 3, 4);
    const { train: tr, held } = foldSplits(train, folds, 1);
    expect(tr.labels.length + held.labels.length).toBe(train.labels.length);
    const i = folds.indexOf(1);
    expect(held.paths[0]).toBe(train.paths[i]);
    expect([...held.clean!.subarray(0, train.dim)]).toEqual([...train.clean!.subarray(i * train.dim, (i + 1) * train.dim)]);
    expect([...held.aug.subarray(0, 2 * train.dim)]).toEqual([...train.aug.subarray(i * 2 * train.dim, (i + 1) * 2 * train.dim)]);
    expect(subsetSplit(train, []).labels.length).toBe(0);
    // Test-time views go with their image, so a held-out fold is scored over them as eval scores new images.
    const d = train.dim;
    const withTta = { ...train, ttaViews: 2, tta: Float32Array.from({ length: train.labels.length * 2 * d }, (_, j) => j) };
    const h = foldSplits(withTta, folds, 1).held;
    expect(h.ttaViews).toBe(2);
    expect(foldSplits(withTta, folds, 1).train.tta).toBeUndefined();
    expect([...h.tta!.subarray(0, 2 * d)]).toEqual([...withTta.tta.subarray(i * 2 * d, (i + 1) * 2 * d)]);
    expect(foldSplits(train, folds, 1).held.tta).toBeUndefined();
  });

  it('chooses on val when there is one, else CV, and says so', () => {
    const { val } = separable();
    expect(chooseSelection(val, 5, 0)).toMatchObject({ kind: 'val', label: expect.stringMatching(/^val accuracy/) });
    expect(chooseSelection(null, 4, 2)).toMatchObject({ kind: 'cv', folds: 4, seed: 2, label: expect.stringMatching(/4-fold cross-validated accuracy/) });
  });
});
