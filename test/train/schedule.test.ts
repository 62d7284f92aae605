import { describe, expect, it } from 'vitest';
import { stepLr } from '../../src/train/schedule.js';

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
