// One sweep task, run in a worker thread or in-process: fit the trial's feature transform on its
// training rows, train (Adam through trainHead, or L-BFGS along a penalty path), and score it on the
// selection rows (the val split, or each held-out fold of the training split). Everything here is a
// pure function of the task and the data, so results do not depend on which worker ran them.
import type { SplitFeatures } from '../cache/types.js';
import { HeadForward } from '../head/forward.js';
import type { Head, HeadTransform } from '../head/head.js';
import { crossEntropy, argmax } from '../head/loss.js';
import { applyTransform, fitStandardizer, foldStandardizer, standardize, type Standardizer } from '../head/transform.js';
import { fitLogistic } from './lbfgs.js';
import { trainHead, type EpochRecord } from './loop.js';
import { evalViewCount, evalViewRows, meanOverViews } from './eval-views.js';
import { foldSplits, type Selection } from './selection.js';
import type { AdamTrial, LbfgsTrial, Task, TransformName, TrialSpec } from './sweep-space.js';

export interface SweepData {
  train: SplitFeatures;
  /** The selection split when selection is 'val'. */
  val: SplitFeatures | null;
  classes: string[];
  selection: Selection;
  /** Fold of each training image when selection is 'cv'. */
  folds: Int32Array | null;
  seed: number;
}

export interface TrialResult {
  spec: TrialSpec;
  /** The selection score: accuracy on the selection rows (val, or mean over held-out folds). */
  score: number;
  /** Mean cross-entropy on the selection rows at the chosen epoch. */
  loss: number;
  /** Epoch of the saved head (Adam: the best by the selection score; L-BFGS: 1). */
  epoch: number;
  /** Per epoch: train loss and the selection rows' loss and accuracy (CV: means over folds). */
  history: EpochRecord[];
  /** The head to save (val selection only; CV refits the winner on all training images). */
  head: Head | null;
  /** Last epoch's head (val selection, Adam). */
  last: Head | null;
  iterations?: number;
  seconds: number;
}

const TRANSFORM_OF: Record<TransformName, { t?: HeadTransform; std: boolean }> = {
  none: { std: false },
  std: { std: true },
  l2: { t: { l2: true }, std: false },
  power: { t: { power: 0.5 }, std: false },
  'power+l2': { t: { power: 0.5, l2: true }, std: false },
  'power+std': { t: { power: 0.5 }, std: true },
};

/** The rows of a split after a head transform (and optionally a standardiser). */
function transformSplit(s: SplitFeatures, t: HeadTransform | undefined, std: Standardizer | null): SplitFeatures {
  const n = s.labels.length;
  const f = (x: Float32Array, rows: number) => {
    const y = applyTransform(t, x, rows, s.dim);
    return std ? standardize(std, y, rows, s.dim) : y;
  };
  // Test-time views too: evaluation averages over them, so they must be in the same space as the clean view.
  return { ...s, aug: f(s.aug, n * s.views), clean: s.clean ? f(s.clean, n) : null, ...(s.tta && s.ttaViews ? { tta: f(s.tta, n * s.ttaViews) } : {}) };
}

export interface Prepared {
  train: SplitFeatures;
  std: Standardizer | null;
  transform: HeadTransform | undefined;
  /** The same transform on rows that took no part in fitting it. */
  apply(s: SplitFeatures): SplitFeatures;
}

/** Fits the named transform on the training split's rows (augmented and clean). */
export function prepareTransform(train: SplitFeatures, name: TransformName): Prepared {
  const { t, std: wantStd } = TRANSFORM_OF[name];
  let std: Standardizer | null = null;
  if (wantStd) {
    const n = train.labels.length;
    const rows = applyTransform(t, train.aug, n * train.views, train.dim);
    const clean = train.clean ? applyTransform(t, train.clean, n, train.dim) : new Float32Array(0);
    const both = new Float32Array(rows.length + clean.length);
    both.set(rows);
    both.set(clean, rows.length);
    std = fitStandardizer(both, both.length / train.dim, train.dim);
  }
  return { train: transformSplit(train, t, std), std, transform: t, apply: (s) => transformSplit(s, t, std) };
}

/** The head to save: standardisation folded in, the row transform recorded. */
function finalHead(h: Head, p: Prepared): Head {
  const folded = p.std ? foldStandardizer(h, p.std) : { ...h };
  return p.transform ? { ...folded, transform: { ...p.transform } } : folded;
}

