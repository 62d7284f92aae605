import { describe, expect, it } from 'vitest';
import { cloneHead, initHead } from '../../src/head/head.js';

const classes = ['apple_pie', 'baby_back_ribs', 'baklava'];

describe('initHead (PyTorch Linear default init)', () => {
  it('draws weight and bias from U(-1/sqrt(D), 1/sqrt(D))', () => {
    const d = 512;
    const h = initHead(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'], d, 0);
    const bound = 1 / Math.sqrt(d);
    expect(h.weight.length).toBe(10 * d);
    expect(h.bias.length).toBe(10);
    const all = [...h.weight, ...h.bias];
    expect(Math.max(...all)).toBeLessThanOrEqual(bound);
    expect(Math.min(...all)).toBeGreaterThanOrEqual(-bound);
    // Uniform on [-b, b]: mean 0, variance b²/3; 5120 draws put both well inside these limits.
    const mean = all.reduce((s, v) => s + v, 0) / all.length;
    const variance = all.reduce((s, v) => s + (v - mean) ** 2, 0) / all.length;
    expect(Math.abs(mean)).toBeLessThan(0.05 * bound);
    expect(variance / (bound * bound / 3)).toBeGreaterThan(0.95);
    expect(variance / (bound * bound / 3)).toBeLessThan(1.05);
  });

  it('is reproducible from the seed and differs between seeds', () => {
    expect(initHead(classes, 8, 3).weight).toEqual(initHead(classes, 8, 3).weight);
    expect(initHead(classes, 8, 3).weight).not.toEqual(initHead(classes, 8, 4).weight);
  });
});

describe('cloneHead', () => {
  it('copies parameters and transform (no shared arrays)', () => {
    const h = { ...initHead(classes, 4, 0), transform: { l2: true } };
    const c = cloneHead(h);
    expect(c).toEqual(h);
    c.weight[0] = 99;
    c.transform!.power = 2;
    expect(h.weight[0]).not.toBe(99);
    expect(h.transform).toEqual({ l2: true });
  });
});
