// The exported graph's parts: normalisation (bit for bit the engine's lookup tables, in onnxruntime
// node and web), the backbone against PyTorch's reference features from uint8 pixels, the head's
// feature transform against plain arithmetic, and the dynamic batch.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import * as ortNode from 'onnxruntime-node';
import * as ortWeb from 'onnxruntime-web';
import type { Preprocess } from '../../src/image/normalize.js';
import { DataType, OnnxGraph } from '../../src/backbone/onnx-graph.js';
import { DEFAULT_FEATURES } from '../../src/feature-spec.js';
import { readSafetensors } from '../../src/backbone/safetensors.js';
import { buildResNet, type FoldedResNet } from '../../src/backbone/spec.js';
import { CAFFE_PREPROCESS, IMAGENET_PREPROCESS, makeNormLut } from '../../src/image/normalize.js';
import { appendNormalize, buildExportModel, type ExportHead } from '../../src/export/graph.js';
import type { HeadTransform } from '../../src/head/head.js';
import { describeShared, sharedPath } from '../helpers/shared.js';
import { runModelOutputs, type Ort } from './helpers.js';
import { MODELS, PHOTOS, REF_FILES, reference, relErr, row, weightsPath } from '../backbone/reference.js';

ortWeb.env.wasm.numThreads = 1;

const run = runModelOutputs;

/** Deterministic pseudo-random floats in [-b, b). */
function noise(n: number, b: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32 * 2 - 1) * b;
  });
}

function randomHead(classes: number, dim: number, transform?: HeadTransform): ExportHead {
  return { classes, dim, weight: noise(classes * dim, 0.05, 7), bias: noise(classes, 0.05, 8), ...(transform ? { transform } : {}) };
}

function exportModel(net: FoldedResNet, head: ExportHead, inputSize: number): Uint8Array {
  return buildExportModel({ net, head, inputSize, features: DEFAULT_FEATURES, metadata: [['classes', '[]']], producerVersion: 'test' });
}

describe('normalisation inside the graph', () => {
  const cases: [string, Preprocess][] = [['imagenet', IMAGENET_PREPROCESS], ['caffe (BGR)', CAFFE_PREPROCESS]];
  for (const [name, p] of cases) {
    it(`${name}: every uint8 value of every channel gives makeNormLut's float32 exactly, in onnxruntime node and web`, async () => {
      const g = new OnnxGraph();
      g.input('image', DataType.UINT8, ['N', 16, 16, 3]);
      g.output(appendNormalize(g, 'image', p), DataType.FLOAT, ['N', 3, 16, 16]);
      const model = g.encode({ name: 'norm' });
      // 256 pixels; the channels hold different values so that a channel swap shows
      const img = new Uint8Array(16 * 16 * 3);
      for (let i = 0; i < 256; i++) { img[i * 3] = i; img[i * 3 + 1] = (i * 7 + 3) & 255; img[i * 3 + 2] = 255 - i; }
      const { lut, srcChannel } = makeNormLut(p);
      for (const ort of [ortNode, ortWeb] as Ort[]) {
        const out = (await run(ort, model, img, 1, 16)).nchw!;
        let bad = 0;
        for (let c = 0; c < 3; c++) {
          for (let i = 0; i < 256; i++) if (out[c * 256 + i] !== lut[c * 256 + img[i * 3 + srcChannel[c]]!]) bad++;
        }
        expect(bad).toBe(0);
      }
    });
  }
});

describeShared('the exported graph', REF_FILES, () => {
  const nets = {} as Record<(typeof MODELS)[number], FoldedResNet>;
  beforeAll(async () => {
    for (const m of MODELS) nets[m] = buildResNet(await readSafetensors(weightsPath(m)));
  });

  /** PyTorch's exact inputs back to the uint8 crops they came from (checked: they normalise back to the same floats). */
  function referencePixels(model: (typeof MODELS)[number]): Uint8Array {
    const p = nets[model].variant.preprocess;
    const { lut, srcChannel } = makeNormLut(p);
    const per = 224 * 224 * 3;
    const out = new Uint8Array(PHOTOS.length * per);
    PHOTOS.forEach((photo, i) => {
      const buf = readFileSync(sharedPath('weights', reference()[model].images[photo]!.input_file));
      const x = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
      for (let j = 0; j < 224 * 224; j++) {
        for (let c = 0; c < 3; c++) {
          const v = Math.round((x[j * 3 + c]! * p.std[c]! + p.mean[c]!) / p.scale);
          out[i * per + j * 3 + srcChannel[c]] = v;
          if (lut[c * 256 + v] !== x[j * 3 + c]) throw new Error(`${model} ${photo}: pixel ${j} channel ${c} does not invert exactly`);
        }
      }
    });
    return out;
  }

  for (const model of MODELS) {
    it(`${model}: uint8 crops of the reference photos give PyTorch's features (1e-4), and a batch of 3 equals each alone`, async () => {
      const net = nets[model];
      const bytes = exportModel(net, randomHead(5, net.dim), 224);
      const px = referencePixels(model);
      const all = await run(ortNode, bytes, px, 3, 224);
      PHOTOS.forEach((p, i) => {
        expect(relErr(row(all.features!, i, net.dim), reference()[model].images[p]!.features), `${p} features`).toBeLessThan(1e-4);
      });
      const per = 224 * 224 * 3;
      const one = await run(ortNode, bytes, px.subarray(per, 2 * per), 1, 224);
      expect(relErr(one.probabilities!, row(all.probabilities!, 1, 5))).toBeLessThan(1e-6);
    });
  }

  it('the head\'s transform (signed power, L2) in the graph equals the arithmetic on the features', async () => {
    const net = nets.resnet18;
    const px = referencePixels('resnet18');
    for (const t of [{ power: 0.5, l2: true }, { power: 2 }, { l2: true }] as HeadTransform[]) {
      const head = randomHead(4, net.dim, t);
      const r = await run(ortNode, exportModel(net, head, 224), px, 3, 224);
      for (let i = 0; i < 3; i++) {
        // float64 reference from the graph's own features: x -> sign(x)|x|^p -> x/||x|| -> Wx + b -> softmax
        let x = Array.from(row(r.features!, i, net.dim));
        if (t.power !== undefined) x = x.map((v) => Math.sign(v) * Math.abs(v) ** t.power!);
        if (t.l2) { const n = Math.hypot(...x); x = x.map((v) => v / n); }
        const z = Array.from({ length: 4 }, (_, c) => x.reduce((s, v, k) => s + v * head.weight[c * net.dim + k]!, head.bias[c]!));
        const m = Math.max(...z);
        const e = z.map((v) => Math.exp(v - m));
        const sum = e.reduce((s, v) => s + v, 0);
        const probs = row(r.probabilities!, i, 4);
        const logits = row(r.logits!, i, 4);
        for (let c = 0; c < 4; c++) {
          expect(Math.abs(probs[c]! - e[c]! / sum), `${JSON.stringify(t)} image ${i} class ${c}`).toBeLessThan(1e-6);
          expect(Math.abs(logits[c]! - z[c]!)).toBeLessThan(1e-4 * Math.max(1, Math.abs(z[c]!)));
        }
      }
    }
  });
});
