// The transform presets: what a train view and the eval view of an image are, in pixels.
// "seed" reproduces the tutorial's torchvision pipeline bit for bit; "standard" is torchvision's
// usual ImageNet recipe (RandomResizedCrop 224 + flip; Resize 256 + CenterCrop 224); "probe"
// (probe.ts) is the one measured best for a frozen linear head, with test-time views.
// Train and eval views of a preset share one input size, so they can share batches.
import type { RgbImage } from './decode.js';
import type { NormLut } from './normalize.js';
import {
  type SeedViewParams,
  ViewRng,
  centerCrop,
  normalizeInto,
  pyRound,
  renderSeedView,
  seedViewParams,
  viewKey,
} from './augment.js';
import { resizeBilinear, resizeCrop, resizeShortSide } from './resize.js';
import type { FeatureSpec } from '../feature-spec.js';
import { UserError } from '../errors.js';
import { PROBE_DEFAULTS, PROBE_TRANSFORM_VERSION } from './probe.js';

export type { SeedViewParams } from './augment.js';

/** RandomResizedCrop's random draws, resolved against the image size at render time (see standardCrop). */
export interface StandardViewParams {
  kind: 'standard';
  /** 10 attempts x (scale, log-ratio, top, left) uniforms in [0, 1). */
  u: number[];
  hflip: boolean;
}

export type ViewParams = SeedViewParams | StandardViewParams;

export type PresetName = 'seed' | 'standard' | 'probe';

/**
 * The eval transform as data, for code outside viewprobe that must reproduce it (export's model.json,
 * the browser page): resize with Pillow's bilinear filter (antialiased when shrinking, as torchvision's
 * Resize on PIL images), then an optional center crop. evalImage() is this, run.
 */
export interface EvalSpec {
  /** `exact`: to width x height, aspect ratio not kept; `shorter`: shorter side to `size`, longer side trunc(size * long / short). */
  resize: { kind: 'exact'; width: number; height: number } | { kind: 'shorter'; size: number };
  /** Center crop to crop x crop, offsets round((side - crop) / 2) with Python's round; absent: none. */
  crop?: number;
}

export function applyEvalSpec(img: RgbImage, spec: EvalSpec): RgbImage {
  const r = spec.resize;
  const resized = r.kind === 'exact' ? resizeBilinear(img, r.width, r.height) : resizeShortSide(img, r.size);
  return spec.crop === undefined ? resized : centerCrop(resized, spec.crop);
}

/**
 * A test-time view as data, for code outside viewprobe that must make it (export's model.json, the
 * browser page, a Python service): `flip` reverses axis `axis` of the eval view's uint8 `image` input
 * [N, S, S, 3] (NHWC: 1 height, 2 width), so axis 2 is the left-right mirror. `what` says the same in
 * words, for people. renderTestView renders these, so the data cannot drift from the pixels.
 */
export interface TestViewSpec {
  op: 'flip';
  /** Only the width axis so far: the one view any preset makes. */
  axis: 2;
  what: string;
}

/** A test-time view's pixels from the eval view's, normalised into `out` (the one place a TestViewSpec is made). */
function renderTestViewSpec(view: TestViewSpec, evalImg: RgbImage, norm: NormLut, out: Float32Array, offset: number): void {
  switch (view.op) {
    case 'flip':
      normalizeFlipInto(evalImg, true, norm, out, offset); // axis 2, the width: the only axis the type allows
      return;
    default: {
      // A new op must be drawn here: never leave `out` holding the previous view's floats.
      const op: never = view.op;
      throw new Error(`test-time view op ${String(op)} is not implemented`);
    }
  }
}

