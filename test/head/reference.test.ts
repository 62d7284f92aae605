// The head trainer against PyTorch, step by step: ../shared/reference/head-train-reference.json (made by
// make_head_reference.py beside it): 48x16 features, 5 classes, given initial weights and batch order,
// Adam lr 1e-3 + StepLR(2, 0.5), batch 8, 4 epochs.
import { readFile } from 'node:fs/promises';
import { beforeAll, expect, it } from 'vitest';
import type { SplitFeatures } from '../../src/cache/types.js';
import type { Head } from '../../src/head/head.js';
import { trainHead, type TrainResult } from '../../src/train/loop.js';
import { describeShared, sharedPath } from '../helpers/shared.js';

const FILE = 'reference/head-train-reference.json';

interface Params { weight: number[]; bias: number[] }
interface Reference {
  dim: number;
  classes: number;
  recipe: { lr: number; batch: number; epochs: number };
  train: { features: number[]; labels: number[] };
  val: { features: number[]; labels: number[] };
  batch_order_per_epoch: number[][];
  initial: Params;
  after_first_step: Params & { loss: number };
  epochs: (Params & { epoch: number; lr: number; train_loss: number; val_loss: number; val_acc: number })[];
}

/** ||a - b|| / ||b|| */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

function split(name: string, s: { features: number[]; labels: number[] }, dim: number): SplitFeatures {
  const n = s.labels.length;
  return {
    split: name, dim, paths: [], hashes: [], labels: Int32Array.from(s.labels), views: 0,
    aug: new Float32Array(0), clean: Float32Array.from(s.features.slice(0, n * dim)),
  };
}

describeShared('the head trainer against PyTorch (Adam + StepLR, step by step)', [FILE], () => {
  let ref: Reference;
  let result: TrainResult;
  const perEpoch: Head[] = [];
  let afterFirst: Head | undefined;

  beforeAll(async () => {
    ref = JSON.parse(await readFile(sharedPath(FILE), 'utf8')) as Reference;
    const classes = Array.from({ length: ref.classes }, (_, i) => `c${i}`);
    const init: Head = { classes, dim: ref.dim, weight: Float32Array.from(ref.initial.weight), bias: Float32Array.from(ref.initial.bias) };
    const stepsPerEpoch = Math.ceil(ref.train.labels.length / ref.recipe.batch);
    const blank = (): Head => ({ classes, dim: ref.dim, weight: new Float32Array(ref.classes * ref.dim), bias: new Float32Array(ref.classes) });
    result = await trainHead(
      split('train', ref.train, ref.dim), split('val', ref.val, ref.dim), classes,
      { views: 'clean', epochs: ref.recipe.epochs, lr: ref.recipe.lr, stepSize: 2, gamma: 0.5, batch: ref.recipe.batch },
      undefined,
      {
        init,
        order: (epoch) => ref.batch_order_per_epoch[epoch - 1]!,
        onStep: (step, read) => {
          if (step === 1) read((afterFirst = blank()));
          if (step % stepsPerEpoch === 0) read((perEpoch[step / stepsPerEpoch - 1] = blank()));
        },
      },
    );
  });

  it('weights after the first step within 1e-5 relative', () => {
    expect(relErr(afterFirst!.weight, ref.after_first_step.weight)).toBeLessThan(1e-5);
    expect(relErr(afterFirst!.bias, ref.after_first_step.bias)).toBeLessThan(1e-5);
  });

  it('weights after every epoch within 1e-5 relative', () => {
    expect(perEpoch).toHaveLength(ref.epochs.length);
    ref.epochs.forEach((e, i) => {
      expect(relErr(perEpoch[i]!.weight, e.weight), `epoch ${e.epoch}`).toBeLessThan(1e-5);
      expect(relErr(perEpoch[i]!.bias, e.bias), `epoch ${e.epoch}`).toBeLessThan(1e-5);
    });
    // The run's last head is the last epoch's parameters.
    expect(relErr(result.last.head.weight, ref.epochs[ref.epochs.length - 1]!.weight)).toBeLessThan(1e-5);
  });

  it('lr, train loss, val loss and val accuracy per epoch within 1e-5', () => {
    expect(result.history).toHaveLength(ref.epochs.length);
    ref.epochs.forEach((e, i) => {
      const h = result.history[i]!;
      expect(h.epoch).toBe(e.epoch);
      expect(h.lr).toBe(e.lr);
      expect(Math.abs(h.trainLoss - e.train_loss), `train loss, epoch ${e.epoch}`).toBeLessThan(1e-5);
      expect(Math.abs(h.valLoss - e.val_loss), `val loss, epoch ${e.epoch}`).toBeLessThan(1e-5);
      expect(Math.abs(h.valAcc - e.val_acc), `val acc, epoch ${e.epoch}`).toBeLessThan(1e-5);
    });
  });
});
