import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { headLogits } from '../../src/head/forward.js';
import { fitLogistic, lbfgs } from '../../src/train/lbfgs.js';

interface Fit { C: number; l2: number; coef: number[]; intercept: number[]; train_acc: number; held_acc: number; objective: number }
interface Reference {
  dim: number;
  classes: number;
  train: { features: number[]; labels: number[] };
  held: { features: number[]; labels: number[] };
  fits: Fit[];
}

const ref = JSON.parse(await readFile(new URL('./lbfgs-reference/logistic-reference.json', import.meta.url), 'utf8')) as Reference;

function accuracy(z: Float32Array, labels: number[], nc: number): number {
  let ok = 0;
  labels.forEach((y, i) => {
    let a = 0;
    for (let c = 1; c < nc; c++) if (z[i * nc + c]! > z[i * nc + a]!) a = c;
    if (a === y) ok++;
  });
  return ok / labels.length;
}

describe('lbfgs', () => {
  it('minimises the Rosenbrock function', () => {
    const r = lbfgs((x, g) => {
      const [a, b] = [x[0]!, x[1]!];
      g[0] = -2 * (1 - a) - 400 * a * (b - a * a);
      g[1] = 200 * (b - a * a);
      return (1 - a) ** 2 + 100 * (b - a * a) ** 2;
    }, Float64Array.from([-1.2, 1]), { tol: 1e-8, maxIter: 1000 });
    expect(r.converged).toBe(true);
    expect(r.x[0]).toBeCloseTo(1, 5);
    expect(r.x[1]).toBeCloseTo(1, 5);
  });

  it('minimises a badly scaled quadratic in few iterations', () => {
    const s = [1, 10, 100, 1000];
    const r = lbfgs((x, g) => {
      let f = 0;
      for (let i = 0; i < 4; i++) {
        f += 0.5 * s[i]! * (x[i]! - i) ** 2;
        g[i] = s[i]! * (x[i]! - i);
      }
      return f;
    }, new Float64Array(4), { tol: 1e-9 });
    expect(r.converged).toBe(true);
    expect(r.iterations).toBeLessThan(40);
    for (let i = 0; i < 4; i++) expect(r.x[i]).toBeCloseTo(i, 6);
  });
});

describe('fitLogistic against scikit-learn (lbfgs, multinomial, L2 on the weight only)', () => {
  const n = ref.train.labels.length, d = ref.dim, nc = ref.classes;
  const classes = Array.from({ length: nc }, (_, i) => `c${i}`);
  const x = Float32Array.from(ref.train.features);
  const y = Int32Array.from(ref.train.labels);
  for (const fit of ref.fits) {
    it(`C=${fit.C}: same coefficients, intercepts, objective and accuracies`, () => {
      // Parameters are float32 (the head's kernels), so 1e-5 on the mean gradient is about as far as it goes.
      const r = fitLogistic(x, y, n, classes, d, { l2: fit.l2, tol: 1e-5, maxIter: 2000 });
      expect(r.converged).toBe(true);
      const want = [...fit.coef, ...fit.intercept];
      const got = [...r.head.weight, ...r.head.bias];
      let num = 0, den = 0;
      for (let i = 0; i < want.length; i++) {
        num += (got[i]! - want[i]!) ** 2;
        den += want[i]! ** 2;
      }
      expect(Math.sqrt(num / den)).toBeLessThan(1e-3);
      let pen = 0;
      for (const w of r.head.weight) pen += w * w;
      expect(r.loss + 0.5 * fit.l2 * pen).toBeCloseTo(fit.objective, 6);
      expect(accuracy(headLogits(r.head, x, n), ref.train.labels, nc)).toBe(fit.train_acc);
      expect(accuracy(headLogits(r.head, Float32Array.from(ref.held.features), ref.held.labels.length), ref.held.labels, nc)).toBe(fit.held_acc);
    });
  }

  it('a warm start from a neighbouring penalty converges to the same solution in fewer iterations', () => {
    const [a, b] = [ref.fits[1]!, ref.fits[2]!];
    const cold = fitLogistic(x, y, n, classes, d, { l2: b.l2, tol: 1e-6 });
    const warm = fitLogistic(x, y, n, classes, d, { l2: b.l2, tol: 1e-6, init: fitLogistic(x, y, n, classes, d, { l2: a.l2, tol: 1e-6 }).head });
    expect(warm.iterations).toBeLessThan(cold.iterations);
    const objective = (h: typeof cold) => h.loss + 0.5 * b.l2 * h.head.weight.reduce((s, w) => s + w * w, 0);
    expect(objective(warm)).toBeCloseTo(objective(cold), 6);
    expect(objective(warm)).toBeCloseTo(b.objective, 6);
  });
});
