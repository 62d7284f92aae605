import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSafetensors } from '../../src/backbone/safetensors.js';
import { buildResNet, type FoldedResNet } from '../../src/backbone/spec.js';
import { createTfjsEngine, type TfjsEngine } from '../../src/backbone/tfjs.js';
import { loadTf } from '../../src/tfjs.js';
import { describeShared } from '../helpers/shared.js';
import { MODELS, REF_FILES, expectReferenceOutputs, weightsPath } from './reference.js';

// The WebAssembly backend is what loads here (the native bindings are optional installs); it runs
// ResNet18 at ~10 img/s, so these tests stay at a handful of images.
describeShared('tfjs engine equals PyTorch on the reference inputs', REF_FILES, () => {
  for (const model of MODELS) {
    describe(model, () => {
      let engine: TfjsEngine;
      let net: FoldedResNet;
      beforeAll(async () => {
        net = buildResNet(await readSafetensors(weightsPath(model)));
        engine = await createTfjsEngine(net, { backends: ['tfjs-node', 'wasm', 'cpu'], threads: 2, logits: true });
      });
      afterAll(() => engine?.dispose());

      it('features within 1e-4 relative error and the same logits top-5, batch of 3', async () => {
        await expectReferenceOutputs(engine, model, net.dim);
      });
    });
  }
});

describeShared('tfjs engine frees every per-batch tensor', ['weights/resnet18-random.safetensors'], () => {
  it('numTensors is the same before and after 3 batches, and dispose() frees the weights', async () => {
    const net = buildResNet(await readSafetensors(weightsPath('resnet18')));
    const { tf } = await loadTf(['tfjs-node', 'wasm', 'cpu'], 2);
    const before = tf.memory().numTensors;
    const engine = await createTfjsEngine(net, { backends: ['tfjs-node', 'wasm', 'cpu'], threads: 2, logits: true });
    const withWeights = tf.memory().numTensors;
    expect(withWeights).toBeGreaterThan(before);
    const input = new Float32Array(2 * 64 * 64 * 3).map((_, i) => Math.sin(i));
    for (let b = 0; b < 3; b++) {
      await engine.embed(input, 2, 64, 64);
      await engine.logits!(input, 2, 64, 64);
      expect(tf.memory().numTensors, `after batch ${b + 1}`).toBe(withWeights);
    }
    await engine.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
