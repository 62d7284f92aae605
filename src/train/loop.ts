// The epoch loop of the seed's recipe, trained from cached features: each epoch every training image
// shows ONE of its cached views (what the tutorial's on-the-fly augmentation does), batches of 64 in a
// seeded shuffled order, Adam with StepLR, then loss and accuracy on the validation features.
import type { SplitFeatures } from '../cache/types.js';
import { UserError } from '../errors.js';
import { HeadEngine, type Batch } from '../head/engine.js';
import { cloneHead, initHead, type Head } from '../head/head.js';
import { Rng, Stream, permutation } from '../random.js';
import { stepLr } from './schedule.js';
import { evalRows, evalViewCount, evalViewRows, meanOverViews } from './eval-views.js';

export { evalRows } from './eval-views.js';

/** Which cached views of a training image an epoch may pick: augmented, clean (eval transform), or either. */
export type ViewMode = 'aug' | 'clean' | 'all';

export interface TrainOptions {
  epochs?: number;
  lr?: number;
  stepSize?: number;
  gamma?: number;
  batch?: number;
  seed?: number;
  views?: ViewMode;
  /** L2 penalty on the weight, added to its gradient (torch's Adam weight_decay); 0 in the recipe. */
  weightDecay?: number;
  /** Label smoothing of the training loss (torch's CrossEntropyLoss(label_smoothing)); 0 in the recipe. */
  labelSmoothing?: number;
}

/** What a caller may fix instead of drawing it from the seed (tests against PyTorch, warm starts). */
export interface TrainHooks {
  /** Initial parameters instead of PyTorch's default init drawn from the seed. */
  init?: Head;
  /** The order of the training images in 1-based epoch `epoch` instead of a seeded shuffle. */
  order?: (epoch: number) => ArrayLike<number>;
  /** After every optimiser step (1-based count), with a way to read the parameters. */
  onStep?: (step: number, read: (into: Head) => void) => void;
}

export type ResolvedTrainOptions = Required<TrainOptions>;

export const TRAIN_DEFAULTS: ResolvedTrainOptions = {
  epochs: 50,
  lr: 1e-3,
  stepSize: 5,
  gamma: 0.5,
  batch: 64,
  seed: 0,
  views: 'aug',
  weightDecay: 0,
  labelSmoothing: 0,
};

export interface EpochRecord {
  /** 1-based. */
  epoch: number;
  /** Mean cross-entropy over the epoch's training rows, each taken before its batch's update. */
  trainLoss: number;
  valLoss: number;
  valAcc: number;
  /** Learning rate used during this epoch. */
  lr: number;
}

export interface Checkpoint {
  epoch: number;
  valAcc: number;
  valLoss: number;
  head: Head;
}

export interface TrainResult {
  history: EpochRecord[];
  /** Highest val accuracy; ties keep the earlier epoch. */
  best: Checkpoint;
  last: Checkpoint;
  options: ResolvedTrainOptions;
  /** Where the arithmetic ran ("wasm-simd"). */
  math: string;
  trainImages: number;
  valImages: number;
  /** Views an image could show per epoch under the chosen mode. */
  viewChoices: number;
  /** Wall time of the epochs (setup excluded). */
  seconds: number;
}

export function resolveTrainOptions(o: TrainOptions): ResolvedTrainOptions {
  const r: ResolvedTrainOptions = { ...TRAIN_DEFAULTS };
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (r as unknown as Record<string, unknown>)[k] = v;
  const posInt = (name: string, v: number) => {
    if (!Number.isSafeInteger(v) || v < 1) throw new UserError(`--${name} must be a positive integer, got ${v}`);
  };
  posInt('epochs', r.epochs);
  posInt('step-size', r.stepSize);
  posInt('batch', r.batch);
  if (!(r.lr > 0) || !Number.isFinite(r.lr)) throw new UserError(`--lr must be a positive number, got ${r.lr}`);
  if (!(r.gamma > 0) || !Number.isFinite(r.gamma)) throw new UserError(`--gamma must be a positive number, got ${r.gamma}`);
  if (!(r.weightDecay >= 0) || !Number.isFinite(r.weightDecay)) throw new UserError(`--weight-decay must be a number >= 0, got ${r.weightDecay}`);
  if (!(r.labelSmoothing >= 0 && r.labelSmoothing < 1)) throw new UserError(`--label-smoothing must be in [0, 1), got ${r.labelSmoothing}`);
  if (!Number.isSafeInteger(r.seed)) throw new UserError(`--seed must be an integer, got ${r.seed}`);
  if (!['aug', 'clean', 'all'].includes(r.views)) throw new UserError(`--views must be aug, clean or all, got ${r.views}`);
  return r;
}

function rowCount(s: SplitFeatures): number {
  return s.labels.length;
}

function checkSplit(s: SplitFeatures, nc: number, name: string): void {
  const n = rowCount(s);
  if (s.paths.length !== n && s.paths.length !== 0) throw new Error(`${name} split: ${s.paths.length} paths for ${n} labels`);
  if (s.aug.length !== n * s.views * s.dim) throw new Error(`${name} split: aug holds ${s.aug.length} floats, expected ${n}*${s.views}*${s.dim}`);
  if (s.clean && s.clean.length !== n * s.dim) throw new Error(`${name} split: clean holds ${s.clean.length} floats, expected ${n}*${s.dim}`);
  for (let i = 0; i < n; i++) {
    const y = s.labels[i]!;
    if (!(y >= 0 && y < nc)) throw new UserError(`${name} split: image ${s.paths[i] ?? i} has label ${y}, outside the ${nc} classes`);
  }
}

