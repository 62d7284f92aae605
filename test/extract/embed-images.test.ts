import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { embedImages, type EmbeddedImage } from '../../src/extract/embed-images.js';
import { IMAGENET_PREPROCESS, makeNormLut } from '../../src/image/normalize.js';
import { getPreset } from '../../src/image/presets.js';
import { gatedEngine, stubEngine, syntheticImages } from '../helpers/stub-engine.js';

const tmp = mkdtempSync(join(tmpdir(), 'vp-embed-images-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function all(paths: string[], engine: ReturnType<typeof stubEngine>, batch: number): Promise<EmbeddedImage[]> {
  const out: EmbeddedImage[] = [];
  for await (const chunk of embedImages(paths, { engine, preset: getPreset('standard'), norm: makeNormLut(IMAGENET_PREPROCESS), batch })) {
    expect(chunk.length).toBeLessThanOrEqual(batch);
    out.push(...chunk);
  }
  return out;
}

describe('embedImages', () => {
  it('keeps the order of the paths and the features of one-batch-at-a-time, with batches finishing out of order; bad files get their error', async () => {
    const good = await syntheticImages(join(tmp, 'imgs'), 9);
    const bad = join(tmp, 'text.jpg');
    writeFileSync(bad, 'not an image\n');
    const missing = join(tmp, 'missing.jpg');
    const paths = [good[0]!, bad, ...good.slice(1, 5), missing, ...good.slice(5)];

    const serial = await all(paths, stubEngine(), 2);
    // 6 batches (every pair of paths holds a good image), finishing 1 before 0, 3 before 2, 5 before 4.
    const gated = gatedEngine();
    const parallel = await all(paths, gated.engine, 2);

    expect(parallel.map((r) => r.path)).toEqual(paths);
    expect(gated.maxRunning()).toBeGreaterThan(1);
    expect(gated.order).toHaveLength(6);
    expect(gated.order.indexOf(1)).toBeLessThan(gated.order.indexOf(0));
    expect(parallel).toEqual(serial);
    const errors = parallel.filter((r) => 'error' in r) as { path: string; error: string }[];
    expect(errors.map((e) => e.path)).toEqual([bad, missing]);
    expect(errors[0]!.error.startsWith(`${bad}: `)).toBe(true);
    expect(errors[1]!.error).toBe(`${missing}: file not found`);
    // Different images, different features.
    const feats = parallel.filter((r) => 'features' in r).map((r) => Array.from((r as { features: Float32Array }).features));
    expect(new Set(feats.map((f) => f.join(','))).size).toBe(9);
  });

  it('yields nothing for no paths, and an engine failure reaches the caller', async () => {
    expect(await all([], stubEngine(2), 4)).toEqual([]);
    const [img] = await syntheticImages(join(tmp, 'one'), 1);
    const failing = { ...stubEngine(2), embed: () => Promise.reject(new Error('engine broke')) };
    await expect(all([img!, img!, img!], failing, 1)).rejects.toThrow('engine broke');
  });
});