/** Accuracy and mean loss of a saved head on raw rows, through the one forward pass eval uses (logits averaged over test-time views). */
export function scoreHead(head: Head, s: SplitFeatures): { acc: number; loss: number } {
  const n = s.labels.length;
  const nc = head.classes.length;
  const v = evalViewCount(s);
  const z = meanOverViews(new HeadForward(head).logits(evalViewRows(s), n * v), n, v, nc);
  let ok = 0, loss = 0;
  for (let i = 0; i < n; i++) {
    const y = s.labels[i]!;
    if (argmax(z, i * nc, nc) === y) ok++;
    loss += crossEntropy(z, i * nc, nc, y);
  }
  return { acc: ok / n, loss: loss / n };
}

function adamOptions(t: AdamTrial, seed: number) {
  return { epochs: t.epochs, lr: t.lr, stepSize: t.stepSize, gamma: t.gamma, batch: t.batch, seed, views: t.views, weightDecay: t.weightDecay, labelSmoothing: t.labelSmoothing };
}

async function adamOnVal(t: AdamTrial, d: SweepData, prep: Prepared): Promise<TrialResult> {
  const t0 = performance.now();
  const val = d.val!;
  const r = await trainHead(prep.train, prep.apply(val), d.classes, adamOptions(t, d.seed));
  const head = finalHead(r.best.head, prep);
  // The score is the saved head's, measured as eval will measure it (standardisation folded in).
  const s = prep.std ? scoreHead(head, val) : { acc: r.best.valAcc, loss: r.best.valLoss };
  return { spec: t, score: s.acc, loss: s.loss, epoch: r.best.epoch, history: r.history, head, last: finalHead(r.last.head, prep), seconds: (performance.now() - t0) / 1000 };
}

/** Per-epoch means over folds; the score is the best epoch of the mean curve. */
async function adamCv(t: AdamTrial, d: SweepData): Promise<TrialResult> {
  const t0 = performance.now();
  const k = d.selection.kind === 'cv' ? d.selection.folds : 0;
  const sums: EpochRecord[] = [];
  for (let f = 0; f < k; f++) {
    const { train, held } = foldSplits(d.train, d.folds!, f);
    const prep = prepareTransform(train, t.transform);
    const r = await trainHead(prep.train, prep.apply(held), d.classes, adamOptions(t, d.seed));
    r.history.forEach((e, i) => {
      const s = (sums[i] ??= { epoch: e.epoch, trainLoss: 0, valLoss: 0, valAcc: 0, lr: e.lr });
      s.trainLoss += e.trainLoss / k;
      s.valLoss += e.valLoss / k;
      s.valAcc += e.valAcc / k;
    });
  }
  let best = sums[0]!;
  for (const e of sums) if (e.valAcc > best.valAcc) best = e;
  return { spec: t, score: best.valAcc, loss: best.valLoss, epoch: best.epoch, history: sums, head: null, last: null, seconds: (performance.now() - t0) / 1000 };
}

function lbfgsRows(s: SplitFeatures, views: 'clean' | 'all'): { x: Float32Array; y: Int32Array; n: number } {
  const n = s.labels.length;
  if (views === 'clean') return { x: s.clean!, y: s.labels, n };
  const x = new Float32Array(n * (s.views + 1) * s.dim);
  x.set(s.aug);
  x.set(s.clean!, s.aug.length);
  const y = new Int32Array(n * (s.views + 1));
  for (let i = 0; i < n; i++) {
    for (let v = 0; v < s.views; v++) y[i * s.views + v] = s.labels[i]!;
    y[n * s.views + i] = s.labels[i]!;
  }
  return { x, y, n: n * (s.views + 1) };
}

