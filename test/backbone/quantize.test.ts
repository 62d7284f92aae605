import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { buildOnnxProto } from '../../src/backbone/onnx-graph.js';
import { createOnnxEngine } from '../../src/backbone/onnx.js';
import {
  WEIGHT_QMAX, activationPoints, buildCalibrationModel, buildQdqModel, quantizeWeights, uint8Params,
} from '../../src/backbone/quantize.js';
import { readSafetensors } from '../../src/backbone/safetensors.js';
import { buildResNet, type FoldedResNet } from '../../src/backbone/spec.js';
import { computeCalibration } from '../../src/extract/calibrate.js';
import { makeNormLut } from '../../src/image/normalize.js';
import { getPreset } from '../../src/image/presets.js';
import { loadDataset } from '../../src/data/dataset.js';
import { hashBytes } from '../../src/data/hash.js';
import type { CalibrationFile } from '../../src/cache/calibration.js';
import { describeShared, sharedPath } from '../helpers/shared.js';
import { MODELS, PHOTOS, REF_FILES, reference, referenceBatch, weightsPath } from './reference.js';

describe('quantisation arithmetic', () => {
  it('weights: per output channel, symmetric, |q| <= 63, each within half a step of the float', () => {
    const w = Float32Array.from([32 / 63, -1, 16 / 63, 8 / 63, /* channel 1 */ 0.003, 0, -0.001, 0.002, /* channel 2 */ 0, 0, 0, 0]);
    const { q, scale } = quantizeWeights(w, 3);
    expect(Array.from(scale)).toEqual([Math.fround(1 / WEIGHT_QMAX), Math.fround(0.003 / WEIGHT_QMAX), 1]);
    expect(Array.from(q.subarray(0, 4))).toEqual([32, -63, 16, 8]);
    expect(q[4]).toBe(63);
    for (let i = 0; i < 8; i++) expect(Math.abs(q[i]! * scale[Math.floor(i / 4)]! - w[i]!)).toBeLessThanOrEqual(scale[Math.floor(i / 4)]! / 2 + 1e-9);
    expect(Array.from(q.subarray(8))).toEqual([0, 0, 0, 0]);
  });

  it('activations: uint8, zero exact, a ReLU output starts at 0 with zero point 0', () => {
    expect(uint8Params([0, 25.5], true)).toEqual({ scale: Math.fround(0.1), zeroPoint: 0 });
    expect(uint8Params([-3, 25.5], true)).toEqual({ scale: Math.fround(0.1), zeroPoint: 0 });
    const p = uint8Params([-1, 3], false);
    expect(p.scale).toBe(Math.fround(4 / 255));
    expect(p.zeroPoint).toBe(64);
    expect(uint8Params([1, 3], false).zeroPoint).toBe(0); // the range is widened to hold 0
    expect(uint8Params([0, 0], true)).toEqual({ scale: 1, zeroPoint: 0 });
  });
});

const TINY = 'data/tiny/train.txt';

