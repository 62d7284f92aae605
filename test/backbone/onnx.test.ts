import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import onnxProto from 'onnx-proto';
import { buildOnnxModel, createOnnxEngine } from '../../src/backbone/onnx.js';
import { readSafetensors } from '../../src/backbone/safetensors.js';
import { buildResNet, type FoldedResNet } from '../../src/backbone/spec.js';
import type { Engine } from '../../src/backbone/engine.js';
import { describeShared } from '../helpers/shared.js';
import { MODELS, REF_FILES, expectReferenceOutputs, referenceBatch, relErr, row, weightsPath } from './reference.js';

describeShared('onnx engine equals PyTorch on the reference inputs', REF_FILES, () => {
  for (const model of MODELS) describe(model, () => describeModel(model));
});

function describeModel(model: (typeof MODELS)[number]) {
  let engine: Engine;
  let net: FoldedResNet;
  beforeAll(async () => {
    net = buildResNet(await readSafetensors(weightsPath(model)));
    engine = await createOnnxEngine(net, { device: 'cpu', threads: 2, logits: true });
  });
  afterAll(() => engine?.dispose());

  it(`${model}: the graph has the spec's shape (NHWC input with a dynamic batch, features + logits)`, () => {
    const m = onnxProto.onnx.ModelProto.decode(buildOnnxModel(net, { logits: true }));
    const g = m.graph!;
    const dims = g.input![0]!.type!.tensorType!.shape!.dim!.map((d) => d.dimParam || Number(d.dimValue));
    expect(dims).toEqual(['N', 'H', 'W', 3]);
    expect(g.output!.map((o) => o.name)).toEqual(['features', 'logits']);
    const convs = g.node!.filter((n) => n.opType === 'Conv');
    expect(convs.length).toBe(model === 'resnet18' ? 20 : 53);
    expect(convs[0]!.attribute!.find((a) => a.name === 'pads')!.ints!.map(Number)).toEqual([3, 3, 3, 3]);
    expect(g.node!.find((n) => n.opType === 'MaxPool')!.attribute!.find((a) => a.name === 'pads')!.ints!.map(Number)).toEqual([1, 1, 1, 1]);
  });

  it(`${model}: features within 1e-4 relative error and the same logits top-5, batch of 3`, async () => {
    await expectReferenceOutputs(engine, model, net.dim);
  });

  it(`${model}: a batch of one gives the same features as inside a batch`, async () => {
    const per = 224 * 224 * 3;
    const input = referenceBatch(model);
    const all = await engine.embed(input, 3, 224, 224);
    const one = await engine.embed(input.slice(2 * per, 3 * per), 1, 224, 224);
    expect(relErr(one, row(all, 2, net.dim))).toBeLessThan(1e-6);
  });
}

describeShared('onnx engine: sessions in worker threads', ['weights/resnet18-random.safetensors'], () => {
  let net: FoldedResNet;
  let engine: Engine;
  beforeAll(async () => {
    net = buildResNet(await readSafetensors(weightsPath('resnet18')));
    engine = await createOnnxEngine(net, { device: 'cpu', threads: 2 });
  });
  afterAll(() => engine?.dispose());

  it('runs one single-threaded session per thread, two batches queued in each', () => {
    expect(engine.threads).toBe(2);
    expect(engine.parallel).toBe(4);
    expect(engine.allocInput(12).buffer).toBeInstanceOf(SharedArrayBuffer);
  });

  it('many batches at once, shared or plain inputs, each answer goes to its own call', async () => {
    const per = 48 * 40 * 3;
    const inputs = Array.from({ length: 7 }, (_, i) => {
      const x = i % 2 ? engine.allocInput(2 * per) : new Float32Array(2 * per);
      for (let j = 0; j < x.length; j++) x[j] = Math.sin(j * 0.01 * (i + 1));
      return x;
    });
    const together = await Promise.all(inputs.map((x) => engine.embed(x, 2, 48, 40)));
    for (let i = 0; i < inputs.length; i++) {
      const alone = await engine.embed(inputs[i]!, 2, 48, 40);
      expect(relErr(together[i]!, alone), `batch ${i}`).toBeLessThan(1e-6);
    }
    expect(relErr(together[0]!, together[1]!)).toBeGreaterThan(1e-3);
  });

  it('a failed run rejects that call only; the engine goes on, and after dispose every call is refused', async () => {
    const x = new Float32Array(2 * 8 * 8 * 3);
    await expect(engine.embed(x, 2, 64, 64)).rejects.toThrow(/input holds 384 floats/);
    // An empty image: onnxruntime's own error comes back from the worker.
    await expect(engine.embed(new Float32Array(0), 1, 0, 0)).rejects.toThrow(/Invalid input shape/);
    expect((await engine.embed(x, 2, 8, 8)).length).toBe(2 * 512);
    const e2 = await createOnnxEngine(net, { device: 'cpu', threads: 1 });
    expect(e2.parallel).toBe(2);
    // Past 4 cores the sessions take several threads each instead of multiplying (memory).
    const e6 = await createOnnxEngine(net, { device: 'cpu', threads: 6 });
    expect([e6.threads, e6.parallel]).toEqual([6, 4 * 2]);
    await e6.dispose();
    await e2.dispose();
    await expect(e2.embed(x, 2, 8, 8)).rejects.toThrow(/disposed/);
  });
});
