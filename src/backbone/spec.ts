// The one description of the ResNet architecture (v1, torchvision naming) that both engines build
// from, with the variants a safetensors `__metadata__` can name. The weights are checked against
// it name by name and shape by shape, and each eval-mode BatchNorm is folded into its convolution.
import { UserError } from '../errors.js';
import { preprocessFor } from '../image/normalize.js';
import type { Preprocess } from '../image/normalize.js';
import type { SafetensorsFile, TensorEntry } from './safetensors.js';

export const ARCHS = {
  resnet18: { block: 'basic', layers: [2, 2, 2, 2] },
  resnet34: { block: 'basic', layers: [3, 4, 6, 3] },
  resnet50: { block: 'bottleneck', layers: [3, 4, 6, 3] },
  resnet101: { block: 'bottleneck', layers: [3, 4, 23, 3] },
  resnet152: { block: 'bottleneck', layers: [3, 8, 36, 3] },
} as const;
export type ArchName = keyof typeof ARCHS;

export function isArch(name: string): name is ArchName {
  return Object.hasOwn(ARCHS, name);
}

export interface Variant {
  arch: ArchName;
  /** torchvision (also HF's "pt") or keras-v1 (Keras Applications ResNet50 moved into torchvision names). */
  format: 'torchvision' | 'keras-v1';
  /** Bottleneck stride on the first 1x1 conv (Keras/caffe ResNet v1) instead of the 3x3 (torchvision v1.5). */
  strideIn1x1: boolean;
  convBias: boolean;
  bnEps: number;
  preprocess: Preprocess;
}

export interface ConvSpec {
  /** Tensor prefix of the conv ("layer1.0.conv1") and of its BatchNorm ("layer1.0.bn1"). */
  conv: string;
  bn: string;
  inC: number;
  outC: number;
  k: number;
  stride: number;
  /** Symmetric zero padding, as PyTorch pads. */
  pad: number;
}

export interface BlockSpec {
  name: string;
  /** In order; the last one has no ReLU of its own (the ReLU follows the residual add). */
  convs: ConvSpec[];
  downsample?: ConvSpec;
}

export interface ResNetSpec {
  variant: Variant;
  /** conv1 7x7/2 pad 3, ReLU, then max-pool 3x3/2 pad 1. */
  stem: ConvSpec;
  blocks: BlockSpec[];
  /** Width of the pooled feature. */
  dim: number;
}

export function resnetSpec(variant: Variant): ResNetSpec {
  const { block, layers } = ARCHS[variant.arch];
  const expansion = block === 'basic' ? 1 : 4;
  const stem: ConvSpec = { conv: 'conv1', bn: 'bn1', inC: 3, outC: 64, k: 7, stride: 2, pad: 3 };
  const blocks: BlockSpec[] = [];
  let inC = 64;
  layers.forEach((count, li) => {
    const planes = 64 << li;
    const outC = planes * expansion;
    for (let b = 0; b < count; b++) {
      const name = `layer${li + 1}.${b}`;
      const stride = b === 0 && li > 0 ? 2 : 1;
      const c = (i: number, ci: number, co: number, k: number, s: number): ConvSpec =>
        ({ conv: `${name}.conv${i}`, bn: `${name}.bn${i}`, inC: ci, outC: co, k, stride: s, pad: (k - 1) / 2 });
      const convs = block === 'basic'
        ? [c(1, inC, planes, 3, stride), c(2, planes, planes, 3, 1)]
        : [
            c(1, inC, planes, 1, variant.strideIn1x1 ? stride : 1),
            c(2, planes, planes, 3, variant.strideIn1x1 ? 1 : stride),
            c(3, planes, outC, 1, 1),
          ];
      const downsample = stride !== 1 || inC !== outC
        ? { conv: `${name}.downsample.0`, bn: `${name}.downsample.1`, inC, outC, k: 1, stride, pad: 0 }
        : undefined;
      blocks.push({ name, convs, ...(downsample ? { downsample } : {}) });
      inC = outC;
    }
  });
  return { variant, stem, blocks, dim: inC };
}

export interface ExpectedTensor {
  name: string;
  shape: number[];
}

/** The tensors a weights file must hold for this spec, in torchvision state_dict order. */
export function expectedTensors(spec: ResNetSpec, fcClasses?: number): ExpectedTensor[] {
  const out: ExpectedTensor[] = [];
  const conv = (c: ConvSpec) => {
    out.push({ name: `${c.conv}.weight`, shape: [c.outC, c.inC, c.k, c.k] });
    if (spec.variant.convBias) out.push({ name: `${c.conv}.bias`, shape: [c.outC] });
    for (const p of ['weight', 'bias', 'running_mean', 'running_var']) out.push({ name: `${c.bn}.${p}`, shape: [c.outC] });
  };
  conv(spec.stem);
  for (const b of spec.blocks) {
    b.convs.forEach(conv);
    if (b.downsample) conv(b.downsample);
  }
  if (fcClasses !== undefined) {
    out.push({ name: 'fc.weight', shape: [fcClasses, spec.dim] }, { name: 'fc.bias', shape: [fcClasses] });
  }
  return out;
}

