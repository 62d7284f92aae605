// Test-time views end to end without a backbone: extract stores them for val (not train) images of a
// preset that has them, eval averages the logits over the clean view and them, the training loop's
// val accuracy sees the same average, and embedImages hands predict every view of an image.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FeatureCache } from '../../src/cache/store.js';
import type { Fingerprint, SplitFeatures } from '../../src/cache/types.js';
import { embedImages } from '../../src/extract/embed-images.js';
import { IMAGENET_PREPROCESS, makeNormLut } from '../../src/image/normalize.js';
import { extractFeatures } from '../../src/extract/pipeline.js';
import { getPreset } from '../../src/image/presets.js';
import { evaluateHead } from '../../src/eval/metrics.js';
import { evalViewCount, evalViewRows, meanOverViews } from '../../src/train/eval-views.js';
import type { Head } from '../../src/head/head.js';
import { trainHead } from '../../src/train/loop.js';
import { stubEngine, syntheticImages } from '../helpers/stub-engine.js';

const tmp = mkdtempSync(join(tmpdir(), 'vp-tta-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const norm = makeNormLut(IMAGENET_PREPROCESS);

describe('test-time views through extract', () => {
  const preset = getPreset('probe', { size: 32 });
  const fp: Fingerprint = { arch: 'resnet18', weightsSha256: 'a'.repeat(64), preset: 'probe', inputSize: 32, transformVersion: preset.transformVersion, seed: 0, dim: 2 };

  it('val images get the preset\'s test-time views, train images do not; a rerun extracts nothing', async () => {
    const paths = await syntheticImages(join(tmp, 'imgs'), 5);
    const train = paths.slice(0, 3).map((path, i) => ({ path, label: i % 2 }));
    const val = paths.slice(3).map((path, i) => ({ path, label: i % 2 }));
    const cache = await FeatureCache.open(join(tmp, 'cache'), { exclusive: true });
    try {
      await cache.ensureFingerprint(fp, ['a', 'b']);
      const jobs = [{ split: 'train', items: train, views: 2, clean: true }, { split: 'val', items: val, views: 0, clean: true, tta: true }];
      const o = { engine: stubEngine(2), norm, preset, cache, seed: 0, batch: 3 };
      const s = await extractFeatures(jobs, o);
      expect(s.extracted).toBe(3 * (2 + 1) + 2 * (1 + 1));
      const again = await extractFeatures(jobs, o);
      expect([again.extracted, again.alreadyCached]).toEqual([0, 13]);
      const tr = cache.readSplit('train');
      expect(tr.ttaViews).toBeUndefined();
      const va = cache.readSplit('val');
      expect(va.ttaViews).toBe(1);
      for (let i = 0; i < 2; i++) {
        // The stub's features: [mean of the view, its first value]. A mirror has the clean view's mean, not its first pixel.
        expect(va.tta![i * 2]).toBeCloseTo(va.clean![i * 2]!, 5);
        expect(va.tta![i * 2 + 1]).not.toBe(va.clean![i * 2 + 1]);
      }
      expect(cache.info()!.counts.ttaViews).toBe(2);
    } finally {
      await cache.close();
    }
  });

  it('embedImages with testViews returns the clean view then the test-time views of each image', async () => {
    const paths = await syntheticImages(join(tmp, 'emb'), 3);
    const got: { features: Float32Array; views?: Float32Array }[] = [];
    for await (const chunk of embedImages(paths, { engine: stubEngine(2), preset, norm, batch: 3, testViews: true })) {
      for (const r of chunk) if ('features' in r) got.push(r);
    }
    expect(got.length).toBe(3);
    for (const r of got) {
      expect(r.views!.length).toBe(2 * 2);
      expect(Array.from(r.views!.subarray(0, 2))).toEqual(Array.from(r.features));
      expect(r.views![2]).toBeCloseTo(r.features[0]!, 5);
    }
    const plain: Float32Array[] = [];
    for await (const chunk of embedImages(paths, { engine: stubEngine(), preset, norm })) for (const r of chunk) if ('features' in r) plain.push(r.features);
    expect(plain.map((f) => Array.from(f))).toEqual(got.map((r) => Array.from(r.features)));
  });
});

describe('averaging over test-time views', () => {
  // Two classes, 1-d features; the head's logits are [x, -x]. Image 0 (label 0): clean -1, mirror +3 -> mean +1: right
  // only with the average. Image 1 (label 1): clean -2, mirror +1 -> mean -0.5: right with both.
  const head: Head = { classes: ['a', 'b'], dim: 1, weight: Float32Array.of(1, -1), bias: Float32Array.of(0, 0) };
  const split: SplitFeatures = {
    split: 'val', dim: 1, paths: ['x', 'y'], hashes: ['h0', 'h1'], labels: Int32Array.of(0, 1), views: 0,
    aug: new Float32Array(0), clean: Float32Array.of(-1, -2), ttaViews: 1, tta: Float32Array.of(3, 1),
  };

  it('rows are image-major (clean, then test-time views), and the mean is per image', () => {
    expect(evalViewCount(split)).toBe(2);
    expect(Array.from(evalViewRows(split))).toEqual([-1, 3, -2, 1]);
    expect(Array.from(meanOverViews(evalViewRows(split), 2, 2, 1))).toEqual([1, -0.5]);
    const { ttaViews: _t, tta: _x, ...plain } = split;
    expect(evalViewCount(plain)).toBe(1);
    expect(evalViewRows(plain)).toBe(plain.clean);
  });

  it('eval averages the logits: both right with the mirror, one without it', () => {
    expect(evaluateHead(head, split, ['a', 'b']).accuracy).toBe(1);
    const { ttaViews: _t, tta: _x, ...plain } = split;
    expect(evaluateHead(head, plain, ['a', 'b']).accuracy).toBe(0.5);
  });

  it('the training loop scores val on the same average', async () => {
    const train: SplitFeatures = {
      split: 'train', dim: 1, paths: ['p', 'q'], hashes: ['h2', 'h3'], labels: Int32Array.of(0, 1), views: 0,
      aug: new Float32Array(0), clean: Float32Array.of(2, -2),
    };
    const r = await trainHead(train, split, ['a', 'b'], { views: 'clean', epochs: 30, lr: 0.1 });
    // The head learns "positive = a": the clean views alone would put image 0 in b.
    expect(r.best.valAcc).toBe(1);
  });
});
