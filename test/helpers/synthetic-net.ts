// Synthetic ResNet weights with exactly the tensors the spec expects, deterministic, so that backbone
// tests run without ../shared.
import type { TensorEntry } from '../../src/backbone/safetensors.js';
import { expectedTensors, resnetSpec, type ArchName, type Variant } from '../../src/backbone/spec.js';
import { IMAGENET_PREPROCESS } from '../../src/image/normalize.js';

export const tv = (arch: ArchName, extra: Partial<Variant> = {}): Variant =>
  ({ arch, format: 'torchvision', strideIn1x1: false, convBias: false, bnEps: 1e-5, preprocess: IMAGENET_PREPROCESS, ...extra });

/** A deterministic pseudo-random generator, so that synthetic weights are the same on every run. */
export function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

/** A synthetic weights "file" with exactly the tensors the spec expects. */
export function synthetic(variant: Variant, opts: { fc?: number; metadata?: Record<string, string> } = {}) {
  const r = rng(7);
  const tensors = new Map<string, TensorEntry>();
  for (const e of expectedTensors(resnetSpec(variant), opts.fc)) {
    const size = e.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size).map(() => (e.name.endsWith('running_var') ? 0.5 + r() : r() - 0.5));
    tensors.set(e.name, { name: e.name, dtype: 'F32', shape: e.shape, begin: 0, end: size * 4, data });
  }
  return { path: 'synthetic.safetensors', metadata: opts.metadata ?? { arch: variant.arch }, tensors };
}
