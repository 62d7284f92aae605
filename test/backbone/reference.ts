// PyTorch's reference outputs in ../shared/weights (reference.json + exact input tensors), and the
// comparisons the fidelity tests use.
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import type { Engine } from '../../src/backbone/engine.js';
import { sharedPath } from '../helpers/shared.js';

export const MODELS = ['resnet18', 'resnet50-keras'] as const;
export type ModelKey = (typeof MODELS)[number];
export const PHOTOS = ['dog', 'eagle', 'giraffe'] as const;

export interface RefImage {
  photo: string;
  input_file: string;
  features: number[];
  first20_logits: number[];
  top5_indices: number[];
  top5_logits: number[];
}
export interface RefModel {
  weights_file: string;
  weights_sha256: string;
  metadata: Record<string, string>;
  images: Record<string, RefImage>;
}

/** Every shared file the fidelity tests read, for describeShared. */
export const REF_FILES = [
  'weights/reference.json',
  'weights/resnet18-random.safetensors',
  'weights/resnet50-keras.safetensors',
  ...MODELS.flatMap((m) => PHOTOS.map((p) => `weights/input-${m}-${p}.f32`)),
];

let cached: Record<ModelKey, RefModel> | undefined;
export function reference(): Record<ModelKey, RefModel> {
  cached ??= (JSON.parse(readFileSync(sharedPath('weights/reference.json'), 'utf8')) as { models: Record<ModelKey, RefModel> }).models;
  return cached;
}

export function weightsPath(model: ModelKey): string {
  return sharedPath('weights', reference()[model].weights_file);
}

/** The exact NHWC float32 inputs of the three photos, packed as one batch. */
export function referenceBatch(model: ModelKey): Float32Array {
  const per = 224 * 224 * 3;
  const out = new Float32Array(PHOTOS.length * per);
  PHOTOS.forEach((p, i) => {
    const buf = readFileSync(sharedPath('weights', reference()[model].images[p]!.input_file));
    if (buf.byteLength !== per * 4) throw new Error(`${p}: ${buf.byteLength} bytes, expected ${per * 4}`);
    out.set(new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength)), i * per);
  });
  return out;
}

/**
 * Runs the three reference photos through `engine` as one batch: features within 1e-4 relative
 * error of PyTorch's, the same top-5 classes, and the first 20 logits within 1e-4.
 */
export async function expectReferenceOutputs(engine: Engine, model: ModelKey, dim: number): Promise<void> {
  const ref = reference()[model];
  const input = referenceBatch(model);
  const feats = await engine.embed(input, 3, 224, 224);
  const logits = await engine.logits!(input, 3, 224, 224);
  expect(feats.length).toBe(3 * dim);
  PHOTOS.forEach((p, i) => {
    const r = ref.images[p]!;
    expect(relErr(row(feats, i, dim), r.features), `${model} ${p} features`).toBeLessThan(1e-4);
    const l = row(logits, i, 1000);
    expect(topK(l, 5), `${model} ${p} top-5`).toEqual(r.top5_indices);
    expect(relErr(l.subarray(0, 20), r.first20_logits), `${model} ${p} logits`).toBeLessThan(1e-4);
  });
}

/** ‖a−b‖/‖b‖ */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

export function topK(v: ArrayLike<number>, k: number): number[] {
  return Array.from({ length: v.length }, (_, i) => i).sort((x, y) => v[y]! - v[x]!).slice(0, k);
}

/** Row i of an n×dim matrix. */
export function row(m: Float32Array, i: number, dim: number): Float32Array {
  return m.subarray(i * dim, (i + 1) * dim);
}
