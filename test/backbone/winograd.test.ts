import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { DataType, OnnxGraph, buildOnnxModel } from '../../src/backbone/onnx-graph.js';
import { createOnnxEngine } from '../../src/backbone/onnx.js';
import { readSafetensors } from '../../src/backbone/safetensors.js';
import { buildResNet, type FoldedConv, type FoldedResNet } from '../../src/backbone/spec.js';
import { appendWinogradConv, tileGeometry, useWinograd, winogradBlock } from '../../src/backbone/winograd.js';
import type { Engine } from '../../src/backbone/engine.js';
import { describeShared } from '../helpers/shared.js';
import { relErr, weightsPath } from './reference.js';

const session = (bytes: Uint8Array) => ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, logSeverityLevel: 3 });

function randomConv(inC: number, outC: number, seed: number): FoldedConv {
  let s = seed;
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  return {
    conv: 'c', bn: 'bn', inC, outC, k: 3, stride: 1, pad: 1,
    weight: Float32Array.from({ length: outC * inC * 9 }, () => rnd() * 0.1),
    bias: Float32Array.from({ length: outC }, () => rnd()),
  };
}

describe('Winograd F(2x2,3x3) convolution', () => {
  // onnxruntime's own Conv is the reference; inputs NHWC for the Winograd graph, NCHW for Conv.
  async function compare(c: FoldedConv, wino: ort.InferenceSession, y: string, n: number, h: number, w: number): Promise<number> {
    const direct = new OnnxGraph();
    direct.input('x', DataType.FLOAT, [n, c.inC, h, w]);
    direct.output(direct.node('Conv', ['x', direct.init('w', [c.outC, c.inC, 3, 3], c.weight), direct.init('b', [c.outC], c.bias)], ['y'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }), DataType.FLOAT, [n, c.outC, h, w]);
    const x = Float32Array.from({ length: n * c.inC * h * w }, (_, i) => Math.sin(i * 0.731));
    const nhwc = new Float32Array(x.length);
    for (let b = 0; b < n; b++) for (let ch = 0; ch < c.inC; ch++) for (let p = 0; p < h * w; p++) nhwc[(b * h * w + p) * c.inC + ch] = x[(b * c.inC + ch) * h * w + p]!;
    const want = (await (await session(direct.encode({ name: 'd' }))).run({ x: new ort.Tensor('float32', x, [n, c.inC, h, w]) })).y!.data as Float32Array;
    const got = (await wino.run({ x: new ort.Tensor('float32', nhwc, [n, h, w, c.inC]) }))[y]!;
    expect(got.dims).toEqual([n, h, w, c.outC]);
    const back = new Float32Array(want.length);
    const g = got.data as Float32Array;
    for (let b = 0; b < n; b++) for (let ch = 0; ch < c.outC; ch++) for (let p = 0; p < h * w; p++) back[(b * c.outC + ch) * h * w + p] = g[(b * h * w + p) * c.outC + ch]!;
    return relErr(back, want);
  }

  it('equals the direct convolution on even, odd and non-square maps, one graph for every size', async () => {
    const c = randomConv(8, 16, 7);
    const g = new OnnxGraph();
    g.input('x', DataType.FLOAT, ['N', 'H', 'W', c.inC]);
    const y = appendWinogradConv(g, 'x', c, tileGeometry(g, 'x', 'geo'));
    g.output(y, DataType.FLOAT, ['N', 'H', 'W', c.outC]);
    const wino = await session(g.encode({ name: 'w' }));
    for (const [n, h, w] of [[2, 8, 8], [1, 7, 7], [3, 9, 6], [1, 1, 1], [2, 2, 5]] as const) {
      expect(await compare(c, wino, y, n, h, w), `${n}x${h}x${w}`).toBeLessThan(1e-6);
    }
  });

  it('only 3x3 stride-1 convolutions with enough channels, and only in basic blocks, take it', () => {
    expect(useWinograd(randomConv(256, 256, 1))).toBe(true);
    expect(useWinograd(randomConv(128, 128, 1))).toBe(false);
    expect(useWinograd({ ...randomConv(256, 256, 1), stride: 2 })).toBe(false);
    const big = randomConv(256, 256, 1);
    expect(winogradBlock({ name: 'layer3.1', convs: [big, big] })).toBe(true);
    expect(winogradBlock({ name: 'layer3.0', convs: [{ ...big, stride: 2 }, big] })).toBe(true);
    const pointwise = { ...big, k: 1, pad: 0 };
    expect(winogradBlock({ name: 'layer3.1', convs: [pointwise, big, pointwise] })).toBe(false);
  });
});

describeShared('the CPU engine runs resnet18 with Winograd layer3 and layer4', ['weights/resnet18-random.safetensors', 'weights/resnet50-keras.safetensors'], () => {
  let net: FoldedResNet;
  let engine: Engine;
  beforeAll(async () => {
    net = buildResNet(await readSafetensors(weightsPath('resnet18')));
    engine = await createOnnxEngine(net, { device: 'cpu', threads: 1, workers: 1 });
  });
  afterAll(() => engine?.dispose());

  const ops = (bytes: Uint8Array) => onnxProto.onnx.ModelProto.decode(bytes).graph!.node!.map((n) => n.opType!);

  it('the graph: 16 products for each of the six deep 3x3 convolutions, 14 convolutions left direct', () => {
    const o = ops(buildOnnxModel(net, { winograd: true }));
    expect(o.filter((t) => t === 'MatMul')).toHaveLength(6 * 16);
    expect(o.filter((t) => t === 'Conv')).toHaveLength(20 - 6);
    expect(ops(buildOnnxModel(net)).filter((t) => t === 'MatMul')).toHaveLength(0);
  });

  it("its features are the Winograd graph's (the engine's default) and within 1e-5 of the direct graph's, at odd and non-square sizes", async () => {
    for (const [n, h, w] of [[2, 224, 224], [1, 225, 190], [2, 244, 244]] as const) {
      const x = Float32Array.from({ length: n * h * w * 3 }, (_, i) => Math.sin(i * 0.37) * 2);
      const got = await engine.embed(x, n, h, w);
      const run = async (winograd: boolean) => (await (await session(buildOnnxModel(net, { winograd }))).run({ input: new ort.Tensor('float32', x, [n, h, w, 3]) })).features!.data as Float32Array;
      const [wino, direct] = [await run(true), await run(false)];
      expect(got).toEqual(wino);
      const err = relErr(got, direct);
      expect(err, `${n}x${h}x${w}`).toBeLessThan(1e-5);
      expect(err, 'the engine ran the direct graph').toBeGreaterThan(0);
    }
  });

  it('resnet50 (bottleneck blocks) keeps the direct graph', async () => {
    const r50 = buildResNet(await readSafetensors(weightsPath('resnet50-keras')));
    expect(ops(buildOnnxModel(r50, { winograd: true })).filter((t) => t === 'MatMul')).toHaveLength(0);
  });
});
