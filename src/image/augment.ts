// The seed's train view: PIL rotate(angle, NEAREST, fill 0) -> CenterCrop -> hflip -> vflip ->
// grayscale -> normalise, fused into one pass over the output pixels. Pillow evaluates a rotation
// as a 16.16 fixed-point affine map (Geometry.c affine_fixed), so after a handful of integer
// constants per view every output pixel costs two adds and two shifts: no trig, no floats, no
// allocation. The pass itself is a WebAssembly kernel (assembly/view.ts: 0.17 ms per 244² view on
// the SPR Xeon, where this file's JS loop took 0.5). The step-by-step operations are exported too;
// tests prove the fused kernel equals their composition, and that the composition equals
// torchvision's pinned pixels.
import { createHash } from 'node:crypto';
import type { RgbImage } from './decode.js';
import type { NormLut } from './normalize.js';
import { pilRotationFixed } from './rotation.js';
import { KernelSlot, type KernelModule } from '../wasm.js';

export interface SeedViewParams {
  kind: 'seed';
  /** Degrees, counter-clockwise (PIL's sign), in [-45, 45]. */
  angle: number;
  hflip: boolean;
  vflip: boolean;
  gray: boolean;
}

// ---------------------------------------------------------------------------------------------
// View parameters

/**
 * A small deterministic generator (sfc32) seeded from sha256(`seed:hash:view`): the same inputs
 * give the same stream on every machine, and nothing depends on call order or global state.
 */
export class ViewRng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(key: string) {
    const h = createHash('sha256').update(key).digest();
    this.a = h.readUInt32LE(0);
    this.b = h.readUInt32LE(4);
    this.c = h.readUInt32LE(8);
    this.d = h.readUInt32LE(12);
    // Mix away any structure in the first outputs.
    for (let i = 0; i < 12; i++) this.nextU32();
  }

  nextU32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform integer in [lo, hi), as torch.randint(lo, hi). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.uniform() * (hi - lo));
  }
}

export function viewKey(seed: number, hash: string, view: number): string {
  return `${seed}:${hash}:${view}`;
}

/** torchvision's RandomRotation(45), RandomHorizontalFlip(), RandomVerticalFlip(), RandomGrayscale(0.1), in that order. */
export function seedViewParams(seed: number, hash: string, view: number): SeedViewParams {
  const rng = new ViewRng(viewKey(seed, hash, view));
  const angle = -45 + 90 * rng.uniform();
  const hflip = rng.uniform() < 0.5;
  const vflip = rng.uniform() < 0.5;
  const gray = rng.uniform() < 0.1;
  return { kind: 'seed', angle, hflip, vflip, gray };
}

/** PIL `img.rotate(angle, Image.NEAREST, expand=False, fillcolor=(0,0,0))`. */
export function rotateNearest(img: RgbImage, angleDeg: number): RgbImage {
  const { width: w, height: h, data: src } = img;
  const r = pilRotationFixed(angleDeg, w, h);
  if (!r) throw new RangeError(`rotate: ${w}x${h} is beyond Pillow's fixed-point range; not supported`);
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    let xx = r.a2 + y * r.a1;
    let yy = r.a5 + y * r.a4;
    for (let x = 0; x < w; x++, xx += r.a0, yy += r.a3) {
      const xin = (xx | 0) >> 16;
      const yin = (yy | 0) >> 16;
      if (xin >= 0 && xin < w && yin >= 0 && yin < h) {
        const s = (yin * w + xin) * 3;
        const o = (y * w + x) * 3;
        out[o] = src[s]!;
        out[o + 1] = src[s + 1]!;
        out[o + 2] = src[s + 2]!;
      }
    }
  }
  return { data: out, width: w, height: h };
}

/** torchvision CenterCrop(size) offsets on an image at least that large: int(round((h - size) / 2.0)). */
export function centerCropOffset(full: number, size: number): number {
  return pyRound((full - size) / 2.0);
}

