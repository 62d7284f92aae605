// Feature transforms in front of the linear layer. Power and L2 normalisation are part of a head
// (head.transform, applied by the forward pass); standardisation is fitted on training rows and folded
// into the weights when the head is saved, so that a saved head never carries fitted statistics.
import type { Head, HeadTransform } from './head.js';

export function isIdentity(t: HeadTransform | undefined): boolean {
  return !t || (t.power === undefined && !t.l2);
}

/**
 * `n` rows of `dim` packed in `x`, transformed into a new array (per row, in double, stored as float32):
 * sign(x)·|x|^power, then x/||x||_2 (a zero row stays zero). The identity returns `x` itself.
 */
export function applyTransform(t: HeadTransform | undefined, x: Float32Array, n: number, dim: number): Float32Array {
  if (isIdentity(t)) return x;
  const out = new Float32Array(n * dim);
  const p = t!.power;
  for (let i = 0; i < n; i++) {
    const o = i * dim;
    if (p !== undefined) {
      for (let k = 0; k < dim; k++) {
        const v = x[o + k]!;
        out[o + k] = v < 0 ? -((-v) ** p) : v ** p;
      }
    } else {
      out.set(x.subarray(o, o + dim), o);
    }
    if (t!.l2) {
      let s = 0;
      for (let k = 0; k < dim; k++) s += out[o + k]! * out[o + k]!;
      if (s > 0) {
        const inv = 1 / Math.sqrt(s);
        for (let k = 0; k < dim; k++) out[o + k] = out[o + k]! * inv;
      }
    }
  }
  return out;
}

export interface Standardizer {
  mean: Float64Array;
  /** Standard deviation (population), with zero-variance features given 1 so they pass unchanged. */
  std: Float64Array;
}

/** Per-feature mean and standard deviation of `n` rows (double accumulation). */
export function fitStandardizer(x: Float32Array, n: number, dim: number): Standardizer {
  const mean = new Float64Array(dim);
  const sq = new Float64Array(dim);
  for (let i = 0; i < n; i++) {
    const o = i * dim;
    for (let k = 0; k < dim; k++) mean[k] += x[o + k]!;
  }
  for (let k = 0; k < dim; k++) mean[k] /= Math.max(n, 1);
  for (let i = 0; i < n; i++) {
    const o = i * dim;
    for (let k = 0; k < dim; k++) {
      const dv = x[o + k]! - mean[k]!;
      sq[k] += dv * dv;
    }
  }
  const std = new Float64Array(dim);
  for (let k = 0; k < dim; k++) {
    const s = Math.sqrt(sq[k]! / Math.max(n, 1));
    std[k] = s > 1e-12 ? s : 1;
  }
  return { mean, std };
}

/** (x - mean) / std for `n` rows, into a new array. */
export function standardize(s: Standardizer, x: Float32Array, n: number, dim: number): Float32Array {
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const o = i * dim;
    for (let k = 0; k < dim; k++) out[o + k] = (x[o + k]! - s.mean[k]!) / s.std[k]!;
  }
  return out;
}

/**
 * A head trained on standardised rows as a head on raw rows: W'[c][k] = W[c][k]/std[k] and
 * b'[c] = b[c] - Σ_k W[c][k]·mean[k]/std[k] (in double, stored as float32).
 */
export function foldStandardizer(head: Head, s: Standardizer): Head {
  const { dim: d } = head;
  const nc = head.classes.length;
  const weight = new Float32Array(head.weight.length);
  const bias = new Float32Array(nc);
  for (let c = 0; c < nc; c++) {
    let shift = 0;
    for (let k = 0; k < d; k++) {
      const w = head.weight[c * d + k]! / s.std[k]!;
      weight[c * d + k] = w;
      shift += w * s.mean[k]!;
    }
    bias[c] = head.bias[c]! - shift;
  }
  return { ...head, classes: [...head.classes], weight, bias, ...(head.transform ? { transform: { ...head.transform } } : {}) };
}
