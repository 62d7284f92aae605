// The int8 backbone: the fp32 backbone of onnx-graph.ts (appendResNet) rewritten as a QDQ graph,
// which onnxruntime's CPU provider fuses into QLinearConv / QLinearAdd kernels (u8 activations x s8
// weights). One pass (quantizeBackbone) serves the engine's graph and `viewprobe export`'s, so an
// exported int8 model computes the very features of an int8 cache.
//
// - Weights: per-output-channel symmetric int8 with |q| <= 63 (7 bits), behind DequantizeLinear.
//   Full 8-bit weights saturate the AVX2 kernel (vpmaddubsw adds two u8 x s8 products into an int16;
//   measured for issue 11: median cosine to fp32 0.944), and 7 bits give the same features on CPUs
//   with and without VNNI, which a cache that outlives machines needs.
// - Biases: int32 at scale (input scale x weight scale), so QLinearConv adds them exactly.
// - Activations: uint8, one QuantizeLinear -> DequantizeLinear pair after every point that
//   activationPoints() lists: the backbone's input, each Conv (after its ReLU when it has one: the
//   range then starts at 0 and zero point 0, so onnxruntime drops the ReLU), the MaxPool (with its
//   input's parameters, so it runs on uint8) and each residual Add (after its ReLU). The pooling of
//   the features and anything after it stay fp32.
// The ranges come from a calibration (fp32 activations of sample images; see extract/calibrate.ts):
// buildCalibrationModel() is the fp32 graph with every point as an extra output.
import onnxProto from 'onnx-proto';
import type * as Ort from 'onnxruntime-node';
import { BACKBONE_INPUT, buildOnnxProto, encodeModel, floatValueInfo, type ModelProto, type OnnxModelOptions } from './onnx-graph.js';
import type { FoldedResNet } from './spec.js';

const { onnx } = onnxProto;
type NodeProto = onnxProto.onnx.INodeProto;
type TensorProto = onnxProto.onnx.ITensorProto;
const DT = onnx.TensorProto.DataType;

/** Largest |q| of a quantised weight: 7 bits (see above). */
export const WEIGHT_QMAX = 63;

/** An activation tensor that gets a QuantizeLinear -> DequantizeLinear pair. */
export interface ActivationPoint {
  /** The fp32 graph's tensor name ('nchw', 'layer1.0.conv1.relu', 'maxpool', 'layer1.0.out', ...). */
  name: string;
  /** A ReLU output: its range starts at 0. */
  nonNegative: boolean;
  /** Quantised with this other point's parameters (MaxPool: its input's, so it runs on uint8). */
  sameAs?: string;
}

/** [low, high] of each calibrated point's fp32 values (points with sameAs need none). */
export type ActivationRanges = Record<string, [number, number]>;

export interface QuantParams {
  scale: number;
  zeroPoint: number;
}

/**
 * The points of a graph that holds appendResNet's backbone, in graph order: the backbone's input
 * (the Transpose to BACKBONE_INPUT), every Conv (unless a ReLU follows), ReLU and MaxPool output.
 * The rest of such a graph (export's normalisation, pooling, head) has none of these ops.
 */
export function activationPoints(model: ModelProto): ActivationPoint[] {
  const nodes = model.graph!.node!;
  const producer = new Map<string, NodeProto>();
  const consumers = new Map<string, NodeProto[]>();
  for (const n of nodes) {
    for (const o of n.output!) producer.set(o, n);
    for (const i of n.input!) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  }
  const points: ActivationPoint[] = [];
  for (const n of nodes) {
    const out = n.output![0]!;
    const op = n.opType!;
    if (op === 'Conv' && (consumers.get(out) ?? []).every((c) => c.opType === 'Relu')) continue;
    if ((op === 'Transpose' && out === BACKBONE_INPUT) || op === 'Conv') points.push({ name: out, nonNegative: false });
    else if (op === 'Relu') points.push({ name: out, nonNegative: true });
    else if (op === 'MaxPool') {
      const input = n.input![0]!;
      points.push({ name: out, nonNegative: producer.get(input)?.opType === 'Relu', sameAs: input });
    }
  }
  return points;
}

