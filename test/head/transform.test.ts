import { describe, expect, it } from 'vitest';
import { headLogits } from '../../src/head/forward.js';
import { applyTransform, fitStandardizer, foldStandardizer, standardize } from '../../src/head/transform.js';
import { Rng } from '../../src/random.js';

describe('feature transforms', () => {
  it('power keeps the sign, L2 makes unit rows, a zero row stays zero, the identity is the input itself', () => {
    const x = Float32Array.from([4, -9, 0, 0]);
    expect([...applyTransform({ power: 0.5 }, x, 2, 2)]).toEqual([2, -3, 0, 0]);
    const l2 = applyTransform({ l2: true }, Float32Array.from([3, 4]), 1, 2);
    expect(l2[0]).toBeCloseTo(0.6, 7);
    expect(l2[1]).toBeCloseTo(0.8, 7);
    expect([...applyTransform({ l2: true }, Float32Array.from([0, 0]), 1, 2)]).toEqual([0, 0]);
    expect(applyTransform(undefined, x, 2, 2)).toBe(x);
    expect(applyTransform({}, x, 2, 2)).toBe(x);
  });

  it('standardisation folded into W and b gives the logits of the head on standardised rows', () => {
    const rng = new Rng(1, 2);
    const n = 40, d = 6, nc = 3;
    const x = Float32Array.from({ length: n * d }, (_, i) => 5 * (i % d) + rng.uniform() * (1 + (i % d)));
    for (let i = 0; i < n; i++) x[i * d + 5] = 2; // a constant feature (std 0) passes unchanged
    const s = fitStandardizer(x, n, d);
    expect(s.std[5]).toBe(1);
    const xs = standardize(s, x, n, d);
    for (let k = 0; k < 5; k++) {
      let m = 0, v = 0;
      for (let i = 0; i < n; i++) m += xs[i * d + k]!;
      for (let i = 0; i < n; i++) v += (xs[i * d + k]! - m / n) ** 2;
      expect(Math.abs(m / n)).toBeLessThan(1e-6);
      expect(v / n).toBeCloseTo(1, 5);
    }
    const head = { classes: ['a', 'b', 'c'], dim: d, weight: Float32Array.from({ length: nc * d }, () => rng.uniform() - 0.5), bias: Float32Array.from([0.1, -0.2, 0.3]) };
    const want = headLogits(head, xs, n);
    const got = headLogits(foldStandardizer(head, s), x, n);
    for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!)).toBeLessThan(1e-4);
  });
});
