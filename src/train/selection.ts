// Honest model selection: the sweep chooses on the val split when the cache has one, else by k-fold
// cross-validation on the training split, stratified by class and seeded. Nothing here ever sees
// evaluation data (`eval --data` splits): it is given the train split and, at most, the val split.
import type { SplitFeatures } from '../cache/types.js';
import { Rng, Stream, permutation } from '../random.js';

/**
 * Fold index (0..k-1) of every image: each class's images in a seeded random order dealt round-robin,
 * each class starting where the previous one stopped, so folds differ by at most one image per class
 * and at most one in total.
 */
export function stratifiedFolds(labels: Int32Array, k: number, seed: number): Int32Array {
  if (!Number.isInteger(k) || k < 2) throw new Error(`need at least 2 folds, got ${k}`);
  const n = labels.length;
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const y = labels[i]!;
    const list = byClass.get(y);
    if (list) list.push(i);
    else byClass.set(y, [i]);
  }
  const fold = new Int32Array(n);
  let next = 0;
  for (const y of [...byClass.keys()].sort((a, b) => a - b)) {
    const members = byClass.get(y)!;
    const order = permutation(new Rng(seed, Stream.folds, y), members.length);
    for (let j = 0; j < members.length; j++) {
      fold[members[order[j]!]!] = next;
      next = (next + 1) % k;
    }
  }
  return fold;
}

/** The images `idx` of a split as a split of their own (rows copied; augmented, clean and test-time views kept). */
export function subsetSplit(s: SplitFeatures, idx: ArrayLike<number>, name = s.split): SplitFeatures {
  const m = idx.length;
  const { dim: d, views: k } = s;
  const aug = new Float32Array(m * k * d);
  const clean = s.clean ? new Float32Array(m * d) : null;
  const t = s.tta && s.ttaViews ? s.ttaViews : 0;
  const tta = t ? new Float32Array(m * t * d) : null;
  const labels = new Int32Array(m);
  const paths: string[] = [];
  const hashes: string[] = [];
  for (let j = 0; j < m; j++) {
    const i = idx[j]!;
    labels[j] = s.labels[i]!;
    if (s.paths.length) paths.push(s.paths[i]!);
    if (s.hashes.length) hashes.push(s.hashes[i]!);
    aug.set(s.aug.subarray(i * k * d, (i + 1) * k * d), j * k * d);
    if (clean) clean.set(s.clean!.subarray(i * d, (i + 1) * d), j * d);
    if (tta) tta.set(s.tta!.subarray(i * t * d, (i + 1) * t * d), j * t * d);
  }
  return { split: name, dim: d, paths, hashes, labels, views: k, aug, clean, ...(tta ? { tta, ttaViews: t } : {}) };
}

/** Train and held-out parts of fold `f`; only the held-out part keeps test-time views (training never reads them). */
export function foldSplits(s: SplitFeatures, folds: Int32Array, f: number): { train: SplitFeatures; held: SplitFeatures } {
  const inFold: number[] = [], rest: number[] = [];
  for (let i = 0; i < folds.length; i++) (folds[i] === f ? inFold : rest).push(i);
  const noTta: SplitFeatures = { ...s };
  delete noTta.tta;
  delete noTta.ttaViews;
  return { train: subsetSplit(noTta, rest, s.split), held: subsetSplit(s, inFold, `${s.split} fold ${f + 1}`) };
}

export type Selection =
  | { kind: 'val'; label: string }
  | { kind: 'cv'; folds: number; seed: number; label: string };

/** How the sweep chooses: the val split when there is one, else stratified k-fold CV on train. */
export function chooseSelection(val: SplitFeatures | null, folds: number, seed: number): Selection {
  if (val && val.labels.length > 0) return { kind: 'val', label: `val accuracy (${val.labels.length} images of the cache's val split)` };
  return { kind: 'cv', folds, seed, label: `${folds}-fold cross-validated accuracy on the training split (stratified, seed ${seed})` };
}
