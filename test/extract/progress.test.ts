// Extract's progress line: the ETA comes from the views still to extract, at the rate of extraction.
import { describe, expect, it } from 'vitest';
import { extractEta, progressLine } from '../../src/extract/progress.js';
import type { ExtractProgress } from '../../src/extract/pipeline.js';

const base: ExtractProgress = { imagesDone: 0, imagesTotal: 0, viewsExtracted: 0, viewsCached: 0, viewsLeft: 0, failed: 0, seconds: 0, extractSeconds: 0 };

describe('extract progress', () => {
  it('a rerun whose first half was cached: the ETA is the uncached half at the extraction rate, not the image fraction', () => {
    // 2000 images x 10 views; the first 1000 were cached (skipped in 2 s), 100 views extracted since in 5 s.
    const p = { ...base, imagesDone: 1010, imagesTotal: 2000, viewsCached: 10_000, viewsExtracted: 100, viewsLeft: 9900, seconds: 7, extractSeconds: 5 };
    const { rate, eta } = extractEta(p);
    expect(rate).toBe(20);
    expect(eta).toBe(495);
    expect(progressLine('extract', p)).toBe('extract 1010/2000 images, 100 views extracted, 10000 cached, 20.0 views/s, ETA 8m15s');
  });

  it('no rate yet: ETA ?; nothing left: ETA 0s', () => {
    expect(progressLine('x', { ...base, viewsLeft: 5 })).toMatch(/ETA \?$/);
    expect(progressLine('x', { ...base, viewsExtracted: 5, extractSeconds: 1 })).toMatch(/ETA 0s$/);
  });
});
