import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { DataType, OnnxGraph, buildOnnxModel } from '../../src/backbone/onnx-graph.js';
import { createOnnxEngine } from '../../src/backbone/onnx.js';
import { buildResNet, type FoldedConv, type FoldedResNet } from '../../src/backbone/spec.js';
import { appendWinogradConv, tileGeometry, useWinograd, winogradBlock } from '../../src/backbone/winograd.js';
import type { Engine } from '../../src/backbone/engine.js';
import { synthetic, tv } from '../helpers/synthetic-net.js';
import { relErr } from './reference.js';

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

describe('the CPU engine runs resnet18 with Winograd layer3 and layer4 (synthetic weights)', () => {
  let net: FoldedResNet;
  let engine: Engine;
  beforeAll(async () => {
    net = buildResNet(synthetic(tv('resnet18')));
    engine = await createOnnxEngine(net, { device: 'cpu', threads: 1, workers: 1 });
  });
  afterAll(() => engine?.dispose());

  const ops = (bytes: Uint8Array) => onnxProto.onnx.ModelProto.decode(bytes).graph!.node!.map((n) => n.opType!);
  const input = (n: number, h: number, w: number) => Float32Array.from({ length: n * h * w * 3 }, (_, i) => Math.sin(i * 0.37) * 2);
  const run = async (bytes: Uint8Array, x: Float32Array, dims: number[]) =>
    (await (await session(bytes)).run({ input: new ort.Tensor('float32', x, dims) }));

  it('the graph: 16 products for each of the six deep 3x3 convolutions, 14 convolutions left direct', () => {
    const o = ops(buildOnnxModel(net, { winograd: true }));
    expect(o.filter((t) => t === 'MatMul')).toHaveLength(6 * 16);
    expect(o.filter((t) => t === 'Conv')).toHaveLength(20 - 6);
    expect(ops(buildOnnxModel(net)).filter((t) => t === 'MatMul')).toHaveLength(0);
  });

  it("its features are the Winograd graph's (the engine's default) and within 1e-5 of the direct graph's, at odd and non-square sizes", async () => {
    for (const [n, h, w] of [[2, 224, 224], [1, 225, 190], [1, 64, 40]] as const) {
      const x = input(n, h, w);
      const got = await engine.embed(x, n, h, w);
      const wino = (await run(buildOnnxModel(net, { winograd: true }), x, [n, h, w, 3])).features!.data as Float32Array;
      const direct = (await run(buildOnnxModel(net), x, [n, h, w, 3])).features!.data as Float32Array;
      expect(got).toEqual(wino);
      const err = relErr(got, direct);
      expect(err, `${n}x${h}x${w}`).toBeLessThan(1e-5);
      expect(err, 'the engine ran the direct graph').toBeGreaterThan(0);
    }
  });

  it('GeM and average pools of layer4 and layer3, the stage maps and the logits read NCHW stage outputs, as in the direct graph', async () => {
    const fc = buildResNet(synthetic(tv('resnet18'), { fc: 10 }));
    const opts = { features: { layers: [4, 3], pool: ['gem3', 'avg'] }, maps: [3, 4], logits: true };
    const x = input(2, 97, 131);
    const wino = await run(buildOnnxModel(fc, { ...opts, winograd: true }), x, [2, 97, 131, 3]);
    const direct = await run(buildOnnxModel(fc, opts), x, [2, 97, 131, 3]);
    for (const out of ['features', 'layer3.map', 'layer4.map', 'logits']) {
      expect(wino[out]!.dims, out).toEqual(direct[out]!.dims);
      expect(relErr(wino[out]!.data as Float32Array, direct[out]!.data as Float32Array), out).toBeLessThan(1e-5);
    }
    expect(wino['layer4.map']!.dims).toEqual([2, 512, 4, 5]);
  });

  it('resnet50 (bottleneck blocks) keeps the direct graph', () => {
    const r50 = buildResNet(synthetic(tv('resnet50')));
    expect(ops(buildOnnxModel(r50, { winograd: true })).filter((t) => t === 'MatMul')).toHaveLength(0);
  });
});