/** A path of penalties (strongest first), each fit warm-started from the previous one. */
function lbfgsPath(path: LbfgsTrial[], train: SplitFeatures, held: SplitFeatures, d: SweepData): { head: Head; acc: number; loss: number; trainLoss: number; iterations: number; seconds: number }[] {
  const first = path[0]!;
  const prep = prepareTransform(train, first.transform);
  const rows = lbfgsRows(prep.train, first.views);
  let init: Head | undefined;
  return path.map((t) => {
    const t0 = performance.now();
    const fit = fitLogistic(rows.x, rows.y, rows.n, d.classes, train.dim, { l2: t.l2, maxIter: t.maxIter, tol: 1e-4, ...(init ? { init } : {}) });
    init = fit.head;
    const head = finalHead(fit.head, prep);
    const s = scoreHead(head, held);
    return { head, acc: s.acc, loss: s.loss, trainLoss: fit.loss, iterations: fit.iterations, seconds: (performance.now() - t0) / 1000 };
  });
}

function lbfgsTask(path: LbfgsTrial[], d: SweepData): TrialResult[] {
  const record = (acc: number, loss: number, trainLoss: number): EpochRecord[] => [{ epoch: 1, trainLoss, valLoss: loss, valAcc: acc, lr: 0 }];
  if (d.selection.kind === 'val') {
    return lbfgsPath(path, d.train, d.val!, d).map((r, i) => ({
      spec: path[i]!, score: r.acc, loss: r.loss, epoch: 1, history: record(r.acc, r.loss, r.trainLoss), head: r.head, last: r.head, iterations: r.iterations, seconds: r.seconds,
    }));
  }
  const k = d.selection.folds;
  const acc = new Float64Array(path.length), loss = new Float64Array(path.length), trainLoss = new Float64Array(path.length);
  const secs = new Float64Array(path.length), its = new Float64Array(path.length);
  for (let f = 0; f < k; f++) {
    const { train, held } = foldSplits(d.train, d.folds!, f);
    lbfgsPath(path, train, held, d).forEach((r, i) => {
      acc[i] += r.acc / k;
      loss[i] += r.loss / k;
      trainLoss[i] += r.trainLoss / k;
      secs[i] += r.seconds;
      its[i] += r.iterations / k;
    });
  }
  return path.map((t, i) => ({ spec: t, score: acc[i]!, loss: loss[i]!, epoch: 1, history: record(acc[i]!, loss[i]!, trainLoss[i]!), head: null, last: null, iterations: its[i]!, seconds: secs[i]! }));
}

/** Runs one task; an Adam task gives one result, an L-BFGS path one per penalty. */
export async function runTask(task: Task, d: SweepData): Promise<TrialResult[]> {
  const first = task.trials[0]!;
  if (first.solver === 'lbfgs') return lbfgsTask(task.trials as LbfgsTrial[], d);
  if (d.selection.kind === 'cv') return [await adamCv(first, d)];
  return [await adamOnVal(first, d, preparedFor(d.train, first.transform))];
}

// The transformed training split of the last transform asked for, per thread: tasks arrive sorted by
// transform, so a worker prepares each transform once.
let preparedCache: { train: SplitFeatures; name: TransformName; p: Prepared } | undefined;
function preparedFor(train: SplitFeatures, name: TransformName): Prepared {
  if (preparedCache?.train !== train || preparedCache.name !== name) preparedCache = { train, name, p: prepareTransform(train, name) };
  return preparedCache.p;
}

/**
 * The winner's head trained on ALL training images (after CV chose it): Adam for the chosen number of
 * epochs, or L-BFGS at the chosen penalty.
 */
export async function refitWinner(spec: TrialSpec, epoch: number, d: SweepData): Promise<{ head: Head; trainLoss: number[] }> {
  const prep = prepareTransform(d.train, spec.transform);
  if (spec.solver === 'lbfgs') {
    const rows = lbfgsRows(prep.train, spec.views);
    const fit = fitLogistic(rows.x, rows.y, rows.n, d.classes, d.train.dim, { l2: spec.l2, maxIter: spec.maxIter, tol: 1e-4 });
    return { head: finalHead(fit.head, prep), trainLoss: [fit.loss] };
  }
  // trainHead wants a split to evaluate each epoch on; the training split itself serves (its numbers are dropped).
  const self = { ...prep.train, views: 0, aug: new Float32Array(0), clean: prep.train.clean ?? prep.train.aug.filter((_, i) => Math.floor(i / prep.train.dim) % prep.train.views === 0) };
  const r = await trainHead(prep.train, self, d.classes, { ...adamOptions(spec, d.seed), epochs: epoch });
  return { head: finalHead(r.last.head, prep), trainLoss: r.history.map((e) => e.trainLoss) };
}