/** The fp32 graph with every point that needs a range as an extra output (after the features). */
export function buildCalibrationModel(net: FoldedResNet): { model: Uint8Array; points: ActivationPoint[] } {
  const proto = buildOnnxProto(net);
  const points = activationPoints(proto);
  for (const p of points) if (!p.sameAs) proto.graph!.output!.push(floatValueInfo(p.name));
  return { model: encodeModel(proto), points };
}

/** uint8 parameters for a range: it always holds 0 (zero padding must be exact), and a ReLU output's starts at it. */
export function uint8Params(range: [number, number], nonNegative: boolean): QuantParams {
  const lo = nonNegative ? 0 : Math.min(0, range[0]);
  const hi = Math.max(0, range[1]);
  if (!(Number.isFinite(lo) && Number.isFinite(hi))) throw new Error(`activation range [${range.join(', ')}] is not finite`);
  const scale = Math.fround(hi > lo ? (hi - lo) / 255 : 1);
  const zeroPoint = Math.min(255, Math.max(0, Math.round(-lo / scale)));
  return { scale, zeroPoint };
}

/** Per-output-channel symmetric weights: scale[o] = max|w_o| / WEIGHT_QMAX, q = round(w / scale). */
export function quantizeWeights(w: Float32Array, outC: number): { q: Int8Array; scale: Float32Array } {
  const per = w.length / outC;
  const q = new Int8Array(w.length);
  const scale = new Float32Array(outC);
  for (let o = 0; o < outC; o++) {
    let max = 0;
    for (let i = o * per; i < (o + 1) * per; i++) max = Math.max(max, Math.abs(w[i]!));
    const s = Math.fround(max > 0 ? max / WEIGHT_QMAX : 1);
    scale[o] = s;
    for (let i = o * per; i < (o + 1) * per; i++) q[i] = Math.max(-WEIGHT_QMAX, Math.min(WEIGHT_QMAX, Math.round(w[i]! / s)));
  }
  return { q, scale };
}

function tensor(name: string, dataType: number, dims: number[], data: ArrayBufferView): TensorProto {
  return onnx.TensorProto.create({ name, dims, dataType, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
}

function attrInt(name: string, i: number) {
  return onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i });
}

/**
 * The QDQ graph of `net` with these activation ranges. Throws when a point has no range (ranges
 * calibrated on another architecture). `logits` keeps the fp32 fc output, as buildOnnxModel does.
 */
export function buildQdqModel(net: FoldedResNet, ranges: ActivationRanges, opts: Omit<OnnxModelOptions, 'winograd'> = {}): Uint8Array {
  // The direct graph always: the calibration points are its convolutions' outputs.
  const proto = buildOnnxProto(net, { ...opts, winograd: false });
  quantizeBackbone(proto, ranges);
  return encodeModel(proto);
}

/**
 * Rewrites, in place, the backbone of a graph that holds one (appendResNet's, from BACKBONE_INPUT
 * on) as QDQ with these activation ranges; every other node stays fp32 (the engine's NHWC Transpose
 * before it; export's normalisation before it and its pooling, head and softmax after it). Throws
 * when a point has no range, or when the graph has no backbone input.
 */
