// What the export tests share: tiny runs made through the CLI, predict's probabilities, viewprobe's
// own eval pixels, and an exported model run in onnxruntime (node or web).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ortNode from 'onnxruntime-node';
import type * as ortWeb from 'onnxruntime-web';
import { expect } from 'vitest';
import { decodeImage } from '../../src/image/decode.js';
import { getPreset, type PresetName, type PresetOptions } from '../../src/image/presets.js';
import { runCli } from '../helpers/cli.js';
import { sharedPath } from '../helpers/shared.js';

export const TINY_VAL = existsSync(sharedPath('data/tiny/val.txt'))
  ? readFileSync(sharedPath('data/tiny/val.txt'), 'utf8').trim().split('\n').map((l) => sharedPath('data/tiny', l.split(' ')[0]!))
  : [];
export const REF_PHOTOS = ['dog', 'eagle', 'giraffe'].map((p) => sharedPath(`weights/ref-${p}.jpg`));

export function cli(args: string[]) {
  const r = runCli(args);
  expect(r.status, `viewprobe ${args.join(' ')}\n${r.stderr}`).toBe(0);
  return r;
}

/** A tiny run: clean views only (the cheapest extract), a few epochs; `extract` adds extract options. */
export function makeRun(tmp: string, name: string, weights: string, preset: PresetName, extract: string[] = []): { cache: string; run: string } {
  const cache = join(tmp, `cache-${name}`);
  const run = join(tmp, `run-${name}`);
  cli(['extract', '--train', sharedPath('data/tiny/train.txt'), '--val', sharedPath('data/tiny/val.txt'), '--cache', cache,
    '--weights', weights, '--views', '0', '--preset', preset, '--engine', 'onnx', ...extract]);
  cli(['train', '--cache', cache, '--out', run, '--epochs', '8', '--views', 'clean']);
  return { cache, run };
}

/** predict's probabilities per image, as label -> prob (all classes: --top = class count). */
export function predictProbs(run: string, classes: number, images: string[], more: string[] = []): Map<string, number>[] {
  const r = cli(['predict', '--run', run, '--top', String(classes), '--json', ...more, ...images]);
  const out = JSON.parse(r.stdout) as { image: string; top: { label: string; prob: number }[] }[];
  return out.map((o) => new Map(o.top.map((t) => [t.label, t.prob])));
}

/** The uint8 eval pixels viewprobe computes for each photo, packed NHWC (`opts`: the preset's --size). */
export async function evalPixels(preset: PresetName, images: string[], opts: PresetOptions = {}): Promise<Uint8Array> {
  const p = getPreset(preset, opts);
  const per = p.inputSize * p.inputSize * 3;
  const out = new Uint8Array(images.length * per);
  for (const [i, f] of images.entries()) out.set(p.evalImage(await decodeImage(f)).data, i * per);
  return out;
}

export type Ort = typeof ortNode | typeof ortWeb;

/** All outputs of the model for these pixels ([n, size, size, 3] uint8). */
export async function runModelOutputs(ort: Ort, model: Uint8Array, pixels: Uint8Array, n: number, size: number): Promise<Record<string, Float32Array>> {
  const s = await (ort.InferenceSession as typeof ortNode.InferenceSession).create(model, { logSeverityLevel: 3 });
  try {
    const r = await s.run({ image: new (ort.Tensor as typeof ortNode.Tensor)('uint8', pixels, [n, size, size, 3]) });
    return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.data as Float32Array]));
  } finally {
    await s.release();
  }
}

export async function runModel(ort: Ort, model: Uint8Array, pixels: Uint8Array, n: number, size: number): Promise<Float32Array> {
  return (await runModelOutputs(ort, model, pixels, n, size)).probabilities!;
}

export function maxDiff(got: Float32Array, want: Map<string, number>[], classes: string[]): number {
  let m = 0;
  want.forEach((w, i) => classes.forEach((c, j) => { m = Math.max(m, Math.abs(got[i * classes.length + j]! - w.get(c)!)); }));
  return m;
}

/** Operator counts of the graph onnxruntime's CPU provider runs (all optimisations, written out). */
export async function optimizedOps(model: Uint8Array, file: string): Promise<Record<string, number>> {
  const onnxProto = (await import('onnx-proto')).default;
  const s = await ortNode.InferenceSession.create(model, {
    executionProviders: ['cpu'], intraOpNumThreads: 1, graphOptimizationLevel: 'all', optimizedModelFilePath: file, logSeverityLevel: 3,
  });
  await s.release();
  const ops: Record<string, number> = {};
  for (const n of onnxProto.onnx.ModelProto.decode(readFileSync(file)).graph!.node!) ops[n.opType!] = (ops[n.opType!] ?? 0) + 1;
  return ops;
}