/** Python 3's round() to an integer: halves go to the even neighbour. */
export function pyRound(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

export function centerCrop(img: RgbImage, size: number): RgbImage {
  if (img.width < size || img.height < size) {
    throw new RangeError(`centerCrop: ${img.width}x${img.height} is smaller than ${size}`);
  }
  const top = centerCropOffset(img.height, size);
  const left = centerCropOffset(img.width, size);
  const out = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    const s = ((top + y) * img.width + left) * 3;
    out.set(img.data.subarray(s, s + size * 3), y * size * 3);
  }
  return { data: out, width: size, height: size };
}

export function hflip(img: RgbImage): RgbImage {
  const { width: w, height: h, data } = img;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const s = (y * w + x) * 3;
      const o = (y * w + (w - 1 - x)) * 3;
      out[o] = data[s]!;
      out[o + 1] = data[s + 1]!;
      out[o + 2] = data[s + 2]!;
    }
  }
  return { data: out, width: w, height: h };
}

export function vflip(img: RgbImage): RgbImage {
  const { width: w, height: h, data } = img;
  const out = new Uint8Array(data.length);
  const row = w * 3;
  for (let y = 0; y < h; y++) out.set(data.subarray(y * row, (y + 1) * row), (h - 1 - y) * row);
  return { data: out, width: w, height: h };
}

/** Pillow's RGB -> L (Convert.c rgb2l: ITU-R 601-2 luma in 16.16 fixed point, rounded). */
export function luma(r: number, g: number, b: number): number {
  return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
}

/** torchvision rgb_to_grayscale(img, num_output_channels=3) on a PIL image: convert('L'), copied to 3 channels. */
export function grayscale3(img: RgbImage): RgbImage {
  const { data } = img;
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i += 3) {
    out[i] = out[i + 1] = out[i + 2] = luma(data[i]!, data[i + 1]!, data[i + 2]!);
  }
  return { data: out, width: img.width, height: img.height };
}

/** ToTensor + Normalize through the lookup tables, NHWC float32 at `offset` in `out`. */
export function normalizeInto(img: RgbImage, norm: NormLut, out: Float32Array, offset: number): void {
  const { data } = img;
  const n = img.width * img.height * 3;
  if (offset < 0 || offset + n > out.length) {
    throw new RangeError(`normalize: ${n} floats at offset ${offset} do not fit in ${out.length}`);
  }
  const { lut, srcChannel } = norm;
  const s0 = srcChannel[0];
  const s1 = srcChannel[1];
  const s2 = srcChannel[2];
  for (let i = 0, o = offset; i < n; i += 3, o += 3) {
    out[o] = lut[data[i + s0]!]!;
    out[o + 1] = lut[256 + data[i + s1]!]!;
    out[o + 2] = lut[512 + data[i + s2]!]!;
  }
}

/** The seed's train view, one operation at a time (slow; the reference for the fused kernel). */
export function seedViewSteps(prepared: RgbImage, p: SeedViewParams, size: number): RgbImage {
  let img = centerCrop(rotateNearest(prepared, p.angle), size);
  if (p.hflip) img = hflip(img);
  if (p.vflip) img = vflip(img);
  if (p.gray) img = grayscale3(img);
  return img;
}

// ---------------------------------------------------------------------------------------------
// The fused kernel

/** Per-view constants of the fused kernel: the fixed-point source position of output pixel (0, 0) and its steps. */
interface ViewWalk {
  /** Source fixed-point coordinates at output (col 0, row 0). */
  x0: number;
  y0: number;
  /** Steps per output column and per output row. */
  dxCol: number;
  dyCol: number;
  dxRow: number;
  dyRow: number;
}

