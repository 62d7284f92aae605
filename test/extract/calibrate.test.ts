import { describe, expect, it } from 'vitest';
import type { ActivationPoint } from '../../src/backbone/quantize.js';
import { readSafetensors } from '../../src/backbone/safetensors.js';
import { buildResNet } from '../../src/backbone/spec.js';
import { ActivationStats, calibrationSample, computeCalibration, parseMethod } from '../../src/extract/calibrate.js';
import { makeNormLut } from '../../src/image/normalize.js';
import { getPreset } from '../../src/image/presets.js';
import { loadDataset } from '../../src/data/dataset.js';
import { hashBytes } from '../../src/data/hash.js';
import { describeShared, sharedPath } from '../helpers/shared.js';

describe('calibration sample', () => {
  it('the images with the smallest content hashes, whatever the list order, each content once', () => {
    const items = ['d', 'a', 'c', 'b', 'a2', 'e'].map((s) => ({ path: `/${s}.jpg`, hash: hashBytes(Buffer.from(s.slice(0, 1))) }));
    const sorted = [...new Set(items.map((i) => i.hash))].sort();
    const pick = calibrationSample(items, 3);
    expect(pick.map((i) => i.hash)).toEqual(sorted.slice(0, 3));
    expect(calibrationSample([...items].reverse(), 3).map((i) => i.hash)).toEqual(pick.map((i) => i.hash));
    expect(calibrationSample(items, 10).length).toBe(5);
  });
});

describe('activation statistics', () => {
  const points: ActivationPoint[] = [{ name: 'signed', nonNegative: false }, { name: 'relu', nonNegative: true }, { name: 'pool', nonNegative: true, sameAs: 'relu' }];
  // 100k values in [-1, 1] plus one outlier each way; the ReLU output is half zeros.
  const signed = Float32Array.from({ length: 100_002 }, (_, i) => (i === 0 ? -40 : i === 1 ? 50 : Math.sin(i * 12.9898) % 1));
  const relu = signed.map((x) => Math.max(0, x));
  const observe = (s: ActivationStats, hist: boolean) => {
    // Two "images": the order of observations must not matter.
    const halves = [0, 1].map((h) => new Map([['signed', signed.subarray(h * 50_001, (h + 1) * 50_001)], ['relu', relu.subarray(h * 50_001, (h + 1) * 50_001)]]));
    for (const m of halves) s.observeRange(m);
    if (hist) for (const m of halves.reverse()) s.observeHistogram(m);
  };

  it('minmax keeps the extremes; points that share another point\'s range get none of their own', () => {
    const s = new ActivationStats(points);
    observe(s, false);
    const r = s.ranges('minmax');
    expect(r).toEqual({ signed: [-40, 50], relu: [0, 50] });
  });

  it('percentile keeps the bulk and drops rare outliers', () => {
    const s = new ActivationStats(points);
    observe(s, true);
    const [lo, hi] = s.ranges('percentile:99.99').signed!;
    expect(lo).toBeGreaterThan(-1.1);
    expect(lo).toBeLessThan(-0.9);
    expect(hi).toBeGreaterThan(0.9);
    expect(hi).toBeLessThan(1.1);
  });

  it('mse finds the clipping that balances rounding error against clipping error', () => {
    // N values uniform in (0, 1] and one at 50: error(c) = (50 - c)^2 + N (c/255)^2 / 12, least at c = 50 / (1 + N / (12 * 255^2)).
    const n = 100_000;
    const v = Float32Array.from({ length: n + 1 }, (_, i) => (i === n ? 50 : (i + 1) / n));
    const s = new ActivationStats([{ name: 'relu', nonNegative: true }]);
    s.observeRange(new Map([['relu', v]]));
    s.observeHistogram(new Map([['relu', v]]));
    const [lo, hi] = s.ranges('mse').relu!;
    expect(lo).toBe(0);
    expect(Math.abs(hi - 50 / (1 + n / (12 * 255 ** 2)))).toBeLessThan(0.3);
  });

  it('method names are checked', () => {
    expect(parseMethod('percentile:99.99')).toBe('percentile:99.99');
    expect(() => parseMethod('entropy')).toThrow(/expected minmax, mse or percentile:P/);
    expect(() => parseMethod('percentile:100')).toThrow(/50 < P < 100/);
  });
});

describeShared('calibration on real images', ['data/tiny/train.txt', 'weights/resnet18-random.safetensors'], () => {
  it('is deterministic: the same images give the same ranges in any list order', async () => {
    const net = buildResNet(await readSafetensors(sharedPath('weights/resnet18-random.safetensors')));
    const items = (await loadDataset(sharedPath('data/tiny/train.txt'))).items;
    const o = { preset: getPreset('seed'), norm: makeNormLut(net.variant.preprocess), weightsSha256: 'ab'.repeat(32), count: 5, quiet: true };
    const a = await computeCalibration(net, items, o);
    const b = await computeCalibration(net, [...items].reverse(), o);
    expect(b).toEqual(a);
    expect(a.images.length).toBe(5);
    expect([...a.images].sort()).toEqual(a.images);
    const all = items.map((i) => i.path);
    expect(a.images.every((h) => all.length > 0 && typeof h === 'string')).toBe(true);
    // A different sample gives different ranges (the test would pass vacuously otherwise).
    const c = await computeCalibration(net, items, { ...o, count: 6 });
    expect(c.images.slice(0, 5)).toEqual(a.images);
    expect(c.ranges).not.toEqual(a.ranges);
  });
});
