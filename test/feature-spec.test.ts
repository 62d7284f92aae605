// The pooled feature taps (--pool, --layers): parsing, layout, and the numbers of both engines against
// PyTorch (fixtures/pool-reference.json, made by fixtures/make_pool_reference.py) and against pooling
// done by hand from the stage maps the graph can expose.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { UserError } from '../src/errors.js';
import {
  DEFAULT_FEATURES, GEM_EPS, describeFeatures, featureDim, featureTaps, isDefaultFeatures, parseLayers, parsePool, stageChannels,
  type FeatureSpec,
} from '../src/feature-spec.js';
import { buildOnnxModel, createOnnxEngine } from '../src/backbone/onnx.js';
import { readSafetensors } from '../src/backbone/safetensors.js';
import { buildResNet, type FoldedResNet } from '../src/backbone/spec.js';
import { createTfjsEngine } from '../src/backbone/tfjs.js';
import type { Engine } from '../src/backbone/engine.js';
import { describeShared } from './helpers/shared.js';
import { PHOTOS, reference, referenceBatch, relErr, row, topK, weightsPath } from './backbone/reference.js';

describe('feature options', () => {
  it('parse --pool and --layers into one spelling each', () => {
    expect(parsePool('avg')).toEqual(['avg']);
    expect(parsePool('gem')).toEqual(['gem3']);
    expect(parsePool(' AVG , gem4 ')).toEqual(['avg', 'gem4']);
    expect(parsePool('gem3.0')).toEqual(['gem3']);
    expect(parseLayers('4')).toEqual([4]);
    expect(parseLayers('layer4,3')).toEqual([4, 3]);
  });

  it('refuse what they cannot mean, as user errors', () => {
    for (const bad of ['', 'max', 'gem0', 'gem99', 'avg,avg', 'gem,gem3']) expect(() => parsePool(bad), bad).toThrow(UserError);
    for (const bad of ['', '5', '0', '3.5', 'x', '4,4']) expect(() => parseLayers(bad), bad).toThrow(UserError);
    expect(() => parsePool('max')).toThrow(/--pool: unknown pooling "max"/);
  });

  it('lay the vector out layer by layer, pooling by pooling', () => {
    const spec: FeatureSpec = { pool: ['avg', 'gem3'], layers: [4, 3] };
    const ch = [256, 512, 1024, 2048];
    expect(featureTaps(spec, ch)).toEqual([
      { layer: 4, pool: 'avg', channels: 2048, offset: 0 },
      { layer: 4, pool: 'gem3', channels: 2048, offset: 2048 },
      { layer: 3, pool: 'avg', channels: 1024, offset: 4096 },
      { layer: 3, pool: 'gem3', channels: 1024, offset: 5120 },
    ]);
    expect(featureDim(spec, ch)).toBe(6144);
    expect(featureDim(DEFAULT_FEATURES, ch)).toBe(2048);
    expect(isDefaultFeatures({ pool: ['avg'], layers: [4] })).toBe(true);
    expect(isDefaultFeatures(spec)).toBe(false);
    expect(describeFeatures(spec)).toBe('avg+gem3 of layer4 and layer3');
  });
});

interface PoolRef {
  photos: Record<string, Record<string, { first64: number[]; norm: number; dim: number }>>;
}
const poolRef = (): PoolRef => JSON.parse(readFileSync(new URL('./backbone/fixtures/pool-reference.json', import.meta.url), 'utf8')) as PoolRef;

function norm(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! ** 2;
  return Math.sqrt(s);
}

