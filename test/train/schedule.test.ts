import { describe, expect, it } from 'vitest';
import { Adam, stepLr } from '../../src/train/schedule.js';

describe('StepLR', () => {
  const o = { lr: 1e-3, stepSize: 5, gamma: 0.5 };

  it('gives 1e-3, 5e-4, 2.5e-4 at epochs 1, 6, 11 (the seed recipe)', () => {
    expect(stepLr(1, o)).toBe(1e-3);
    expect(stepLr(6, o)).toBe(5e-4);
    expect(stepLr(11, o)).toBe(2.5e-4);
  });

  it('holds the rate for step-size epochs, then multiplies by gamma', () => {
    expect([1, 2, 3, 4, 5].map((e) => stepLr(e, o))).toEqual([1e-3, 1e-3, 1e-3, 1e-3, 1e-3]);
    expect([5, 6, 10, 11, 50].map((e) => stepLr(e, o))).toEqual([1e-3, 5e-4, 5e-4, 2.5e-4, 1e-3 * 0.5 ** 9]);
    expect(stepLr(4, { lr: 0.1, stepSize: 3, gamma: 0.1 })).toBeCloseTo(0.01, 15);
  });

  it('refuses epoch 0 (epochs are 1-based)', () => {
    expect(() => stepLr(0, o)).toThrow(/positive integer/);
  });
});

describe('Adam', () => {
  /** The published algorithm (Kingma & Ba; torch.optim.Adam docs), in double precision. */
  function reference(p0: number[], grads: number[][], lr: number) {
    const b1 = 0.9, b2 = 0.999, eps = 1e-8;
    const p = [...p0], m = p0.map(() => 0), v = p0.map(() => 0);
    grads.forEach((g, step) => {
      const t = step + 1;
      for (let i = 0; i < p.length; i++) {
        m[i] = b1 * m[i]! + (1 - b1) * g[i]!;
        v[i] = b2 * v[i]! + (1 - b2) * g[i]! * g[i]!;
        const mHat = m[i]! / (1 - b1 ** t);
        const vHat = v[i]! / (1 - b2 ** t);
        p[i] = p[i]! - (lr * mHat) / (Math.sqrt(vHat) + eps);
      }
    });
    return p;
  }

  it('matches the published update over three steps on a tiny case', () => {
    const p0 = [0.5, -1.0, 2.0, 0.0];
    const grads = [
      [0.1, -0.2, 0.3, 0.0],
      [0.05, 0.4, -0.3, 1e-3],
      [-0.2, 0.1, 0.25, -2.0],
    ];
    const lr = 0.01;
    const p = Float32Array.from(p0);
    const adam = new Adam([p]);
    for (const g of grads) adam.step([Float32Array.from(g)], lr);
    const want = reference(p0, grads, lr);
    for (let i = 0; i < p.length; i++) expect(Math.abs(p[i]! - want[i]!)).toBeLessThan(1e-6);
    expect(adam.t).toBe(3);
  });

  it('moves each parameter by about lr against the gradient sign on the first step', () => {
    // m̂ = g and v̂ = g² after one step, so the update is lr·g/(|g| + eps).
    const p = Float32Array.from([1, 1, 1]);
    new Adam([p]).step([Float32Array.from([3, -0.01, 0])], 1e-3);
    expect(p[0]).toBeCloseTo(1 - 1e-3, 6);
    expect(p[1]).toBeCloseTo(1 + 1e-3, 6);
    expect(p[2]).toBe(1);
  });

  it('updates several parameter tensors, each with its own moments', () => {
    const a = Float32Array.from([0]), b = Float32Array.from([0, 0]);
    const adam = new Adam([a, b]);
    adam.step([Float32Array.from([1]), Float32Array.from([-1, 0])], 0.1);
    adam.step([Float32Array.from([1]), Float32Array.from([0, 0])], 0.1);
    const wantA = reference([0], [[1], [1]], 0.1);
    const wantB = reference([0, 0], [[-1, 0], [0, 0]], 0.1);
    expect(a[0]).toBeCloseTo(wantA[0]!, 6);
    expect(b[0]).toBeCloseTo(wantB[0]!, 6);
    expect(b[1]).toBe(0);
    expect(() => adam.step([Float32Array.from([1])], 0.1)).toThrow(/1 gradients for 2 parameters/);
  });
});
