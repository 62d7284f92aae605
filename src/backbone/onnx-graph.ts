// The folded ResNet as ONNX nodes, written into a graph under construction, so that the engine's
// graph (NHWC float32 in, features out) and `viewprobe export`'s (uint8 pixels in, normalisation,
// backbone, head, softmax) are built from one description. Weights go in as raw_data initializers.
import onnxProto from 'onnx-proto';
import type { FoldedConv, FoldedResNet } from './spec.js';
import { appendWinogradConv, tileGeometry, useWinograd, winogradBlock, type TileGeometry } from './winograd.js';
import { DEFAULT_FEATURES, GEM_EPS, isDefaultFeatures, featureDim, featureTaps, gemExponent, stageChannels, stageEnds, type FeatureSpec } from '../feature-spec.js';

const { onnx } = onnxProto;

/** Opset 13 covers every op used here and is supported by every onnxruntime of the last years (node, Python, web). */
export const OPSET = 13;

/**
 * The backbone's input tensor (normalised NCHW float32) in every graph that holds appendResNet's
 * backbone: the engine's and export's. It is a calibration point (its range is in calibration.json
 * under this name), and the one Transpose quantize.ts quantises.
 */
export const BACKBONE_INPUT = 'nchw';

export type Dim = number | string;
export type AttrValue = number | number[] | { float: number };
export const DataType = onnx.TensorProto.DataType;
type TensorData = { type: 'float'; data: Float32Array } | { type: 'int64'; data: BigInt64Array };

export interface EncodeOptions {
  /** Graph name. */
  name: string;
  /** ModelProto.metadata_props, in order. */
  metadata?: [string, string][];
  producerVersion?: string;
  docString?: string;
}

export class OnnxGraph {
  private readonly nodes: InstanceType<typeof onnx.NodeProto>[] = [];
  private readonly inits: InstanceType<typeof onnx.TensorProto>[] = [];
  private readonly inputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  private readonly outputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  private nodeId = 0;

  /** Adds a node; returns its first output's name. Integer attributes are INT(S), `{float}` is FLOAT. */
  node(op: string, inputs: string[], outputs: string[], attrs: Record<string, AttrValue> = {}): string {
    const T = onnx.AttributeProto.AttributeType;
    this.nodes.push(onnx.NodeProto.create({
      name: `${op}_${this.nodeId++}`,
      opType: op,
      input: inputs,
      output: outputs,
      attribute: Object.entries(attrs).map(([name, v]) => Array.isArray(v)
        ? onnx.AttributeProto.create({ name, type: T.INTS, ints: v })
        : typeof v === 'number'
          ? onnx.AttributeProto.create({ name, type: T.INT, i: v })
          : onnx.AttributeProto.create({ name, type: T.FLOAT, f: v.float })),
    }));
    return outputs[0]!;
  }

  /** A constant tensor (float32 or int64), little-endian raw data; returns its name. */
  init(name: string, dims: number[], t: TensorData | Float32Array): string {
    const { type, data } = t instanceof Float32Array ? { type: 'float' as const, data: t } : t;
    this.inits.push(onnx.TensorProto.create({
      name,
      dims,
      dataType: type === 'float' ? DataType.FLOAT : DataType.INT64,
      rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    }));
    return name;
  }

  input(name: string, elemType: number, dims: Dim[]): string {
    this.inputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  output(name: string, elemType: number, dims: Dim[]): string {
    this.outputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  encode(o: EncodeOptions): Uint8Array {
    return encodeModel(this.proto(o));
  }

  /** The model as a ModelProto object, before encoding (quantize.ts rewrites the engine's and export's backbone in it). */
  proto(o: EncodeOptions): ModelProto {
    return onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'viewprobe',
      ...(o.producerVersion !== undefined ? { producerVersion: o.producerVersion } : {}),
      ...(o.docString !== undefined ? { docString: o.docString } : {}),
      opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: OPSET })],
      metadataProps: (o.metadata ?? []).map(([key, value]) => onnx.StringStringEntryProto.create({ key, value })),
      graph: onnx.GraphProto.create({
        name: o.name,
        node: this.nodes,
        initializer: this.inits,
        input: this.inputs,
        output: this.outputs,
      }),
    });
  }
}

export type ModelProto = InstanceType<typeof onnx.ModelProto>;

export function encodeModel(m: ModelProto): Uint8Array {
  return onnx.ModelProto.encode(m).finish();
}

/** A float tensor's type, for graph inputs and outputs; a string dim is symbolic, none leaves the shape open. */
export function floatValueInfo(name: string, dims?: Dim[]) {
  return dims ? valueInfo(name, DataType.FLOAT, dims) : onnx.ValueInfoProto.create({
    name,
    type: onnx.TypeProto.create({ tensorType: onnx.TypeProto.Tensor.create({ elemType: DataType.FLOAT }) }),
  });
}