describeShared('pooled taps equal PyTorch (resnet18, the exact reference inputs)', ['weights/reference.json', 'weights/resnet18-random.safetensors', ...PHOTOS.map((p) => `weights/input-resnet18-${p}.f32`)], () => {
  let net: FoldedResNet;
  const specs: [string, FeatureSpec, string[]][] = [
    ['avg+gem3 of layers 4 and 3', { pool: ['avg', 'gem3'], layers: [4, 3] }, ['avg@4', 'gem3@4', 'avg@3', 'gem3@3']],
    ['gem4 of layer 3', { pool: ['gem4'], layers: [3] }, ['gem4@3']],
  ];
  beforeAll(async () => {
    net = buildResNet(await readSafetensors(weightsPath('resnet18')));
  });

  for (const engineName of ['onnx', 'tfjs'] as const) {
    for (const [label, spec, tags] of specs) {
      it(`${engineName}: ${label}, each tap within 1e-4 (first 64 values and the norm); logits unchanged`, async () => {
        const engine: Engine = engineName === 'onnx'
          ? await createOnnxEngine(net, { device: 'cpu', threads: 1, features: spec, logits: true })
          : await createTfjsEngine(net, { backends: ['tfjs-node', 'wasm', 'cpu'], threads: 1, features: spec, logits: true });
        try {
          const taps = featureTaps(spec, stageChannels(net.blocks));
          expect(engine.dim).toBe(featureDim(spec, stageChannels(net.blocks)));
          const x = referenceBatch('resnet18');
          const f = await engine.embed(x, 3, 224, 224);
          const logits = await engine.logits!(x, 3, 224, 224);
          PHOTOS.forEach((photo, i) => {
            const r = row(f, i, engine.dim);
            taps.forEach((t, k) => {
              const ref = poolRef().photos[photo]![tags[k]!]!;
              const block = r.subarray(t.offset, t.offset + t.channels);
              expect(block.length).toBe(ref.dim);
              expect(relErr(block.subarray(0, 64), ref.first64), `${photo} ${tags[k]}`).toBeLessThan(1e-4);
              expect(Math.abs(norm(block) - ref.norm) / ref.norm, `${photo} ${tags[k]} norm`).toBeLessThan(1e-4);
            });
            // fc still reads the average pool of layer4, whatever the features are.
            expect(topK(row(logits, i, 1000), 5)).toEqual(reference().resnet18.images[photo]!.top5_indices);
          });
        } finally {
          await engine.dispose();
        }
      });
    }
  }

  it('onnx: the pooled taps equal pooling done by hand from the stage maps, at an odd input size', async () => {
    const spec: FeatureSpec = { pool: ['gem3', 'avg'], layers: [3, 4] };
    const model = buildOnnxModel(net, { features: spec, maps: [3, 4] });
    const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
    const [n, h, w] = [2, 97, 131];
    const x = new Float32Array(n * h * w * 3).map((_, i) => Math.sin(i * 0.37) * 2);
    const out = await session.run({ input: new ort.Tensor('float32', x, [n, h, w, 3]) });
    const feats = out.features!.data as Float32Array;
    const dim = featureDim(spec, stageChannels(net.blocks));
    expect(out.features!.dims).toEqual([n, dim]);
    for (const t of featureTaps(spec, stageChannels(net.blocks))) {
      const map = out[`layer${t.layer}.map`]!;
      const [, c, mh, mw] = map.dims as number[];
      const data = map.data as Float32Array;
      for (let i = 0; i < n; i++) {
        const want = new Float64Array(c!);
        for (let ch = 0; ch < c!; ch++) {
          let s = 0;
          for (let j = 0; j < mh! * mw!; j++) {
            const v = data[(i * c! + ch) * mh! * mw! + j]!;
            s += t.pool === 'avg' ? v : Math.max(v, GEM_EPS) ** 3;
          }
          want[ch] = t.pool === 'avg' ? s / (mh! * mw!) : (s / (mh! * mw!)) ** (1 / 3);
        }
        const got = feats.subarray(i * dim + t.offset, i * dim + t.offset + c!);
        expect(relErr(got, want), `image ${i} ${t.pool}@${t.layer}`).toBeLessThan(1e-5);
      }
    }
    await session.release();
  });

  it('the default spec is the plain graph: one average pool of layer4 into features, nothing else', () => {
    const g = onnxProto.onnx.ModelProto.decode(buildOnnxModel(net, { features: DEFAULT_FEATURES })).graph!;
    const ops = g.node!.map((n) => n.opType);
    expect(ops.filter((o) => o === 'GlobalAveragePool').length).toBe(1);
    expect(ops.filter((o) => ['Concat', 'Pow', 'Clip'].includes(o!))).toEqual([]);
    expect(g.output!.map((o) => o.name)).toEqual(['features']);
    expect(Number(g.output![0]!.type!.tensorType!.shape!.dim![1]!.dimValue)).toBe(512);
  });
});
