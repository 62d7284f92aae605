// The whole classifier as one ONNX graph: uint8 RGB pixels in, the backbone's normalisation, the
// frozen ResNet and its pooled features (written by the same builder as the onnx engine's, with the
// run's feature spec), the head's feature transform, the linear head and softmax out. int8: the
// backbone is rewritten by the engine's own QDQ pass (quantizeBackbone) with the run's calibration.
// Only standard opset-13 ops, which onnxruntime runs on every platform (node, Python, web/wasm).
import type { Preprocess } from '../image/normalize.js';
import { BACKBONE_INPUT, DataType, OnnxGraph, OPSET, appendResNet, encodeModel } from '../backbone/onnx-graph.js';
import { quantizeBackbone, type ActivationRanges } from '../backbone/quantize.js';
import type { FoldedResNet } from '../backbone/spec.js';
import { featureDim, stageChannels, type FeatureSpec } from '../feature-spec.js';
import type { HeadTransform } from '../head/head.js';

export { OPSET };

/** The names a caller feeds and reads. */
export const IO = {
  input: 'image',
  probabilities: 'probabilities',
  logits: 'logits',
  features: 'features',
} as const;

/** Precisions export can write: fp32, or int8 (the QDQ backbone of an int8 cache, calibrated). */
export const PRECISIONS = ['fp32', 'int8'] as const;
export type Precision = (typeof PRECISIONS)[number];

export interface ExportHead {
  classes: number;
  dim: number;
  /** classes x dim, row-major (torch's Linear.weight). */
  weight: Float32Array;
  bias: Float32Array;
  transform?: HeadTransform;
}

export interface ExportGraphSpec {
  net: FoldedResNet;
  head: ExportHead;
  /** Side of the square input the eval transform produces. */
  inputSize: number;
  /** The pooled features the head reads (the run's fingerprint's pool and layers). */
  features: FeatureSpec;
  /** int8: the calibration's activation ranges (the backbone becomes QDQ); absent: fp32. */
  int8?: ActivationRanges;
  metadata: [string, string][];
  producerVersion: string;
  docString?: string;
}

/**
 * uint8 NHWC RGB `image` to the network's NCHW float32 input, in the same float32 steps as
 * makeNormLut (extract/normalize.ts), so the graph's input is bit for bit the one the engine gets:
 * x/255 (a float32 division), then -mean, then /std (imagenet); or BGR x - mean (caffe).
 */
export function appendNormalize(g: OnnxGraph, image: string, p: Preprocess): string {
  let x = g.node('Cast', [image], ['image.float'], { to: DataType.FLOAT });
  if (p.bgr) x = g.node('Gather', [x, g.init('norm.bgr', [3], { type: 'int64', data: new BigInt64Array([2n, 1n, 0n]) })], ['image.bgr'], { axis: 3 });
  if (p.scale !== 1) {
    // makeNormLut divides by 255 whenever scale is not 1; any other scale would need it there too.
    if (Math.abs(p.scale * 255 - 1) > 1e-12) throw new Error(`preprocess scale ${p.scale} is not 1/255`);
    x = g.node('Div', [x, g.init('norm.255', [], new Float32Array([255]))], ['image.scaled']);
  }
  x = g.node('Sub', [x, g.init('norm.mean', [3], new Float32Array(p.mean))], ['image.centered']);
  if (p.std.some((s) => s !== 1)) x = g.node('Div', [x, g.init('norm.std', [3], new Float32Array(p.std))], ['image.normalized']);
  return g.node('Transpose', [x], [BACKBONE_INPUT], { perm: [0, 3, 1, 2] });
}

/** The head file's feature transform: x -> sign(x)*|x|^power (if power) -> x/||x||_2 over the features (if l2). */
export function appendFeatureTransform(g: OnnxGraph, x: string, t: HeadTransform | undefined): string {
  if (t?.power !== undefined) {
    const p = g.init('transform.power', [], new Float32Array([t.power]));
    const mag = g.node('Pow', [g.node('Abs', [x], ['transform.abs']), p], ['transform.pow']);
    x = g.node('Mul', [g.node('Sign', [x], ['transform.sign']), mag], ['transform.powered']);
  }
  if (t?.l2) {
    const norm = g.node('ReduceL2', [x], ['transform.norm'], { axes: [1], keepdims: 1 });
    x = g.node('Div', [x, norm], ['transform.l2']);
  }
  return x;
}

export function buildExportModel(s: ExportGraphSpec): Uint8Array {
  const { net, head } = s;
  const dim = featureDim(s.features, stageChannels(net.blocks));
  if (head.dim !== dim) throw new Error(`head takes ${head.dim}-d features, the backbone gives ${dim}-d`);
  if (head.weight.length !== head.classes * head.dim || head.bias.length !== head.classes) throw new Error('head weight/bias sizes do not match classes x dim');
  const g = new OnnxGraph();
  const S = s.inputSize;
  g.input(IO.input, DataType.UINT8, ['N', S, S, 3]);
  const x = appendNormalize(g, IO.input, net.variant.preprocess);
  const features = appendResNet(g, net, x, IO.features, s.features);
  const z = appendFeatureTransform(g, features, head.transform);
  const logits = g.node('Gemm', [z, g.init('head.weight', [head.classes, head.dim], head.weight), g.init('head.bias', [head.classes], head.bias)],
    [IO.logits], { transB: 1 });
  const probs = g.node('Softmax', [logits], [IO.probabilities], { axis: 1 });
  g.output(probs, DataType.FLOAT, ['N', head.classes]);
  g.output(logits, DataType.FLOAT, ['N', head.classes]);
  g.output(features, DataType.FLOAT, ['N', dim]);
  const proto = g.proto({
    name: `viewprobe-${net.variant.arch}`,
    metadata: s.metadata,
    producerVersion: s.producerVersion,
    ...(s.docString !== undefined ? { docString: s.docString } : {}),
  });
  if (s.int8) quantizeBackbone(proto, s.int8);
  return encodeModel(proto);
}
