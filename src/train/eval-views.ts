// Test-time views (TTA): a split may hold, beside each image's clean (eval-transform) view, extra
// test-time views (e.g. the clean view mirrored). Evaluation averages the LOGITS over them (the team's
// convention); for a plain linear head that equals classifying the mean feature.
import type { SplitFeatures } from '../cache/types.js';
import { UserError } from '../errors.js';

/** Views per image that evaluation uses: the clean one plus the split's test-time views. */
export function evalViewCount(s: SplitFeatures): number {
  return 1 + (s.tta && s.ttaViews ? s.ttaViews : 0);
}

/** n * evalViewCount * dim floats, image-major: the clean view, then the test-time views. */
export function evalViewRows(s: SplitFeatures): Float32Array {
  const clean = evalRows(s);
  const v = evalViewCount(s);
  if (v === 1) return clean;
  const n = s.labels.length;
  const d = s.dim;
  const t = v - 1;
  const out = new Float32Array(n * v * d);
  for (let i = 0; i < n; i++) {
    out.set(clean.subarray(i * d, (i + 1) * d), i * v * d);
    out.set(s.tta!.subarray(i * t * d, (i + 1) * t * d), (i * v + 1) * d);
  }
  return out;
}

/** The mean of each group of `views` consecutive rows of `width` floats: n rows out. */
export function meanOverViews(rows: Float32Array, n: number, views: number, width: number): Float32Array {
  if (rows.length !== n * views * width) throw new Error(`meanOverViews: ${rows.length} floats, expected ${n}*${views}*${width}`);
  if (views === 1) return rows;
  const out = new Float32Array(n * width);
  for (let i = 0; i < n; i++) {
    for (let v = 0; v < views; v++) {
      const o = (i * views + v) * width;
      for (let j = 0; j < width; j++) out[i * width + j]! += rows[o + j]!;
    }
    for (let j = 0; j < width; j++) out[i * width + j]! /= views;
  }
  return out;
}

/**
 * The one feature row per image that evaluation uses: the clean (eval-transform) view; a split with
 * no clean array but exactly one view per image (how a val split may be stored) uses that view.
 */
export function evalRows(s: SplitFeatures): Float32Array {
  const n = s.labels.length;
  if (s.clean) return s.clean;
  if (s.views === 1) return s.aug;
  if (n === 0) return new Float32Array(0);
  throw new UserError(`the ${s.split} split has no eval-transform view of each image (${s.views} augmented views, no clean view)`);
}
