// model.json, written beside an exported model.onnx: everything a program outside viewprobe needs to
// feed the model and read its answer (class names in index order, the eval transform spelled out,
// input/output names) and to know where it came from (fingerprint, weights sha256, the head's
// accuracy, viewprobe's version). The same facts go into the model's metadata_props, one JSON value
// per key, so the .onnx file alone still carries them.
import { readFile } from 'node:fs/promises';
import type { Fingerprint } from '../cache/types.js';
import { InputError, errorMessage } from '../errors.js';
import type { Preprocess } from '../image/normalize.js';
import type { Variant } from '../backbone/spec.js';
import { GEM_EPS, describeFeatures, type FeatureSpec } from '../feature-spec.js';
import type { EvalSpec, Preset, TestViewSpec } from '../image/presets.js';
import type { HeadTransform } from '../head/head.js';
import { IO, type Precision } from './graph.js';

export const MODEL_FORMAT = 'viewprobe-model';
/** 2: testTimeViews (extra views as data), features and model.calibration added. */
export const MODEL_VERSION = 2;

type Shape = (number | string)[];

/** How to produce the `image` input from a photo. */
export interface EvalTransformDoc {
  /** Side of the square uint8 input. */
  inputSize: number;
  decode: string;
  resize: EvalSpec['resize'] & { method: string };
  crop: { kind: 'center'; size: number; offsets: string } | null;
  /** Channel order of the `image` input (always RGB: the graph reorders for BGR networks). */
  channelOrder: 'RGB';
  layout: 'NHWC';
  /** The same, in words, in order. */
  steps: string[];
}

/** The preset's test-time views: what predict and eval average per image, and how to do the same. */
export interface TestTimeViewsDoc {
  /** Views averaged per image: the eval view and the extra ones. */
  views: number;
  /**
   * The extra views, in order, each made from the eval view's `image` input: `{op: 'flip', axis}`
   * reverses that NHWC axis (2: width). A consumer refuses an op it does not know; `what` is for people.
   */
  extra: TestViewSpec[];
  how: string;
}

/** The pooled features the head reads (the `features` output). */
export interface FeaturesDoc {
  pool: string[];
  layers: number[];
  dim: number;
  what: string;
}

/** The int8 calibration the backbone's QDQ graph was built with. */
export interface CalibrationDoc {
  /** sha256 of its canonical JSON: an int8 fingerprint's `calibration`. */
  sha256: string;
  method: string;
  images: number;
}

export interface ModelSidecar {
  format: typeof MODEL_FORMAT;
  version: typeof MODEL_VERSION;
  viewprobe: string;
  createdAt: string;
  model: { file: string; bytes: number; sha256: string; precision: Precision; opset: number; calibration: CalibrationDoc | null };
  input: { name: string; dtype: 'uint8'; shape: Shape; layout: 'NHWC'; channels: 'RGB'; range: [0, 255] };
  outputs: { name: string; dtype: 'float32'; shape: Shape; what: string }[];
  classes: string[];
  transform: EvalTransformDoc;
  /** Done inside the graph; recorded so that nobody does it twice. */
  normalization: { inGraph: true; kind: Preprocess['kind']; networkChannels: 'RGB' | 'BGR'; scale: number; mean: number[]; std: number[]; formula: string };
  backbone: { arch: string; format: Variant['format']; dim: number; weightsSha256: string; weightsFile: string };
  features: FeaturesDoc;
  head: { file: string; epoch: number; dim: number; classes: number; transform: HeadTransform | null };
  accuracy: {
    /** 'cv': a sweep run chosen by cross-validation on train (no val split took part); valAcc is then its CV score. */
    split: 'val' | 'cv';
    images: number | null;
    /** Of the exported head (its epoch), on the run's val split, or its cross-validated score. */
    valAcc: number | null;
    best: { epoch: number; valAcc: number };
    final: { epoch: number; valAcc: number };
    note: string;
  };
  fingerprint: Fingerprint;
  fingerprintId: string | null;
  /** Present when the run's preset averages test-time views (probe: the mirrored eval view). */
  testTimeViews: TestTimeViewsDoc | null;
}