export interface Preset {
  name: PresetName;
  /** 244 seed, 224 standard: train and eval views share this size, so they share batches. */
  inputSize: number;
  /** Bump when pixels change. */
  transformVersion: number;
  /** Once per image: seed = Pillow-exact resize to 300x300; standard = the image itself. */
  prepareTrain(img: RgbImage): RgbImage;
  /** The eval transform in uint8: seed = resize to 244x244; standard = Resize(256) + CenterCrop(224). */
  evalImage(img: RgbImage): RgbImage;
  evalSpec: EvalSpec;
  viewParams(seed: number, hash: string, view: number): ViewParams;
  renderTrainView(prepared: RgbImage, params: ViewParams, norm: NormLut, out: Float32Array, offsetFloats: number): void;
  renderEval(evalImg: RgbImage, norm: NormLut, out: Float32Array, offsetFloats: number): void;
  /**
   * Extra test-time views of an eval image beside the clean one (0: none). extract stores them for
   * val and `eval --data` images; eval and predict average the logits of the clean view and these.
   */
  testViews: number;
  /** Test-time view t (0 <= t < testViews), drawn from evalImage's output. */
  renderTestView(evalImg: RgbImage, t: number, norm: NormLut, out: Float32Array, offsetFloats: number): void;
  /** The test-time views as data, one per view, in order (model.json's testTimeViews.extra repeats them). */
  testViewSpecs: readonly TestViewSpec[];
  /** Pooled features extract asks the backbone for unless told otherwise (absent: average pool of layer4). */
  features?: FeatureSpec;
}

export interface PresetOptions {
  /** Network input side (--size); seed's is fixed at 244. */
  size?: number;
}

export const PRESET_NAMES: readonly PresetName[] = ['seed', 'standard', 'probe'];

function noTestViews(): never {
  throw new RangeError('this preset has no test-time views');
}

// ---------------------------------------------------------------------------------------------
// seed

const SEED_RESIZE = 300;
const SEED_SIZE = 244;
const SEED_EVAL: EvalSpec = { resize: { kind: 'exact', width: SEED_SIZE, height: SEED_SIZE } };

function renderEvalChecked(size: number, evalImg: RgbImage, norm: NormLut, out: Float32Array, offset: number): void {
  if (evalImg.width !== size || evalImg.height !== size) {
    throw new RangeError(`eval view must be ${size}x${size}, got ${evalImg.width}x${evalImg.height}`);
  }
  normalizeInto(evalImg, norm, out, offset);
}

const seedPreset: Preset = {
  name: 'seed',
  inputSize: SEED_SIZE,
  transformVersion: 1,
  prepareTrain: (img) => resizeBilinear(img, SEED_RESIZE, SEED_RESIZE),
  evalImage: (img) => applyEvalSpec(img, SEED_EVAL),
  evalSpec: SEED_EVAL,
  viewParams: seedViewParams,
  renderTrainView(prepared, params, norm, out, offset) {
    if (params.kind !== 'seed') throw new TypeError(`seed preset given ${params.kind} view parameters`);
    renderSeedView(prepared, params, SEED_SIZE, norm, out, offset);
  },
  renderEval: (evalImg, norm, out, offset) => renderEvalChecked(SEED_SIZE, evalImg, norm, out, offset),
  testViews: 0,
  renderTestView: noTestViews,
  testViewSpecs: [],
};

// ---------------------------------------------------------------------------------------------
// standard

const STD_SIZE = 224;
/** Eval: the short side to size / 0.875 (256 for 224, as torchvision and timm: floor), then the centre size x size. */
export const EVAL_CROP_FRACTION = 0.875;
export const evalResizeFor = (size: number): number => Math.floor(size / EVAL_CROP_FRACTION + 1e-9);
export const RRC_SCALE: readonly [number, number] = [0.08, 1.0];
const RRC_RATIO: readonly [number, number] = [3 / 4, 4 / 3];
const RRC_ATTEMPTS = 10;

export function standardViewParams(seed: number, hash: string, view: number): StandardViewParams {
  const rng = new ViewRng(viewKey(seed, hash, view));
  const u: number[] = [];
  for (let i = 0; i < RRC_ATTEMPTS * 4; i++) u.push(rng.uniform());
  return { kind: 'standard', u, hflip: rng.uniform() < 0.5 };
}

