import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOnnxEngine } from '../../src/backbone/onnx.js';
import { readSafetensors } from '../../src/backbone/safetensors.js';
import { buildResNet, type FoldedResNet } from '../../src/backbone/spec.js';
import { createTfjsEngine } from '../../src/backbone/tfjs.js';
import type { Engine } from '../../src/backbone/engine.js';
import { describeShared } from '../helpers/shared.js';
import { relErr, row, weightsPath } from './reference.js';

/** Seeded values spread like normalised pixels (roughly −2..2.6), so the test is the same on every run. */
function randomBatch(n: number, h: number, w: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n * h * w * 3);
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * 4.6 - 2;
  }
  return out;
}

describeShared('the onnx and tfjs engines agree', ['weights/resnet18-random.safetensors', 'weights/resnet50-keras.safetensors'], () => {
  for (const model of ['resnet18', 'resnet50-keras'] as const) {
    describe(model, () => {
      let net: FoldedResNet;
      let onnx: Engine;
      let tfjs: Engine;
      beforeAll(async () => {
        net = buildResNet(await readSafetensors(weightsPath(model)));
        onnx = await createOnnxEngine(net, { device: 'cpu', threads: 2 });
        tfjs = await createTfjsEngine(net, { backends: ['tfjs-node', 'wasm', 'cpu'], threads: 2 });
      });
      afterAll(async () => {
        await onnx?.dispose();
        await tfjs?.dispose();
      });

      it('within 1e-4 relative error on a random batch of 4 at 224x224', async () => {
        // caffe inputs are pixel-scaled (x − mean, no std): scale the random batch to match.
        const scale = net.variant.preprocess.kind === 'caffe' ? 60 : 1;
        const x = randomBatch(4, 224, 224, 42).map((v) => v * scale);
        const a = await onnx.embed(x, 4, 224, 224);
        const b = await tfjs.embed(x, 4, 224, 224);
        expect(a.length).toBe(4 * net.dim);
        for (let i = 0; i < 4; i++) expect(relErr(row(a, i, net.dim), row(b, i, net.dim)), `image ${i}`).toBeLessThan(1e-4);
        // The images differ, so must their features (a constant output would also "agree").
        expect(relErr(row(a, 0, net.dim), row(a, 1, net.dim))).toBeGreaterThan(1e-3);
      });

      it('also at a size that is not 224 and not a multiple of 32 (odd feature maps test the padding)', async () => {
        const scale = net.variant.preprocess.kind === 'caffe' ? 60 : 1;
        const x = randomBatch(2, 97, 131, 7).map((v) => v * scale);
        const a = await onnx.embed(x, 2, 97, 131);
        const b = await tfjs.embed(x, 2, 97, 131);
        for (let i = 0; i < 2; i++) expect(relErr(row(a, i, net.dim), row(b, i, net.dim)), `image ${i}`).toBeLessThan(1e-4);
      });
    });
  }
});
