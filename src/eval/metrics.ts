// Classification metrics from scores (logits or probabilities, n*N row-major) and integer labels.
// Ties in the scores go to the lower class index, for arg-max and top-k alike, so results never
// depend on sort stability.
import type { SplitFeatures } from '../cache/types.js';
import { checkHeadFits } from '../head/file.js';
import { headLogits } from '../head/forward.js';
import type { Head } from '../head/head.js';
import { crossEntropy } from '../head/loss.js';
import { evalViewCount, evalViewRows, meanOverViews } from '../train/eval-views.js';

export interface ClassStats {
  label: string;
  /** Images of this class. */
  n: number;
  /** Of them, predicted as this class. */
  correct: number;
  /** correct / n, null when the class has no images. */
  accuracy: number | null;
}

export interface EvalResult {
  n: number;
  classes: string[];
  correct: number;
  accuracy: number;
  /** k of the top-k accuracy: 5, or the class count when smaller. */
  topK: number;
  topKAccuracy: number;
  /** Mean cross-entropy (natural log). */
  loss: number;
  perClass: ClassStats[];
  /** confusion[true][predicted] = count; rows sum to the per-class counts, the whole to n. */
  confusion: number[][];
}

function checkShape(scores: ArrayLike<number>, labels: ArrayLike<number>, nc: number): number {
  const n = labels.length;
  if (nc < 1) throw new Error('need at least one class');
  if (scores.length !== n * nc) throw new Error(`scores hold ${scores.length} values, expected ${n} rows x ${nc} classes`);
  for (let i = 0; i < n; i++) {
    const y = labels[i]!;
    if (!Number.isInteger(y) || y < 0 || y >= nc) throw new Error(`label ${y} of row ${i} is outside 0..${nc - 1}`);
  }
  return n;
}

export function argmaxRows(scores: ArrayLike<number>, n: number, nc: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * nc;
    let a = 0;
    for (let c = 1; c < nc; c++) if (scores[o + c]! > scores[o + a]!) a = c;
    out[i] = a;
  }
  return out;
}

export function confusionMatrix(pred: ArrayLike<number>, labels: ArrayLike<number>, nc: number): number[][] {
  const m = Array.from({ length: nc }, () => new Array<number>(nc).fill(0));
  for (let i = 0; i < labels.length; i++) m[labels[i]!]![pred[i]!]!++;
  return m;
}

export function perClassAccuracy(confusion: number[][], classes: string[]): ClassStats[] {
  return classes.map((label, c) => {
    const row = confusion[c]!;
    const n = row.reduce((s, v) => s + v, 0);
    const correct = row[c]!;
    return { label, n, correct, accuracy: n > 0 ? correct / n : null };
  });
}

/** Fraction of rows whose label is among the k best scores (a tie ranks the lower class index first). */
export function topKAccuracy(scores: ArrayLike<number>, labels: ArrayLike<number>, nc: number, k: number): number {
  const n = checkShape(scores, labels, nc);
  if (n === 0) return 0;
  let hit = 0;
  for (let i = 0; i < n; i++) {
    const o = i * nc;
    const y = labels[i]!;
    const sy = scores[o + y]!;
    let rank = 0;
    for (let c = 0; c < nc; c++) {
      const s = scores[o + c]!;
      if (s > sy || (s === sy && c < y)) rank++;
    }
    if (rank < k) hit++;
  }
  return hit / n;
}

/** Mean cross-entropy from logits (log-sum-exp with the max subtracted). */
export function meanCrossEntropy(logits: ArrayLike<number>, labels: ArrayLike<number>, nc: number): number {
  const n = checkShape(logits, labels, nc);
  if (n === 0) return 0;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const o = i * nc;
    sum += crossEntropy(logits, o, nc, labels[i]!);
  }
  return sum / n;
}

/** Mean negative log-likelihood from probabilities (a zero probability counts as -log(1e-45), not infinity). */
export function meanNll(probs: ArrayLike<number>, labels: ArrayLike<number>, nc: number): number {
  const n = checkShape(probs, labels, nc);
  if (n === 0) return 0;
  let sum = 0;
  for (let i = 0; i < n; i++) sum -= Math.log(Math.max(probs[i * nc + labels[i]!]!, 1e-45));
  return sum / n;
}

/** All metrics at once. `kind` says whether `scores` are logits or probabilities (it only changes the loss). */
export function evaluateScores(scores: ArrayLike<number>, labels: ArrayLike<number>, classes: string[], kind: 'logits' | 'probs' = 'logits', k = 5): EvalResult {
  const nc = classes.length;
  const n = checkShape(scores, labels, nc);
  const pred = argmaxRows(scores, n, nc);
  const confusion = confusionMatrix(pred, labels, nc);
  let correct = 0;
  for (let c = 0; c < nc; c++) correct += confusion[c]![c]!;
  const topK = Math.min(k, nc);
  return {
    n,
    classes: [...classes],
    correct,
    accuracy: n > 0 ? correct / n : 0,
    topK,
    topKAccuracy: topKAccuracy(scores, labels, nc, topK),
    loss: kind === 'logits' ? meanCrossEntropy(scores, labels, nc) : meanNll(scores, labels, nc),
    perClass: perClassAccuracy(confusion, classes),
    confusion,
  };
}

/**
 * Metrics of a head on a split's eval-view features. `classes` are the split's class names; they must
 * be the head's, in the same order (else a clear error naming `source`, e.g. the head file).
 */
export function evaluateHead(head: Head, features: SplitFeatures, classes: string[], source = 'head'): EvalResult {
  return evaluateScores(headEvalLogits(head, features, classes, source), features.labels, classes, 'logits');
}

/**
 * The logits (n*N) evaluation scores a split's images by: one row per image, in the split's order.
 * With test-time views the logits of an image's views are averaged (the clean view alone when it has none).
 */
export function headEvalLogits(head: Head, features: SplitFeatures, classes: string[], source = 'head'): Float32Array {
  checkHeadFits(head, source, { dim: features.dim, classes, what: `the ${features.split} split` });
  const n = features.labels.length;
  const views = evalViewCount(features);
  return meanOverViews(headLogits(head, evalViewRows(features), n * views), n, views, head.classes.length);
}