export function evalTransformDoc(preset: Preset): EvalTransformDoc {
  const spec = preset.evalSpec;
  const method = 'bilinear, antialiased when shrinking (Pillow 9.4 Image.resize BILINEAR, as torchvision Resize on PIL images)';
  const steps = ['decode the photo: EXIF orientation applied, converted to sRGB, alpha flattened on black, 8-bit RGB'];
  if (spec.resize.kind === 'exact') steps.push(`resize to ${spec.resize.width}x${spec.resize.height} (aspect ratio not kept), ${method}`);
  else steps.push(`resize so that the shorter side is ${spec.resize.size} (longer side floor(${spec.resize.size} * long / short)), ${method}`);
  const offsets = 'left = round((width - size) / 2), top = round((height - size) / 2), halves to even';
  if (spec.crop !== undefined) steps.push(`center crop ${spec.crop}x${spec.crop} (${offsets})`);
  steps.push(`feed uint8 RGB as [N, ${preset.inputSize}, ${preset.inputSize}, 3] (NHWC, 0..255); the model normalises`);
  return {
    inputSize: preset.inputSize,
    decode: 'EXIF orientation applied, sRGB, alpha flattened on black, 8-bit RGB',
    resize: { ...spec.resize, method },
    crop: spec.crop !== undefined ? { kind: 'center', size: spec.crop, offsets } : null,
    channelOrder: 'RGB',
    layout: 'NHWC',
    steps,
  };
}

export function normalizationDoc(p: Preprocess): ModelSidecar['normalization'] {
  return {
    inGraph: true,
    kind: p.kind,
    networkChannels: p.bgr ? 'BGR' : 'RGB',
    scale: p.scale,
    mean: [...p.mean],
    std: [...p.std],
    formula: p.kind === 'caffe' ? 'reorder to BGR, then x - mean (float32)' : '(x / 255 - mean) / std per channel (float32)',
  };
}

export function outputsDoc(classes: number, dim: number): ModelSidecar['outputs'] {
  return [
    { name: IO.probabilities, dtype: 'float32', shape: ['N', classes], what: 'softmax of logits; columns are `classes` in order' },
    { name: IO.logits, dtype: 'float32', shape: ['N', classes], what: 'the head\'s scores before softmax (average these over test-time views)' },
    { name: IO.features, dtype: 'float32', shape: ['N', dim], what: 'the frozen backbone\'s pooled features (before the head\'s transform)' },
  ];
}

export function inputDoc(size: number): ModelSidecar['input'] {
  return { name: IO.input, dtype: 'uint8', shape: ['N', size, size, 3], layout: 'NHWC', channels: 'RGB', range: [0, 255] };
}

export function featuresDoc(f: FeatureSpec, dim: number): FeaturesDoc {
  const gem = f.pool.some((p) => p !== 'avg') ? ` (gemP: (mean over the map of max(x, ${GEM_EPS})^P)^(1/P) per channel)` : '';
  return { pool: [...f.pool], layers: [...f.layers], dim, what: `${describeFeatures(f)}, concatenated in this order${gem}` };
}

/**
 * What predict and eval do with the preset's test-time views, spelled out for a caller of the model;
 * null for a preset without any. The run's val accuracy was measured this way too: extract stores
 * the preset's test-time views of every val image (the cache's 'tta' features) and train averages them.
 */
export function testTimeViewsDoc(preset: Preset): TestTimeViewsDoc | null {
  const extra = preset.testViewSpecs;
  if (extra.length === 0) return null;
  const views = 1 + extra.length;
  return {
    views,
    extra: extra.map((v) => ({ ...v })),
    how: `predict and eval classify each image by ${views} views: the eval view above, and ${extra.map((v) => v.what).join('; and ')}. ` +
      `To match them: run the ${views} views of an image through the model (one batch), average their \`logits\` rows, ` +
      'then take the softmax. The eval view\'s `probabilities` alone is the cheaper approximation.',
  };
}

/**
 * metadata_props entries: every fact of model.json but the model file's own size and hash, and the
 * export time (so that exporting the same run twice gives the same bytes).
 */
export function metadataEntries(s: Omit<ModelSidecar, 'model'> & { model: Pick<ModelSidecar['model'], 'precision' | 'opset' | 'calibration'> }): [string, string][] {
  return Object.entries(s).filter(([k]) => k !== 'createdAt').map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]);
}

/** Reads and checks a model.json (the class names above all), for tests and tools. */
export async function readModelSidecar(file: string): Promise<ModelSidecar> {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new InputError(file, undefined, `cannot read a viewprobe model.json (${errorMessage(e)})`);
  }
  if (j.format !== MODEL_FORMAT) throw new InputError(file, undefined, `not a viewprobe model.json (format ${JSON.stringify(j.format)})`);
  if (j.version !== MODEL_VERSION) throw new InputError(file, undefined, `model.json version ${JSON.stringify(j.version)} is not supported (this viewprobe reads ${MODEL_VERSION}): export the run again with this viewprobe`);
  const c = j.classes;
  if (!Array.isArray(c) || c.length === 0 || !c.every((x) => typeof x === 'string')) throw new InputError(file, undefined, 'classes must be a non-empty list of names');
  return j as unknown as ModelSidecar;
}