/** The architecture named by the tensor names alone (block counts per layer, conv3 = bottleneck). */
export function inferArch(names: Iterable<string>): ArchName | undefined {
  const counts = [0, 0, 0, 0];
  let bottleneck = false;
  for (const n of names) {
    const m = /^layer([1-4])\.(\d+)\.(conv\d)\./.exec(n);
    if (!m) continue;
    const li = Number(m[1]) - 1;
    counts[li] = Math.max(counts[li]!, Number(m[2]) + 1);
    if (m[3] === 'conv3') bottleneck = true;
  }
  for (const [arch, d] of Object.entries(ARCHS)) {
    if ((d.block === 'bottleneck') === bottleneck && d.layers.every((n, i) => n === counts[i])) return arch as ArchName;
  }
  return undefined;
}

function parseBool(label: string, key: string, v: string | undefined): boolean | undefined {
  if (v === undefined) return undefined;
  const s = v.trim().toLowerCase();
  if (s === 'true' || s === '1') return true;
  if (s === 'false' || s === '0') return false;
  throw new UserError(`${label}: metadata "${key}" is "${v}", expected true or false`);
}

/**
 * The variant a weights file describes. Metadata wins; what it leaves out comes from its `format`'s
 * defaults, the architecture from the tensor names, and only then from `fallbackArch` (--backbone).
 */
export function resolveVariant(
  label: string,
  metadata: Record<string, string>,
  tensorNames: Iterable<string>,
  fallbackArch?: string,
): Variant {
  const names = new Set(tensorNames);
  const fmt = metadata.format?.trim().toLowerCase();
  let format: Variant['format'];
  // "pt" is what safetensors.torch / Hugging Face exports write; their tensors are torchvision's.
  if (fmt === undefined || fmt === 'torchvision' || fmt === 'pt' || fmt === 'pytorch') format = 'torchvision';
  else if (fmt === 'keras-v1') format = 'keras-v1';
  else throw new UserError(`${label}: metadata "format" is "${metadata.format}", expected torchvision or keras-v1`);
  const keras = format === 'keras-v1';

  let arch: ArchName;
  const metaArch = metadata.arch?.trim().toLowerCase();
  if (metaArch !== undefined) {
    if (!isArch(metaArch)) throw new UserError(`${label}: metadata "arch" is "${metadata.arch}", expected one of ${Object.keys(ARCHS).join(', ')}`);
    arch = metaArch;
  } else {
    const inferred = inferArch(names);
    const fb = fallbackArch?.trim().toLowerCase();
    if (inferred) arch = inferred;
    else if (fb !== undefined && isArch(fb)) arch = fb;
    else {
      throw new UserError(
        `${label}: cannot tell the architecture (no "arch" metadata and the tensor names match no ResNet); ` +
        `pass --backbone ${Object.keys(ARCHS).join('|')}`,
      );
    }
  }

  let bnEps = keras ? 1e-3 : 1e-5;
  if (metadata.bn_eps !== undefined) {
    bnEps = Number(metadata.bn_eps);
    if (!(Number.isFinite(bnEps) && bnEps > 0)) throw new UserError(`${label}: metadata "bn_eps" is "${metadata.bn_eps}", expected a positive number`);
  }
  let preprocess: Preprocess;
  try {
    preprocess = preprocessFor(metadata.preprocess?.trim().toLowerCase() ?? (keras ? 'caffe' : 'imagenet'));
  } catch (e) {
    throw new UserError(`${label}: metadata ${(e as Error).message}`);
  }
  return {
    arch,
    format,
    strideIn1x1: parseBool(label, 'stride_in_1x1', metadata.stride_in_1x1) ?? keras,
    convBias: parseBool(label, 'conv_bias', metadata.conv_bias) ?? (keras || names.has('conv1.bias')),
    bnEps,
    preprocess,
  };
}

export interface FoldedConv extends ConvSpec {
  /** OIHW, BatchNorm folded in. */
  weight: Float32Array;
  bias: Float32Array;
}

export interface FoldedBlock {
  name: string;
  convs: FoldedConv[];
  downsample?: FoldedConv;
}

/** The network ready to run: every conv carries its folded BatchNorm. */
export interface FoldedResNet {
  variant: Variant;
  dim: number;
  stem: FoldedConv;
  blocks: FoldedBlock[];
  /** ImageNet (or other) classifier, when the file has `fc.weight`/`fc.bias`: weight is [classes, dim]. */
  fc?: { weight: Float32Array; bias: Float32Array; classes: number };
}

type WeightsLike = Pick<SafetensorsFile, 'path' | 'metadata' | 'tensors'>;

/**
 * Checks a weights file against the spec (the error names the first missing, misshapen, non-float or
 * unexpected tensor) and folds BatchNorm: w' = w·γ/√(σ²+ε), b' = (b−μ)·γ/√(σ²+ε) + β, in float64.
 */