export function quantizeBackbone(proto: ModelProto, ranges: ActivationRanges): void {
  const graph = proto.graph!;
  const points = activationPoints(proto);
  if (!points.some((p) => p.name === BACKBONE_INPUT)) throw new Error(`quantizeBackbone: the graph has no backbone input "${BACKBONE_INPUT}"`);
  const params = new Map<string, QuantParams>();
  for (const p of points) {
    const r = ranges[p.sameAs ?? p.name];
    if (!r) throw new Error(`the calibration has no range for "${p.sameAs ?? p.name}" (was it made for another network?)`);
    params.set(p.name, uint8Params(r, p.nonNegative));
  }
  const inits = new Map(graph.initializer!.map((t) => [t.name!, t]));
  const used = new Set<string>();
  const added: TensorProto[] = [];
  const renamed = new Map<string, string>();
  const out: NodeProto[] = [];
  const node = (opType: string, input: string[], output: string, attribute: ReturnType<typeof attrInt>[] = []) =>
    out.push(onnx.NodeProto.create({ name: `${opType}_${output}`, opType, input, output: [output], attribute }));
  const scalarParams = (name: string, q: QuantParams): [string, string] => {
    if (!used.has(`${name}.scale`)) {
      added.push(tensor(`${name}.scale`, DT.FLOAT, [], new Float32Array([q.scale])));
      added.push(tensor(`${name}.zp`, DT.UINT8, [], new Uint8Array([q.zeroPoint])));
      used.add(`${name}.scale`);
    }
    return [`${name}.scale`, `${name}.zp`];
  };
  const floatInit = (name: string): Float32Array => {
    const t = inits.get(name)!;
    const raw = t.rawData!;
    used.add(name);
    return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  };

  for (const n of graph.node!) {
    const inputs = n.input!.map((i) => renamed.get(i) ?? i);
    if (n.opType === 'Conv') {
      const xParams = params.get(n.input![0]!);
      if (!xParams) throw new Error(`Conv ${n.name}: its input ${n.input![0]} is not quantised`);
      const [wName, bName] = [n.input![1]!, n.input![2]!];
      const w = floatInit(wName);
      const dims = inits.get(wName)!.dims!.map(Number);
      const outC = dims[0]!;
      const { q, scale } = quantizeWeights(w, outC);
      added.push(tensor(`${wName}.q`, DT.INT8, dims, q), tensor(`${wName}.scale`, DT.FLOAT, [outC], scale),
        tensor(`${wName}.zp`, DT.INT8, [outC], new Int8Array(outC)));
      node('DequantizeLinear', [`${wName}.q`, `${wName}.scale`, `${wName}.zp`], `${wName}.dq`, [attrInt('axis', 0)]);
      const b = floatInit(bName);
      const bScale = new Float32Array(outC);
      const bq = new Int32Array(outC);
      for (let o = 0; o < outC; o++) {
        bScale[o] = Math.fround(xParams.scale * scale[o]!);
        bq[o] = Math.round(b[o]! / bScale[o]!);
      }
      added.push(tensor(`${bName}.q`, DT.INT32, [outC], bq), tensor(`${bName}.scale`, DT.FLOAT, [outC], bScale),
        tensor(`${bName}.zp`, DT.INT32, [outC], new Int32Array(outC)));
      node('DequantizeLinear', [`${bName}.q`, `${bName}.scale`, `${bName}.zp`], `${bName}.dq`, [attrInt('axis', 0)]);
      inputs[1] = `${wName}.dq`;
      inputs[2] = `${bName}.dq`;
    }
    n.input = inputs;
    out.push(n);
    const y = n.output![0]!;
    const q = params.get(y);
    if (q) {
      const [s, zp] = scalarParams(y, q);
      node('QuantizeLinear', [y, s, zp], `${y}.q`);
      node('DequantizeLinear', [`${y}.q`, s, zp], `${y}.dq`);
      renamed.set(y, `${y}.dq`);
    }
  }
  graph.node = out;
  graph.initializer = [...graph.initializer!.filter((t) => !used.has(t.name!)), ...added];
}

/** A single fp32 session over the calibration graph: each run returns every point's values. */
export interface CalibrationSession {
  points: ActivationPoint[];
  /** NHWC float32 input of n images; values of each point (without sameAs), NCHW. */
  run(input: Float32Array, n: number, h: number, w: number): Promise<Map<string, Float32Array>>;
  dispose(): Promise<void>;
}

/** On the calling thread: calibration is short, and each run's outputs (tens of MB) stay here. */
export async function openCalibrationSession(net: FoldedResNet, threads: number): Promise<CalibrationSession> {
  const ort = await import('onnxruntime-node');
  const { model, points } = buildCalibrationModel(net);
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
  } satisfies Ort.InferenceSession.SessionOptions);
  const names = points.filter((p) => !p.sameAs).map((p) => p.name);
  return {
    points,
    async run(input, n, h, w) {
      const feed = new ort.Tensor('float32', input.subarray(0, n * h * w * 3), [n, h, w, 3]);
      const result = await session.run({ input: feed }, names);
      return new Map(names.map((k) => [k, result[k]!.data as Float32Array]));
    },
    dispose: () => session.release(),
  };
}