/** Checks the inputs of trainHead; throws a UserError naming what is missing. */
export function checkTrainInputs(train: SplitFeatures, val: SplitFeatures, classes: string[], views: ViewMode): void {
  if (classes.length < 2) throw new UserError(`need at least 2 classes to train a classifier, the cache has ${classes.length}${classes.length === 1 ? ` ("${classes[0]}")` : ''}`);
  if (rowCount(train) === 0) throw new UserError('the cache has no training images (run viewprobe extract --train DATA)');
  if (rowCount(val) === 0) throw new UserError('the cache has no validation images (run viewprobe extract --val DATA)');
  if (train.dim !== val.dim) throw new Error(`train features are ${train.dim}-d but val features are ${val.dim}-d`);
  checkSplit(train, classes.length, 'train');
  checkSplit(val, classes.length, 'val');
  if ((views === 'aug' || views === 'all') && train.views < 1) {
    throw new UserError(`--views ${views} needs augmented views, but the cache has none for some training image (extract with --views K)`);
  }
  if ((views === 'clean' || views === 'all') && !train.clean) {
    throw new UserError(`--views ${views} needs the clean view of every training image, but the cache lacks it (extract without --no-clean-view)`);
  }
  evalRows(val);
}

/**
 * Picks, per image, the view shown in each epoch. An image has M choices (K augmented views, the clean
 * one, or K+1 for 'all'); epochs run through a fresh seeded permutation of the M choices per image
 * every M epochs, so each view is shown equally often and in a different order each round.
 */
export class ViewPicker {
  private cycle = -1;
  private perms: Int32Array;

  constructor(private readonly n: number, readonly choices: number, private readonly seed: number) {
    this.perms = new Int32Array(n * choices);
  }

  /** Choice index for image i in 1-based epoch e; index K (= views) means the clean view. */
  pick(i: number, epoch: number): number {
    const c = Math.floor((epoch - 1) / this.choices);
    if (c !== this.cycle) {
      const rng = new Rng(this.seed, Stream.views, c);
      for (let j = 0; j < this.n; j++) this.perms.set(permutation(rng, this.choices), j * this.choices);
      this.cycle = c;
    }
    return this.perms[i * this.choices + ((epoch - 1) % this.choices)]!;
  }
}

export async function trainHead(
  train: SplitFeatures,
  val: SplitFeatures,
  classes: string[],
  opts: TrainOptions = {},
  onEpoch?: (r: EpochRecord) => void,
  hooks: TrainHooks = {},
): Promise<TrainResult> {
  const o = resolveTrainOptions(opts);
  checkTrainInputs(train, val, classes, o.views);
  const n = rowCount(train);
  const nVal = rowCount(val);
  const d = train.dim;
  const k = train.views;
  // With test-time views, the mean feature: for this plain linear head, the same as averaging logits.
  const valX = meanOverViews(evalViewRows(val), nVal, evalViewCount(val), d);

  const init = hooks.init ? cloneHead(hooks.init) : initHead(classes, d, o.seed);
  const math = new HeadEngine(init, { maxBatch: o.batch, aug: train.aug, clean: train.clean });
  const choices = o.views === 'aug' ? k : o.views === 'clean' ? 1 : k + 1;
  const picker = new ViewPicker(n, choices, o.seed);
  const batch: Batch = {
    count: 0,
    fromClean: new Uint8Array(o.batch),
    offs: new Float64Array(o.batch),
    labels: new Int32Array(o.batch),
  };
  const history: EpochRecord[] = [];
  const current = cloneHead(init);
  let best: Checkpoint | undefined;
  let steps = 0;
  const t0 = performance.now();
  for (let epoch = 1; epoch <= o.epochs; epoch++) {
    const lr = stepLr(epoch, o);
    const order = hooks.order ? hooks.order(epoch) : permutation(new Rng(o.seed, Stream.shuffle, epoch), n);
    if (order.length !== n) throw new Error(`epoch ${epoch}: an order of ${order.length} images for ${n}`);
    let lossSum = 0;
    for (let s = 0; s < n; s += o.batch) {
      const nb = Math.min(o.batch, n - s);
      for (let j = 0; j < nb; j++) {
        const i = order[s + j]!;
        const choice = o.views === 'clean' ? k : picker.pick(i, epoch);
        const isClean = choice === k;
        batch.fromClean[j] = isClean ? 1 : 0;
        batch.offs[j] = isClean ? i * d : (i * k + choice) * d;
        batch.labels[j] = train.labels[i]!;
      }
      batch.count = nb;
      lossSum += math.trainStep(batch, lr, o);
    if (hooks.onStep) hooks.onStep(++steps, (into) => math.read(into));
    }
    const ev = math.evaluate(valX, val.labels, nVal);
    const rec: EpochRecord = { epoch, trainLoss: lossSum / n, valLoss: ev.lossSum / nVal, valAcc: ev.correct / nVal, lr };
    history.push(rec);
    if (!best || rec.valAcc > best.valAcc) {
      math.read(current);
      best = { epoch, valAcc: rec.valAcc, valLoss: rec.valLoss, head: cloneHead(current) };
    }
    onEpoch?.(rec);
  }
  const seconds = (performance.now() - t0) / 1000;
  math.read(current);
  const lastRec = history[history.length - 1]!;
  return {
    history,
    best: best!,
    last: { epoch: lastRec.epoch, valAcc: lastRec.valAcc, valLoss: lastRec.valLoss, head: current },
    options: o,
    math: math.name,
    trainImages: n,
    valImages: nVal,
    viewChoices: choices,
    seconds,
  };
}