export function buildResNet(file: WeightsLike, fallbackArch?: string): FoldedResNet {
  const label = file.path;
  const variant = resolveVariant(label, file.metadata, file.tensors.keys(), fallbackArch);
  const spec = resnetSpec(variant);
  const what = `${variant.arch} (${variant.format}${variant.convBias ? ', conv bias' : ''})`;

  const hasFc = file.tensors.has('fc.weight') || file.tensors.has('fc.bias');
  const fcShape = file.tensors.get('fc.weight')?.shape;
  const classes = hasFc ? (fcShape?.length === 2 ? fcShape[0]! : file.tensors.get('fc.bias')?.shape[0] ?? 1000) : undefined;
  const expected = expectedTensors(spec, classes);
  const expectedNames = new Set(expected.map((t) => t.name));

  for (const e of expected) {
    const t = file.tensors.get(e.name);
    if (!t) throw new UserError(`${label}: tensor "${e.name}" is missing (expected for ${what})`);
    if (t.shape.length !== e.shape.length || t.shape.some((d, i) => d !== e.shape[i])) {
      throw new UserError(`${label}: tensor "${e.name}" has shape [${t.shape.join(', ')}], expected [${e.shape.join(', ')}] for ${what}`);
    }
    if (!t.data) throw new UserError(`${label}: tensor "${e.name}" has dtype ${t.dtype}, expected a float type (F32, F16, BF16, F64)`);
  }
  for (const name of file.tensors.keys()) {
    if (!expectedNames.has(name) && !name.endsWith('num_batches_tracked')) {
      throw new UserError(`${label}: unexpected tensor "${name}" for ${what}; is this the right architecture?`);
    }
  }

  const get = (name: string): Float32Array => (file.tensors.get(name) as TensorEntry).data!;
  const fold = (c: ConvSpec): FoldedConv => {
    const w = get(`${c.conv}.weight`);
    const b = variant.convBias ? get(`${c.conv}.bias`) : undefined;
    const gamma = get(`${c.bn}.weight`);
    const beta = get(`${c.bn}.bias`);
    const mean = get(`${c.bn}.running_mean`);
    const vari = get(`${c.bn}.running_var`);
    const per = c.inC * c.k * c.k;
    const weight = new Float32Array(w.length);
    const bias = new Float32Array(c.outC);
    for (let o = 0; o < c.outC; o++) {
      const denom = vari[o]! + variant.bnEps;
      if (!(denom > 0)) throw new UserError(`${label}: tensor "${c.bn}.running_var"[${o}] is ${vari[o]}: running_var + eps must be positive`);
      const s = gamma[o]! / Math.sqrt(denom);
      for (let i = o * per; i < (o + 1) * per; i++) weight[i] = w[i]! * s;
      bias[o] = ((b ? b[o]! : 0) - mean[o]!) * s + beta[o]!;
    }
    if (!allFinite(weight) || !allFinite(bias)) throw new UserError(`${label}: "${c.conv}" with "${c.bn}" has non-finite values (inf or NaN in the weights)`);
    return { ...c, weight, bias };
  };

  const net: FoldedResNet = {
    variant,
    dim: spec.dim,
    stem: fold(spec.stem),
    blocks: spec.blocks.map((b) => ({ name: b.name, convs: b.convs.map(fold), ...(b.downsample ? { downsample: fold(b.downsample) } : {}) })),
  };
  if (classes !== undefined) {
    const weight = get('fc.weight');
    const bias = get('fc.bias');
    if (!allFinite(weight) || !allFinite(bias)) throw new UserError(`${label}: "fc" has non-finite values (inf or NaN in the weights)`);
    net.fc = { weight, bias, classes };
  }
  return net;
}

function allFinite(a: Float32Array): boolean {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) return false;
  return true;
}

/** Multiply-accumulates of one forward pass at h×w (without fc), for throughput figures. */
export function forwardMacs(spec: Pick<ResNetSpec, 'stem' | 'blocks'>, h: number, w: number): number {
  const out = (x: number, c: ConvSpec) => Math.floor((x + 2 * c.pad - c.k) / c.stride) + 1;
  let macs = 0;
  const conv = (c: ConvSpec, H: number, W: number) => {
    const oh = out(H, c), ow = out(W, c);
    macs += oh * ow * c.outC * c.inC * c.k * c.k;
    return [oh, ow] as const;
  };
  let [H, W] = conv(spec.stem, h, w);
  H = Math.floor((H + 2 - 3) / 2) + 1;
  W = Math.floor((W + 2 - 3) / 2) + 1;
  for (const b of spec.blocks) {
    let [bh, bw] = [H, W];
    for (const c of b.convs) [bh, bw] = conv(c, bh, bw);
    if (b.downsample) conv(b.downsample, H, W);
    [H, W] = [bh, bw];
  }
  return macs;
}