describeShared('int8 graph (QDQ) against fp32 and PyTorch', [...REF_FILES, TINY], () => {
  const nets = {} as Record<(typeof MODELS)[number], FoldedResNet>;
  const calib = {} as Record<(typeof MODELS)[number], CalibrationFile>;
  beforeAll(async () => {
    // The reference inputs are 224x224: calibrate on the standard preset's 224 eval views of the tiny set.
    const preset = getPreset('standard');
    const items = (await loadDataset(sharedPath(TINY))).items;
    for (const m of MODELS) {
      nets[m] = buildResNet(await readSafetensors(weightsPath(m)));
      calib[m] = await computeCalibration(nets[m], items, {
        preset, norm: makeNormLut(nets[m].variant.preprocess), weightsSha256: hashBytes(readFileSync(weightsPath(m))), quiet: true,
      });
    }
  });

  it('the quantised points: input, every Conv (after its ReLU), the MaxPool (with its input\'s range), every residual Add', () => {
    const points = activationPoints(buildOnnxProto(nets.resnet18));
    // resnet18: input, stem ReLU, max-pool; per block conv1 ReLU, conv2, add+ReLU (8 blocks); 3 downsample convs.
    expect(points.length).toBe(3 + 8 * 3 + 3);
    expect(points.slice(0, 4)).toEqual([
      { name: 'nchw', nonNegative: false },
      { name: 'conv1.relu', nonNegative: true },
      { name: 'maxpool', nonNegative: true, sameAs: 'conv1.relu' },
      { name: 'layer1.0.conv1.relu', nonNegative: true },
    ]);
    expect(points.map((p) => p.name)).toContain('layer2.0.downsample.0.out');
    expect(points.map((p) => p.name)).toContain('layer4.1.out');
    expect(activationPoints(buildOnnxProto(nets['resnet50-keras'])).length).toBe(3 + 16 * 4 + 4);
    const cal = onnxProto.onnx.ModelProto.decode(buildCalibrationModel(nets.resnet18).model);
    expect(cal.graph!.output!.length).toBe(1 + points.length - 1);
  });

  it('onnxruntime fuses it completely: QLinearConv, QLinearAdd and a uint8 MaxPool, no float Conv (optimised model)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vp-qdq-'));
    try {
      for (const m of MODELS) {
        const file = join(dir, `${m}.onnx`);
        const s = await ort.InferenceSession.create(buildQdqModel(nets[m], calib[m].ranges), {
          executionProviders: ['cpu'], intraOpNumThreads: 1, graphOptimizationLevel: 'all', optimizedModelFilePath: file, logSeverityLevel: 3,
        });
        await s.release();
        const ops: Record<string, number> = {};
        for (const n of onnxProto.onnx.ModelProto.decode(readFileSync(file)).graph!.node!) ops[n.opType!] = (ops[n.opType!] ?? 0) + 1;
        const [convs, adds] = m === 'resnet18' ? [20, 8] : [53, 16];
        expect(ops, m).toMatchObject({ QLinearConv: convs, QLinearAdd: adds, NhwcMaxPool: 1 });
        expect(ops.Conv, m).toBeUndefined();
        expect(ops.Add, m).toBeUndefined();
        // Only the graph's input is quantised and the last block's output dequantised.
        expect([ops.QuantizeLinear, ops.DequantizeLinear], m).toEqual([1, 1]);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses ranges made for another network', () => {
    expect(() => buildQdqModel(nets['resnet50-keras'], calib.resnet18.ranges)).toThrow(/no range for "layer1\.0\.conv2\.relu" \(was it made for another network\?\)/);
  });

  // Bounds from measurement. These photos here: resnet50-keras 0.9964, 0.9979, 0.9981; resnet18-random
  // 0.9995-0.9996. food101-10 (bench/int8.mjs): resnet50-keras median 0.997, min 0.990; resnet18-random
  // median 0.9996, min 0.9994. The goal is a median >= 0.995.
  const BOUND = { 'resnet50-keras': { median: 0.995, min: 0.993 }, resnet18: { median: 0.999, min: 0.998 } } as const;
  for (const m of MODELS) {
    it(`${m}: int8 features of the reference photos stay close to PyTorch's fp32 features (cosine)`, async () => {
      const engine = await createOnnxEngine(nets[m], { device: 'cpu', threads: 2, model: buildQdqModel(nets[m], calib[m].ranges) });
      try {
        const dim = nets[m].dim;
        const feats = await engine.embed(referenceBatch(m), PHOTOS.length, 224, 224);
        const cos = PHOTOS.map((p, i) => {
          const ref = reference()[m].images[p]!.features;
          let ab = 0, aa = 0, bb = 0;
          for (let j = 0; j < dim; j++) {
            const a = feats[i * dim + j]!, b = ref[j]!;
            ab += a * b; aa += a * a; bb += b * b;
          }
          return ab / Math.sqrt(aa * bb);
        }).sort();
        console.log(`${m} int8 cosine to PyTorch fp32 on the reference photos: ${cos.map((c) => c.toFixed(4)).join(', ')}`);
        expect(cos[1]).toBeGreaterThanOrEqual(BOUND[m].median);
        expect(cos[0]).toBeGreaterThanOrEqual(BOUND[m].min);
        expect(cos[2]).toBeLessThan(1); // it is quantised: not the fp32 graph by mistake
      } finally {
        await engine.dispose();
      }
    });
  }
});