function valueInfo(name: string, elemType: number, dims: Dim[]) {
  return onnx.ValueInfoProto.create({
    name,
    type: onnx.TypeProto.create({
      tensorType: onnx.TypeProto.Tensor.create({
        elemType,
        shape: onnx.TensorShapeProto.create({
          dim: dims.map((d) => onnx.TensorShapeProto.Dimension.create(typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
        }),
      }),
    }),
  });
}

/** How appendResNet writes the backbone's convolutions. */
export interface ResNetGraphOptions {
  /**
   * The deep stages' 3x3 stride-1 convolutions as Winograd F(2x2,3x3) on NHWC tensors (winograd.ts):
   * faster on onnxruntime's CPU provider, equal to the direct graph up to float rounding. Off for
   * export (a plain graph any runtime runs as it likes) and for the int8 graph (quantize.ts).
   */
  winograd?: boolean;
}

/**
 * The backbone from NCHW float32 `x` (already normalised) to `features` [N, dim]: conv1, max-pool,
 * the blocks, then the pooled taps of `spec` (default: global average pool of layer4), concatenated
 * and flattened. Returns the features' name. Every stage's output is an NCHW tensor named
 * `${block}.out` (stageMap), whatever layout the stage ran in.
 */
export function appendResNet(g: OnnxGraph, net: FoldedResNet, x: string, features = 'features', spec: FeatureSpec = DEFAULT_FEATURES, o: ResNetGraphOptions = {}): string {
  const conv = (x: string, c: FoldedConv, relu: boolean): string => {
    const w = g.init(`${c.conv}.w`, [c.outC, c.inC, c.k, c.k], c.weight);
    const b = g.init(`${c.conv}.b`, [c.outC], c.bias);
    const y = g.node('Conv', [x, w, b], [`${c.conv}.out`], {
      kernel_shape: [c.k, c.k], strides: [c.stride, c.stride], pads: [c.pad, c.pad, c.pad, c.pad], dilations: [1, 1], group: 1,
    });
    return relu ? g.node('Relu', [y], [`${c.conv}.relu`]) : y;
  };

  x = conv(x, net.stem, true);
  // The max-pool input is post-ReLU, and MaxPool's own pads ignore padded cells (−inf) as PyTorch does.
  x = g.node('MaxPool', [x], ['maxpool'], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
  const layout = new Layouts(g);
  const ends = new Set(stageEnds(net.blocks).values());
  for (const b of net.blocks) {
    if (!(o.winograd && winogradBlock(b))) {
      x = layout.nchw(x);
      let y = x;
      b.convs.forEach((c, i) => { y = conv(y, c, i < b.convs.length - 1); });
      const shortcut = b.downsample ? conv(x, b.downsample, false) : x;
      const sum = g.node('Add', [y, shortcut], [`${b.name}.add`]);
      x = g.node('Relu', [sum], [`${b.name}.out`]);
      continue;
    }
    // A Winograd block runs NHWC; its other convolutions (stride 2, 1x1) run direct between transposes.
    let y = x;
    b.convs.forEach((c, i) => {
      const relu = i < b.convs.length - 1;
      if (!useWinograd(c)) { y = layout.nhwc(conv(layout.nchw(y), c, relu)); return; }
      const pre = appendWinogradConv(g, layout.nhwc(y), c, layout.geometry(b.name.replace(/\..*/, ''), layout.nhwc(y)));
      y = layout.mark(relu ? g.node('Relu', [pre], [`${c.conv}.relu`]) : pre);
    });
    const shortcut = layout.nhwc(b.downsample ? conv(layout.nchw(x), b.downsample, false) : x);
    const sum = g.node('Add', [y, shortcut], [`${b.name}.add`]);
    x = layout.mark(g.node('Relu', [sum], [`${b.name}.out.nhwc`]));
    if (ends.has(b.name)) x = layout.nchw(x, `${b.name}.out`);
  }
  const taps = featureTaps(spec, stageChannels(net.blocks));
  const pooled = taps.map((t) => appendPool(g, net, t.layer, t.pool));
  const joined = pooled.length === 1 ? pooled[0]! : g.node('Concat', pooled, ['concat'], { axis: 1 });
  return g.node('Flatten', [joined], [features], { axis: 1 });
}

/**
 * Which tensors are NHWC (the rest are NCHW), and each one's transpose into the other layout, made
 * once however many convolutions read it. Also one Winograd tile geometry per stage.
 */
class Layouts {
  private readonly nhwcNames = new Set<string>();
  private readonly twins = new Map<string, string>();
  private readonly geometries = new Map<string, TileGeometry>();

  constructor(private readonly g: OnnxGraph) {}

  /** Records that `x` is NHWC; returns it. */
  mark(x: string): string {
    this.nhwcNames.add(x);
    return x;
  }

  nhwc(x: string): string {
    if (this.nhwcNames.has(x)) return x;
    const t = this.twin(x, `${x}.nhwc`, [0, 2, 3, 1]);
    this.nhwcNames.add(t);
    return t;
  }

  /** `x` in NCHW; `name`, when given, must be the transpose's name (a stage end's, which taps read). */
  nchw(x: string, name?: string): string {
    return this.nhwcNames.has(x) ? this.twin(x, name ?? `${x}.nchw`, [0, 3, 1, 2], name !== undefined) : x;
  }

  geometry(stage: string, x: string): TileGeometry {
    let geo = this.geometries.get(stage);
    if (!geo) this.geometries.set(stage, (geo = tileGeometry(this.g, x, `${stage}.tiles`)));
    return geo;
  }

  private twin(x: string, name: string, perm: number[], named = false): string {
    let t = this.twins.get(x);
    if (named && t !== undefined && t !== name) throw new Error(`onnx graph: ${x} already has a transpose named ${t}, not ${name}`);
    if (!t) {
      t = this.g.node('Transpose', [x], [name], { perm });
      this.twins.set(x, t);
      this.twins.set(t, x);
    }
    return t;
  }
}

/** The output of stage `layer` (the last block's `${block}.out`). */
export function stageMap(net: FoldedResNet, layer: number): string {
  const end = stageEnds(net.blocks).get(layer);
  if (!end) throw new Error(`${net.variant.arch} has no layer${layer}`);
  return `${end}.out`;
}

/**
 * One pooling of a stage's map, as an N x C x 1 x 1 tensor; avg of layer4 is named 'pooled' (the
 * seed's feature, which fc reads). GeM is (mean clip(x, eps)^p)^(1/p).
 */
function appendPool(g: OnnxGraph, net: FoldedResNet, layer: number, p: string): string {
  const map = stageMap(net, layer);
  const tag = `layer${layer}.${p}`;
  if (p === 'avg') return g.node('GlobalAveragePool', [map], [layer === 4 ? 'pooled' : `${tag}.pooled`]);
  const e = gemExponent(p)!;
  const eps = g.init(`${tag}.eps`, [], Float32Array.of(GEM_EPS));
  const pw = g.init(`${tag}.p`, [], Float32Array.of(e));
  const inv = g.init(`${tag}.invp`, [], Float32Array.of(1 / e));
  const clipped = g.node('Clip', [map, eps], [`${tag}.clip`]);
  const powered = g.node('Pow', [clipped, pw], [`${tag}.pow`]);
  const mean = g.node('GlobalAveragePool', [powered], [`${tag}.mean`]);
  return g.node('Pow', [mean, inv], [`${tag}.pooled`]);
}

export interface OnnxModelOptions {
  /** A second output, `logits`, through fc (on the average pool of layer4, whatever `features` is). */
  logits?: boolean;
  /** What the `features` output concatenates (default: average pool of layer4). */
  features?: FeatureSpec;
  /** Extra outputs `layer<N>.map` (NCHW feature maps of those stages), for tests that pool by hand. */
  maps?: number[];
  /** See ResNetGraphOptions (the CPU engine's fp32 graph sets it). */
  winograd?: boolean;
}

/**
 * The engine's model: NHWC float32 `input` [N, H, W, 3] (any size, dynamic batch), transposed to
 * NCHW in the graph, to `features`; `logits` adds a second output through the weights' own fc.
 */
export function buildOnnxModel(net: FoldedResNet, opts: OnnxModelOptions = {}): Uint8Array {
  return encodeModel(buildOnnxProto(net, opts));
}

/**
 * buildOnnxModel's graph as a ModelProto object, so that quantize.ts can rewrite it. Tensor names are
 * stable: BACKBONE_INPUT ('nchw'), `${conv}.out` / `${conv}.relu`, 'maxpool', `${block}.out`.
 */
export function buildOnnxProto(net: FoldedResNet, opts: OnnxModelOptions = {}): ModelProto {
  const spec = opts.features ?? DEFAULT_FEATURES;
  const g = new OnnxGraph();
  g.input('input', DataType.FLOAT, ['N', 'H', 'W', 3]);
  const nchw = g.node('Transpose', ['input'], [BACKBONE_INPUT], { perm: [0, 3, 1, 2] });
  const features = appendResNet(g, net, nchw, 'features', spec, { winograd: opts.winograd });
  g.output(features, DataType.FLOAT, ['N', featureDim(spec, stageChannels(net.blocks))]);
  if (opts.logits && net.fc) {
    // fc reads the average pool of layer4 whatever the features are; with the default they are it.
    const avg4 = featureTaps(spec, stageChannels(net.blocks)).some((t) => t.layer === 4 && t.pool === 'avg') ? 'pooled' : appendPool(g, net, 4, 'avg');
    const fcIn = isDefaultFeatures(spec) ? features : g.node('Flatten', [avg4], ['pooled.flat'], { axis: 1 });
    const w = g.init('fc.w', [net.fc.classes, net.dim], net.fc.weight);
    const b = g.init('fc.b', [net.fc.classes], net.fc.bias);
    g.output(g.node('Gemm', [fcIn, w, b], ['logits'], { transB: 1 }), DataType.FLOAT, ['N', net.fc.classes]);
  }
  for (const layer of opts.maps ?? []) {
    g.output(g.node('Identity', [stageMap(net, layer)], [`layer${layer}.map`]), DataType.FLOAT, ['N', stageChannels(net.blocks)[layer - 1]!, 'h', 'w']);
  }
  return g.proto({ name: net.variant.arch });
}