function planSeedView(prepared: RgbImage, p: SeedViewParams, size: number): ViewWalk | undefined {
  const { width: w, height: h } = prepared;
  const r = pilRotationFixed(p.angle, w, h);
  if (!r) return undefined;
  const top = centerCropOffset(h, size);
  const left = centerCropOffset(w, size);
  // Output (c, r) shows rotated-image pixel (left + (hflip ? size-1-c : c), top + (vflip ? size-1-r : r)).
  const xFirst = left + (p.hflip ? size - 1 : 0);
  const yFirst = top + (p.vflip ? size - 1 : 0);
  const sx = p.hflip ? -1 : 1;
  const sy = p.vflip ? -1 : 1;
  return {
    x0: r.a2 + xFirst * r.a0 + yFirst * r.a1,
    y0: r.a5 + xFirst * r.a3 + yFirst * r.a4,
    dxCol: sx * r.a0,
    dyCol: sx * r.a3,
    dxRow: sy * r.a1,
    dyRow: sy * r.a4,
  };
}

function checkPrepared(prepared: RgbImage, size: number): void {
  if (prepared.width < size || prepared.height < size) {
    throw new RangeError(`seed view: prepared image ${prepared.width}x${prepared.height} is smaller than the ${size} crop`);
  }
}

/**
 * The seed's train view (rotate, center crop `size`, flips, grayscale) normalised through `norm`
 * into `out` at `offset` (NHWC, size*size*3 floats), in one pass.
 */
export function renderSeedView(
  prepared: RgbImage,
  p: SeedViewParams,
  size: number,
  norm: NormLut,
  out: Float32Array,
  offset: number,
): void {
  checkPrepared(prepared, size);
  if (offset < 0 || offset + size * size * 3 > out.length) {
    throw new RangeError(`seed view: ${size * size * 3} floats at offset ${offset} do not fit in ${out.length}`);
  }
  const walk = planSeedView(prepared, p, size);
  if (!walk) {
    normalizeInto(seedViewSteps(prepared, p, size), norm, out, offset);
    return;
  }
  const { width: w, height: h, data: src } = prepared;
  const floats = size * size * 3;
  // [table | prepared image | view], copied in every call (~25 µs for a 300² image: cheaper than
  // trusting that an array seen before still holds the same pixels).
  viewKernels.run([768 * 4, src.length, floats * 4], (k, [lutAt, srcAt, outAt], mem) => {
    new Float32Array(mem, lutAt, 768).set(norm.lut);
    new Uint8Array(mem, srcAt, src.length).set(src);
    const [s0, s1, s2] = norm.srcChannel;
    k.seedView(srcAt, w, h, lutAt, outAt, size, walk.x0, walk.y0, walk.dxCol, walk.dyCol, walk.dxRow, walk.dyRow, p.gray ? 1 : 0, s0, s1, s2);
    out.set(new Float32Array(mem, outAt, floats), offset);
  });
}

/** The fused kernel's wasm module (assembly/view.ts). */
interface ViewKernels extends KernelModule {
  seedView(src: number, w: number, h: number, lut: number, out: number, size: number,
    x0: number, y0: number, dxCol: number, dyCol: number, dxRow: number, dyRow: number,
    gray: number, s0: number, s1: number, s2: number): void;
}
const viewKernels = new KernelSlot<ViewKernels>('view');

/** lut[c * 256 + v] = v for RGB: through it the float kernel writes a view's bytes unchanged (0..255 are exact floats). */
const IDENTITY_LUT: NormLut = { lut: Float32Array.from({ length: 768 }, (_, i) => i & 255), srcChannel: [0, 1, 2] };

/**
 * The same fused pass, to uint8 RGB (for tests against torchvision's pixels, and for previews): the
 * float kernel itself through an identity table, so the pixels the tests pin are the ones extract uses.
 */
export function renderSeedViewU8(prepared: RgbImage, p: SeedViewParams, size: number, out?: Uint8Array): RgbImage {
  const n = size * size * 3;
  const dst = out ?? new Uint8Array(n);
  if (dst.length < n) throw new RangeError(`seed view: output buffer holds ${dst.length} bytes, needs ${n}`);
  const floats = new Float32Array(n);
  renderSeedView(prepared, p, size, IDENTITY_LUT, floats, 0);
  dst.set(floats);
  return { data: dst, width: size, height: size };
}
