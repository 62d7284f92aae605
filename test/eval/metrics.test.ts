import { describe, expect, it } from 'vitest';
import { argmaxRows, confusionMatrix, evaluateHead, evaluateScores, meanCrossEntropy, meanNll, topKAccuracy } from '../../src/eval/metrics.js';
import { initHead } from '../../src/head/head.js';
import { Rng } from '../../src/random.js';
import { trainHead } from '../../src/train/loop.js';
import { separable } from '../train/fixtures.js';

// Four images, three classes. Row 2 ties classes 0 and 1: the lower index wins.
const classes = ['apple_pie', 'baklava', 'churros'];
const logits = [
  2, 1, 0, // label 0 -> predicted 0
  0, 3, 1, // label 2 -> predicted 1
  1, 1, 0, // label 1 -> predicted 0 (tie)
  0, 0, 5, // label 2 -> predicted 2
];
const labels = [0, 2, 1, 2];

describe('metrics on a hand-made case', () => {
  const r = evaluateScores(logits, labels, classes);

  it('accuracy, arg-max with ties to the lower class', () => {
    expect([...argmaxRows(logits, 4, 3)]).toEqual([0, 1, 0, 2]);
    expect(r.correct).toBe(2);
    expect(r.accuracy).toBe(0.5);
  });

  it('confusion matrix has true classes as rows and sums to the number of images', () => {
    expect(r.confusion).toEqual([
      [1, 0, 0],
      [1, 0, 0],
      [0, 1, 1],
    ]);
    expect(r.confusion.flat().reduce((s, v) => s + v, 0)).toBe(4);
  });

  it('per-class accuracy and counts', () => {
    expect(r.perClass).toEqual([
      { label: 'apple_pie', n: 1, correct: 1, accuracy: 1 },
      { label: 'baklava', n: 1, correct: 0, accuracy: 0 },
      { label: 'churros', n: 2, correct: 1, accuracy: 0.5 },
    ]);
    const noImages = evaluateScores([1, 0, 0], [0], classes);
    expect(noImages.perClass[1]).toEqual({ label: 'baklava', n: 0, correct: 0, accuracy: null });
  });

  it('top-k: k is capped by the class count, and top-1 is the accuracy', () => {
    expect(r.topK).toBe(3);
    expect(r.topKAccuracy).toBe(1);
    expect(topKAccuracy(logits, labels, 3, 1)).toBe(0.5);
    expect(topKAccuracy(logits, labels, 3, 2)).toBe(1);
  });

  it('top-5 counts a label ranked 5th and misses one ranked 6th', () => {
    const seven = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    const s = [
      7, 6, 5, 4, 3, 2, 1, // label 4 ranks 5th -> hit
      7, 6, 5, 4, 3, 2, 1, // label 5 ranks 6th -> miss
      1, 1, 1, 1, 1, 1, 1, // all tied: label 6 ranks 7th -> miss
      1, 1, 1, 1, 1, 1, 1, // all tied: label 0 ranks 1st -> hit
    ];
    const e = evaluateScores(s, [4, 5, 6, 0], seven);
    expect(e.topK).toBe(5);
    expect(e.topKAccuracy).toBe(0.5);
  });

  it('mean loss from logits and from probabilities', () => {
    const lse = (a: number[]) => Math.log(a.reduce((s, v) => s + Math.exp(v), 0));
    const want = [lse([2, 1, 0]) - 2, lse([0, 3, 1]) - 1, lse([1, 1, 0]) - 1, lse([0, 0, 5]) - 5].reduce((s, v) => s + v) / 4;
    expect(r.loss).toBeCloseTo(want, 12);
    expect(meanCrossEntropy([1000, 0], [0], 2)).toBeCloseTo(0, 12); // no overflow
    expect(meanNll([0.5, 0.5, 0.25, 0.75], [0, 1], 2)).toBeCloseTo((Math.log(2) + Math.log(4 / 3)) / 2, 12);
    expect(evaluateScores([0.5, 0.5, 0.25, 0.75], [0, 1], ['x', 'y'], 'probs').loss).toBeCloseTo((Math.log(2) + Math.log(4 / 3)) / 2, 12);
  });

  it('refuses mismatched shapes and labels out of range', () => {
    expect(() => evaluateScores([1, 2, 3], [0], ['a', 'b'])).toThrow(/3 values, expected 1 rows x 2 classes/);
    expect(() => evaluateScores([1, 2], [2], ['a', 'b'])).toThrow(/label 2 of row 0 is outside 0..1/);
    expect(confusionMatrix([1], [0], 2)).toEqual([[0, 1], [0, 0]]);
  });
});

describe('evaluateHead', () => {
  it('scores the eval view of each image and checks the head fits the features', () => {
    const { val, classes: cls } = separable({ classes: 4, dim: 8 });
    // A head that reads coordinate c for class c separates the fixture perfectly.
    const head = initHead(cls, 8, 0);
    head.weight.fill(0);
    for (let c = 0; c < 4; c++) head.weight[c * 8 + c] = 1;
    head.bias.fill(0);
    const r = evaluateHead(head, val, cls);
    expect(r.n).toBe(val.labels.length);
    expect(r.accuracy).toBe(1);
    expect(r.confusion.flat().reduce((s, v) => s + v, 0)).toBe(val.labels.length);
    expect(() => evaluateHead(head, val, ['class_0', 'class_1', 'class_3', 'class_2'], 'run/head-best.json')).toThrow(
      'run/head-best.json: class 2 is "class_2" in the head but "class_3" in the val split',
    );
    expect(() => evaluateHead(initHead(cls, 9, 0), val, cls, 'h.json')).toThrow('h.json: head takes 9-d features but the val split has 8-d features');
  });

  it('gives exactly the accuracy and loss training recorded for the head (same forward pass)', async () => {
    // Noisy, overlapping classes and float features of every magnitude: near ties happen, so a
    // different summation order in eval would show.
    const nc = 7, d = 50, n = 300, nv = 400;
    const rng = new Rng(11, 3);
    const make = (count: number, name: string) => {
      const labels = Int32Array.from({ length: count }, () => rng.int(nc));
      const x = new Float32Array(count * d);
      for (let i = 0; i < count; i++) for (let k = 0; k < d; k++) x[i * d + k] = (rng.uniform() - 0.5) * 10 ** (k % 4 - 1) + (k === labels[i] ? 0.15 : 0);
      return { split: name, dim: d, paths: [], hashes: [], labels, views: 1, aug: x, clean: x };
    };
    const train = make(n, 'train'), val = make(nv, 'val');
    const cls = Array.from({ length: nc }, (_, i) => `c${i}`);
    const r = await trainHead(train, val, cls, { epochs: 6, lr: 3e-3, batch: 32 });
    expect(r.best.valAcc).toBeGreaterThan(1 / nc);
    expect(r.best.valAcc).toBeLessThan(1);
    for (const c of [r.best, r.last]) {
      const e = evaluateHead(c.head, val, cls);
      expect(e.accuracy).toBe(c.valAcc);
      expect(e.loss).toBe(c.valLoss);
    }
  });
});