export interface CropRect {
  top: number;
  left: number;
  height: number;
  width: number;
}

/** torchvision 0.14 RandomResizedCrop.get_params(img, scale=(0.08, 1), ratio=(3/4, 4/3)), fed our draws. */
export function standardCrop(p: StandardViewParams, width: number, height: number): CropRect {
  return randomResizedCrop(p, width, height, RRC_SCALE);
}

/** RandomResizedCrop.get_params(img, scale, ratio=(3/4, 4/3)) fed our draws (scale[0] <= scale[1] <= 1). */
export function randomResizedCrop(p: StandardViewParams, width: number, height: number, scale: readonly [number, number]): CropRect {
  const area = height * width;
  const logLo = Math.log(RRC_RATIO[0]);
  const logHi = Math.log(RRC_RATIO[1]);
  for (let t = 0; t < RRC_ATTEMPTS; t++) {
    const [us, ur, ui, uj] = p.u.slice(t * 4, t * 4 + 4) as [number, number, number, number];
    const targetArea = area * (scale[0] + (scale[1] - scale[0]) * us);
    const aspect = Math.exp(logLo + (logHi - logLo) * ur);
    const w = pyRound(Math.sqrt(targetArea * aspect));
    const h = pyRound(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      // torch.randint(0, n + 1)
      const top = Math.floor(ui * (height - h + 1));
      const left = Math.floor(uj * (width - w + 1));
      return { top, left, height: h, width: w };
    }
  }
  // Fallback: a central crop, clamped to the ratio range.
  const inRatio = width / height;
  let w: number;
  let h: number;
  if (inRatio < RRC_RATIO[0]) {
    w = width;
    h = pyRound(w / RRC_RATIO[0]);
  } else if (inRatio > RRC_RATIO[1]) {
    h = height;
    w = pyRound(h * RRC_RATIO[1]);
  } else {
    w = width;
    h = height;
  }
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w };
}

/** NHWC normalisation of an image, mirrored left-right when `flip`. */
export function normalizeFlipInto(img: RgbImage, flip: boolean, norm: NormLut, out: Float32Array, offset: number): void {
  if (!flip) {
    normalizeInto(img, norm, out, offset);
    return;
  }
  const { width: w, height: h, data } = img;
  if (offset < 0 || offset + w * h * 3 > out.length) {
    throw new RangeError(`normalize: ${w * h * 3} floats at offset ${offset} do not fit in ${out.length}`);
  }
  const { lut, srcChannel } = norm;
  const [s0, s1, s2] = srcChannel;
  let o = offset;
  for (let y = 0; y < h; y++) {
    for (let x = w - 1; x >= 0; x--, o += 3) {
      const s = (y * w + x) * 3;
      out[o] = lut[data[s + s0]!]!;
      out[o + 1] = lut[256 + data[s + s1]!]!;
      out[o + 2] = lut[512 + data[s + s2]!]!;
    }
  }
}

/** The standard train view in uint8 (crop, Pillow-exact resize to size, 224 by default), before normalisation and flip. */
export function standardViewImage(prepared: RgbImage, p: StandardViewParams, size = STD_SIZE, scale: readonly [number, number] = RRC_SCALE): RgbImage {
  const c = randomResizedCrop(p, prepared.width, prepared.height, scale);
  return resizeCrop(prepared, c.left, c.top, c.width, c.height, size, size);
}

/** torchvision's resized_crop(box -> size x size, BILINEAR), mirrored when `flip`, normalised into `out`. */
export function renderCropView(img: RgbImage, c: CropRect, size: number, flip: boolean, norm: NormLut, out: Float32Array, offset: number): void {
  normalizeFlipInto(resizeCrop(img, c.left, c.top, c.width, c.height, size, size), flip, norm, out, offset);
}

