// The two transform presets: what a train view and the eval view of an image are, in pixels.
// "seed" reproduces the tutorial's torchvision pipeline bit for bit; "standard" is torchvision's
// usual ImageNet recipe (RandomResizedCrop 224 + flip; Resize 256 + CenterCrop 224).
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

export type { SeedViewParams } from './augment.js';

/** RandomResizedCrop's random draws, resolved against the image size at render time (see standardCrop). */
export interface StandardViewParams {
  kind: 'standard';
  /** 10 attempts x (scale, log-ratio, top, left) uniforms in [0, 1). */
  u: number[];
  hflip: boolean;
}

export type ViewParams = SeedViewParams | StandardViewParams;

export type PresetName = 'seed' | 'standard';

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
  /** The train views in words (model.json describes test-time views with it). */
  trainDescription: string;
  viewParams(seed: number, hash: string, view: number): ViewParams;
  renderTrainView(prepared: RgbImage, params: ViewParams, norm: NormLut, out: Float32Array, offsetFloats: number): void;
  renderEval(evalImg: RgbImage, norm: NormLut, out: Float32Array, offsetFloats: number): void;
}

export const PRESET_NAMES: readonly PresetName[] = ['seed', 'standard'];

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
  trainDescription: `Resize ${SEED_RESIZE}x${SEED_RESIZE} (bilinear), RandomRotation ±45° (nearest, fill 0), CenterCrop ${SEED_SIZE}, ` +
    'RandomHorizontalFlip 0.5, RandomVerticalFlip 0.5, RandomGrayscale 0.1',
  viewParams: seedViewParams,
  renderTrainView(prepared, params, norm, out, offset) {
    if (params.kind !== 'seed') throw new TypeError(`seed preset given ${params.kind} view parameters`);
    renderSeedView(prepared, params, SEED_SIZE, norm, out, offset);
  },
  renderEval: (evalImg, norm, out, offset) => renderEvalChecked(SEED_SIZE, evalImg, norm, out, offset),
};

// ---------------------------------------------------------------------------------------------
// standard

const STD_SIZE = 224;
const STD_RESIZE = 256;
const RRC_SCALE: readonly [number, number] = [0.08, 1.0];
const RRC_RATIO: readonly [number, number] = [3 / 4, 4 / 3];
const RRC_ATTEMPTS = 10;
const STD_EVAL: EvalSpec = { resize: { kind: 'shorter', size: STD_RESIZE }, crop: STD_SIZE };

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
  const area = height * width;
  const logLo = Math.log(RRC_RATIO[0]);
  const logHi = Math.log(RRC_RATIO[1]);
  for (let t = 0; t < RRC_ATTEMPTS; t++) {
    const [us, ur, ui, uj] = p.u.slice(t * 4, t * 4 + 4) as [number, number, number, number];
    const targetArea = area * (RRC_SCALE[0] + (RRC_SCALE[1] - RRC_SCALE[0]) * us);
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
function normalizeFlipInto(img: RgbImage, flip: boolean, norm: NormLut, out: Float32Array, offset: number): void {
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

/** The standard train view in uint8 (crop, Pillow-exact resize to 224, optional flip), before normalisation. */
export function standardViewImage(prepared: RgbImage, p: StandardViewParams): RgbImage {
  const c = standardCrop(p, prepared.width, prepared.height);
  return resizeCrop(prepared, c.left, c.top, c.width, c.height, STD_SIZE, STD_SIZE);
}

const standardPreset: Preset = {
  name: 'standard',
  inputSize: STD_SIZE,
  transformVersion: 1,
  prepareTrain: (img) => img,
  evalImage: (img) => applyEvalSpec(img, STD_EVAL),
  evalSpec: STD_EVAL,
  trainDescription: `RandomResizedCrop ${STD_SIZE} (scale ${RRC_SCALE.join('-')}, ratio 3/4-4/3, bilinear), RandomHorizontalFlip 0.5`,
  viewParams: standardViewParams,
  renderTrainView(prepared, params, norm, out, offset) {
    if (params.kind !== 'standard') throw new TypeError(`standard preset given ${params.kind} view parameters`);
    normalizeFlipInto(standardViewImage(prepared, params), params.hflip, norm, out, offset);
  },
  renderEval: (evalImg, norm, out, offset) => renderEvalChecked(STD_SIZE, evalImg, norm, out, offset),
};

export function getPreset(name: PresetName): Preset {
  switch (name) {
    case 'seed':
      return seedPreset;
    case 'standard':
      return standardPreset;
    default:
      throw new RangeError(`unknown preset "${String(name)}" (expected seed or standard)`);
  }
}
