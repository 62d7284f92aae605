// The whole classifier as one ONNX graph: uint8 RGB pixels in, the backbone's normalisation, the
// frozen ResNet (written by the same builder as the onnx engine's), the head's feature transform,
// the linear head and softmax out. Only standard opset-13 ops, which onnxruntime runs on every
// platform (node, Python, web/wasm).
import type { Preprocess } from '../image/normalize.js';
import { DataType, OnnxGraph, OPSET, appendResNet } from '../backbone/onnx-graph.js';
import type { FoldedResNet } from '../backbone/spec.js';
import type { HeadTransform } from '../head/head.js';

export { OPSET };

/** The names a caller feeds and reads. */
export const IO = {
  input: 'image',
  probabilities: 'probabilities',
  logits: 'logits',
  features: 'features',
} as const;

/** Precisions export can write. int8 (a QDQ backbone, calibrated) is to come: it adds its own backbone writer. */
export const PRECISIONS = ['fp32'] as const;
export type Precision = (typeof PRECISIONS)[number];

/** Writes the backbone from normalised NCHW float32 `x` to `features` [N, dim]; returns the features' name. */
export type BackboneWriter = (g: OnnxGraph, net: FoldedResNet, x: string, features: string) => string;

const BACKBONE_WRITERS: Record<Precision, BackboneWriter> = {
  fp32: appendResNet,
};

export function backboneWriter(p: Precision): BackboneWriter {
  return BACKBONE_WRITERS[p];
}

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
  backbone: BackboneWriter;
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
  return g.node('Transpose', [x], ['nchw'], { perm: [0, 3, 1, 2] });
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
  if (head.dim !== net.dim) throw new Error(`head takes ${head.dim}-d features, the backbone gives ${net.dim}-d`);
  if (head.weight.length !== head.classes * head.dim || head.bias.length !== head.classes) throw new Error('head weight/bias sizes do not match classes x dim');
  const g = new OnnxGraph();
  const S = s.inputSize;
  g.input(IO.input, DataType.UINT8, ['N', S, S, 3]);
  const x = appendNormalize(g, IO.input, net.variant.preprocess);
  const features = s.backbone(g, net, x, IO.features);
  const z = appendFeatureTransform(g, features, head.transform);
  const logits = g.node('Gemm', [z, g.init('head.weight', [head.classes, head.dim], head.weight), g.init('head.bias', [head.classes], head.bias)],
    [IO.logits], { transB: 1 });
  const probs = g.node('Softmax', [logits], [IO.probabilities], { axis: 1 });
  g.output(probs, DataType.FLOAT, ['N', head.classes]);
  g.output(logits, DataType.FLOAT, ['N', head.classes]);
  g.output(features, DataType.FLOAT, ['N', net.dim]);
  return g.encode({
    name: `viewprobe-${net.variant.arch}`,
    metadata: s.metadata,
    producerVersion: s.producerVersion,
    ...(s.docString !== undefined ? { docString: s.docString } : {}),
  });
}
