import { describe, expect, it } from 'vitest';
import { HeadForward, headLogits } from '../../src/head/forward.js';
import { crossEntropy, logSumExp, softmaxRows } from '../../src/head/loss.js';

describe('the forward pass of a saved head', () => {
  it('computes x·Wᵀ + b', () => {
    const h = { classes: ['a', 'b'], dim: 3, weight: Float32Array.from([1, 2, 3, -1, 0, 0.5]), bias: Float32Array.from([0.5, -1]) };
    const x = Float32Array.from([1, 0, 2, 0, 1, 1]);
    expect([...headLogits(h, x, 2)]).toEqual([1 + 6 + 0.5, -1 + 1 - 1, 2 + 3 + 0.5, 0.5 - 1]);
  });

  it('applies the head\'s transform (power, then L2) before the linear layer', () => {
    const h = { classes: ['a', 'b'], dim: 2, weight: Float32Array.from([1, 0, 0, 1]), bias: Float32Array.from([0, 0]), transform: { power: 0.5, l2: true } };
    const x = Float32Array.from([9, 16, -4, 0]);
    const z = headLogits(h, x, 2);
    // (3, 4)/5 and (-2, 0)/2
    expect(z[0]).toBeCloseTo(0.6, 6);
    expect(z[1]).toBeCloseTo(0.8, 6);
    expect([z[2], z[3]]).toEqual([-1, 0]);
  });

  it('scores many calls with one instance, rows of any dim (padding is invisible)', () => {
    const d = 7, nc = 3;
    const weight = Float32Array.from({ length: nc * d }, (_, i) => (i % 5) - 2);
    const h = { classes: ['a', 'b', 'c'], dim: d, weight, bias: Float32Array.from([1, 2, 3]) };
    const f = new HeadForward(h);
    for (let r = 0; r < 3; r++) {
      const x = Float32Array.from({ length: 2 * d }, (_, i) => i + r);
      const z = f.logits(x, 2);
      for (let i = 0; i < 2; i++) for (let c = 0; c < nc; c++) {
        let want = h.bias[c]!;
        for (let k = 0; k < d; k++) want += weight[c * d + k]! * x[i * d + k]!;
        expect(z[i * nc + c]).toBe(want);
      }
    }
  });
});

describe('softmax and cross-entropy', () => {
  it('softmaxRows is normalised and does not overflow', () => {
    const p = softmaxRows(Float32Array.from([8.5, -1, 5.5, -0.5]), 2, 2);
    expect(p[0]! + p[1]!).toBeCloseTo(1, 6);
    expect(p[0]).toBeCloseTo(1 / (1 + Math.exp(-9.5)), 6);
    const big = softmaxRows(Float32Array.from([1000, 999]), 1, 2);
    expect(big[0]).toBeCloseTo(1 / (1 + Math.exp(-1)), 6);
  });

  it('crossEntropy is log-sum-exp minus the label\'s logit', () => {
    const z = [1, 2, 3];
    expect(logSumExp(z, 0, 3)).toBeCloseTo(Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3)), 12);
    expect(crossEntropy(z, 0, 3, 0)).toBeCloseTo(-Math.log(Math.exp(1) / (Math.exp(1) + Math.exp(2) + Math.exp(3))), 12);
  });
});