/** torchvision's eval transform at `size`: Resize(floor(size / 0.875)) + CenterCrop(size). */
export function centreEvalImage(img: RgbImage, size: number): RgbImage {
  return applyEvalSpec(img, centreEvalSpec(size));
}

export function centreEvalSpec(size: number): EvalSpec {
  return { resize: { kind: 'shorter', size: evalResizeFor(size) }, crop: size };
}

/** RandomResizedCrop(size, scale) + RandomHorizontalFlip; eval Resize(size/0.875) + CenterCrop(size). */
export function rrcPreset(name: PresetName, size: number, scale: readonly [number, number], transformVersion: number): Preset {
  return {
    name,
    inputSize: size,
    transformVersion,
    prepareTrain: (img) => img,
    evalImage: (img) => centreEvalImage(img, size),
    evalSpec: centreEvalSpec(size),
    viewParams: standardViewParams,
    renderTrainView(prepared, params, norm, out, offset) {
      if (params.kind !== 'standard') throw new TypeError(`${name} preset given ${params.kind} view parameters`);
      renderCropView(prepared, randomResizedCrop(params, prepared.width, prepared.height, scale), size, params.hflip, norm, out, offset);
    },
    renderEval: (evalImg, norm, out, offset) => renderEvalChecked(size, evalImg, norm, out, offset),
    testViews: 0,
    renderTestView: noTestViews,
    testViewSpecs: [],
  };
}

/** The probe preset's one test-time view: the eval view mirrored left-right (torchvision's hflip). */
const PROBE_TEST_VIEWS: readonly TestViewSpec[] = [{
  op: 'flip',
  axis: 2,
  what: 'the eval view mirrored left to right: column x of each row becomes column width - 1 - x (reverse the width axis, axis 2 of the NHWC input)',
}];

/** The probe preset (probe.ts): RandomResizedCrop(scale 0.25-1) + flip, one mirrored test-time view. */
export function probePreset(size = PROBE_DEFAULTS.size): Preset {
  const base = rrcPreset('probe', size, PROBE_DEFAULTS.scale, PROBE_TRANSFORM_VERSION);
  return {
    ...base,
    testViews: PROBE_TEST_VIEWS.length,
    renderTestView(evalImg, t, norm, out, offset) {
      const view = PROBE_TEST_VIEWS[t];
      if (view === undefined) throw new RangeError(`the probe preset has ${PROBE_TEST_VIEWS.length} test-time view, not view ${t}`);
      if (evalImg.width !== size || evalImg.height !== size) {
        throw new RangeError(`eval view must be ${size}x${size}, got ${evalImg.width}x${evalImg.height}`);
      }
      renderTestViewSpec(view, evalImg, norm, out, offset);
    },
    testViewSpecs: PROBE_TEST_VIEWS,
    features: PROBE_DEFAULTS.features,
  };
}

/** --size: a whole number of pixels a ResNet can take (its stride is 32). */
export function checkInputSize(size: number): number {
  if (!Number.isInteger(size) || size < 32 || size > 1024) throw new UserError(`--size must be a whole number of pixels from 32 to 1024 (got ${size})`);
  return size;
}

export function getPreset(name: PresetName, opts: PresetOptions = {}): Preset {
  switch (name) {
    case 'seed':
      if (opts.size !== undefined && opts.size !== SEED_SIZE) throw new UserError(`the seed preset is the tutorial's transform at ${SEED_SIZE}px; --size applies to the standard and probe presets`);
      return seedPreset;
    case 'standard':
      return rrcPreset('standard', checkInputSize(opts.size ?? STD_SIZE), RRC_SCALE, 1);
    case 'probe':
      return probePreset(opts.size === undefined ? undefined : checkInputSize(opts.size));
    default:
      throw new UserError(`unknown preset "${String(name)}" (expected ${PRESET_NAMES.join(', ')})`);
  }
}
