import { describe, expect, it } from 'vitest';
import { confidentMistakes } from '../../src/eval/mistakes.js';

describe('confidentMistakes', () => {
  // 5 images, 3 classes (logits). Wrong: row 1 (p(2) high), row 3 (p(0) moderate), row 4 (tie 0/1 -> 0).
  const logits = Float32Array.from([
    3, 0, 0, // y 0, right
    0, 0, 5, // y 1, predicted 2 with ~0.987
    0, 4, 0, // y 1, right
    1, 0, 0, // y 2, predicted 0 with ~0.576
    2, 2, 0, // y 1, tie -> class 0 (the metrics' rule), ~0.468
  ]);
  const labels = [0, 1, 1, 2, 1];

  it('lists the wrong rows, most confident first, with the predicted and the true class probabilities', () => {
    const m = confidentMistakes(logits, labels, 3, 10);
    expect(m.map((x) => [x.row, x.truth, x.predicted])).toEqual([[1, 1, 2], [3, 2, 0], [4, 1, 0]]);
    const e5 = Math.exp(5);
    expect(m[0]!.prob).toBeCloseTo(e5 / (e5 + 2), 6);
    expect(m[0]!.trueProb).toBeCloseTo(1 / (e5 + 2), 6);
    expect(m[1]!.prob).toBeCloseTo(Math.E / (Math.E + 2), 6);
    expect(m[2]!.prob).toBeCloseTo(m[2]!.trueProb, 6); // the tie: as sure of the truth as of the answer
  });

  it('keeps the k most confident; equal confidence goes to the earlier row; none when all are right', () => {
    expect(confidentMistakes(logits, labels, 3, 2).map((x) => x.row)).toEqual([1, 3]);
    expect(confidentMistakes(logits, labels, 3, 0)).toEqual([]);
    const twins = Float32Array.from([0, 1, 0, 1]);
    expect(confidentMistakes(twins, [0, 0], 2, 5).map((x) => x.row)).toEqual([0, 1]);
    expect(confidentMistakes(Float32Array.from([1, 0, 0, 1]), [0, 1], 2, 5)).toEqual([]);
    expect(() => confidentMistakes(Float32Array.from([1, 0, 0]), [0, 1], 2, 5)).toThrow(/3 values, expected 2 rows x 2 classes/);
  });
});
