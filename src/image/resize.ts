// Pillow 9.4's `Image.resize(size, BILINEAR, box)` for RGB images, ported line for line from
// src/libImaging/Resample.c (precompute_coeffs, normalize_coeffs_8bpc, ImagingResampleInner; the two
// 8bpc passes themselves are SIMD kernels in assembly/resize.ts) and the checks and shortcuts of
// `_resize` in src/_imaging.c and `Image.resize`. Bit-exact equality with Pillow is the point:
// torchvision's Resize on PIL images is this function, so every float and int conversion mirrors
// the C one, including the float32 box and the integer fixed-point accumulation.
import type { RgbImage } from './decode.js';
import { KernelSlot, type KernelModule } from '../wasm.js';

/** Source region (left, top, right, bottom) in pixels; fractional values allowed, as in Pillow. */
export type ResizeBox = readonly [number, number, number, number];

// 32 - 8 (result) - 2 (headroom for negative lobes and sums above one)
const PRECISION_BITS = 22;
const SCALE = 1 << PRECISION_BITS;
const BILINEAR_SUPPORT = 1.0;

function bilinearFilter(x: number): number {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

/** (int) in C: truncation toward zero. */
function cInt(v: number): number {
  return Math.trunc(v);
}

/** The coefficient table of one axis, already in fixed point (exported for the tests' scalar oracle). */
export interface Coeffs {
  ksize: number;
  /** bounds[2*i] = first input index, bounds[2*i+1] = number of taps. */
  bounds: Int32Array;
  kk: Int32Array;
}

/**
 * precompute_coeffs + normalize_coeffs_8bpc. `in0`/`in1` are C floats in Pillow, so they arrive
 * here already rounded to float32; their difference is a float32 subtraction before the division.
 */
export function precomputeCoeffs(inSize: number, in0: number, in1: number, outSize: number): Coeffs {
  const scale = Math.fround(in1 - in0) / outSize;
  const filterscale = scale < 1.0 ? 1.0 : scale;
  const support = BILINEAR_SUPPORT * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  const ss = 1.0 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = in0 + (xx + 0.5) * scale;
    let ww = 0.0;
    let xmin = cInt(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = cInt(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    for (let x = 0; x < xmax; x++) {
      const w = bilinearFilter((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < ksize; x++) {
      let v = x < xmax ? k[x]! : 0;
      if (x < xmax && ww !== 0.0) v /= ww;
      kk[xx * ksize + x] = v < 0 ? cInt(-0.5 + v * SCALE) : cInt(0.5 + v * SCALE);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

/** A copy of the pixels in [left, left+width) x [top, top+height); the region must lie inside. */
export function crop(img: RgbImage, left: number, top: number, width: number, height: number): RgbImage {
  if (
    !Number.isInteger(left) || !Number.isInteger(top) || !Number.isInteger(width) || !Number.isInteger(height) ||
    left < 0 || top < 0 || width < 1 || height < 1 || left + width > img.width || top + height > img.height
  ) {
    throw new RangeError(
      `crop (${left}, ${top}, ${width}x${height}) is outside the ${img.width}x${img.height} image`,
    );
  }
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const s = ((top + y) * img.width + left) * 3;
    data.set(img.data.subarray(s, s + width * 3), y * width * 3);
  }
  return { data, width, height };
}

/** The sub-rectangle of `src` that a resize treats as its whole input (no copy). */
interface SourceRect {
  img: RgbImage;
  x0: number;
  y0: number;
  width: number;
  height: number;
}

/** The two passes' SIMD kernels (assembly/resize.ts). */
interface ResizeKernels extends KernelModule {
  horizontal(src: number, srcStride: number, rows: number, out: number, outW: number, bounds: number, kk: number, ksize: number): void;
  vertical(src: number, srcStride: number, rowBytes: number, out: number, outH: number, bounds: number, kk: number, ksize: number): void;
}
/** 16 bytes of slack after every buffer: the kernels read and write whole pixels and vectors (see assembly/resize.ts). */
const kernels = new KernelSlot<ResizeKernels>('resize', 16);

/**
 * ImagingResampleInner: the horizontal pass (only over the rows the vertical pass will read), then
 * the vertical one, both in the kernels' memory: the source rect's rows go in once, the result comes out once.
 */
function resampleRect(s: SourceRect, xsize: number, ysize: number, box: readonly number[]): RgbImage {
  const needHorizontal = xsize !== s.width || box[0] !== 0 || box[2] !== xsize;
  const needVertical = ysize !== s.height || box[1] !== 0 || box[3] !== ysize;

  const vert = precomputeCoeffs(s.height, box[1]!, box[3]!, ysize);
  // The horizontal pass only produces the rows the vertical pass will read.
  const yboxFirst = vert.bounds[0]!;
  const yboxLast = vert.bounds[ysize * 2 - 2]! + vert.bounds[ysize * 2 - 1]!;
  const rows = yboxLast - yboxFirst;
  const horiz = needHorizontal ? precomputeCoeffs(s.width, box[0]!, box[2]!, xsize) : undefined;
  if (!horiz && !needVertical) return crop(s.img, s.x0, s.y0, s.width, s.height);
  const width = horiz ? xsize : s.width;
  // The vertical pass's row bounds, relative to the first row it reads.
  const vbounds = vert.bounds.slice();
  for (let i = 0; i < vbounds.length; i += 2) vbounds[i] -= yboxFirst;

  // The source rows the passes read, only the rect's columns: packed, `s.width` pixels a row.
  const srcStride = s.width * 3;
  const height = needVertical ? ysize : rows;
  const sizes = [
    rows * srcStride, horiz?.bounds.byteLength ?? 0, horiz?.kk.byteLength ?? 0, vbounds.byteLength, vert.kk.byteLength,
    horiz ? xsize * rows * 3 : 0, needVertical ? width * ysize * 3 : 0,
  ] as const;
  const data = kernels.run(sizes, (k, [srcAt, hb, hk, vb, vk, midAt, vOutAt], mem) => {
    const imgStride = s.img.width * 3;
    const first = (s.y0 + yboxFirst) * imgStride + s.x0 * 3;
    if (srcStride === imgStride) new Uint8Array(mem, srcAt, rows * srcStride).set(s.img.data.subarray(first, first + rows * srcStride));
    else for (let y = 0; y < rows; y++) new Uint8Array(mem, srcAt + y * srcStride, srcStride).set(s.img.data.subarray(first + y * imgStride, first + y * imgStride + srcStride));
    if (horiz) {
      new Int32Array(mem, hb, horiz.bounds.length).set(horiz.bounds);
      new Int32Array(mem, hk, horiz.kk.length).set(horiz.kk);
      k.horizontal(srcAt, srcStride, rows, midAt, xsize, hb, hk, horiz.ksize);
    }
    if (needVertical) {
      new Int32Array(mem, vb, vbounds.length).set(vbounds);
      new Int32Array(mem, vk, vert.kk.length).set(vert.kk);
      if (horiz) k.vertical(midAt, xsize * 3, width * 3, vOutAt, ysize, vb, vk, vert.ksize);
      else k.vertical(srcAt, srcStride, width * 3, vOutAt, ysize, vb, vk, vert.ksize);
    }
    const outAt = needVertical ? vOutAt : midAt;
    return new Uint8Array(mem.slice(outAt, outAt + width * height * 3));
  });
  return { data, width, height };
}

function checkSize(width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`resize: height and width must be positive integers (got ${width}x${height})`);
  }
}

/**
 * Pillow's `img.resize((width, height), Image.BILINEAR, box)`: antialiased when shrinking (the
 * triangle filter's support grows with the reduction factor). `box` is the source region, default
 * the whole image; fractional boxes are honoured the way Pillow does (as C floats).
 */
export function resizeBilinear(img: RgbImage, width: number, height: number, box?: ResizeBox): RgbImage {
  checkSize(width, height);
  const b = box ? box.map((v) => Math.fround(v)) : [0, 0, img.width, img.height].map((v) => Math.fround(v));
  if (b.length !== 4 || b.some((v) => !Number.isFinite(v))) throw new RangeError('resize: box must be 4 finite numbers');
  const [b0, b1, b2, b3] = b as [number, number, number, number];
  // Image.resize: same size and whole-image box is a copy.
  if (width === img.width && height === img.height && b0 === 0 && b1 === 0 && b2 === img.width && b3 === img.height) {
    return { data: img.data.slice(), width, height };
  }
  if (b0 < 0 || b1 < 0) throw new RangeError("resize: box offset can't be negative");
  if (b2 > img.width || b3 > img.height) throw new RangeError("resize: box can't exceed original image size");
  if (Math.fround(b2 - b0) < 0 || Math.fround(b3 - b1) < 0) throw new RangeError("resize: box can't be empty");
  // _resize: an integer box of exactly the output size is a plain crop.
  if (
    b0 - Math.trunc(b0) === 0 && Math.fround(b2 - b0) === width &&
    b1 - Math.trunc(b1) === 0 && Math.fround(b3 - b1) === height
  ) {
    return crop(img, b0, b1, width, height);
  }
  return resampleRect({ img, x0: 0, y0: 0, width: img.width, height: img.height }, width, height, b);
}

/**
 * torchvision's `resized_crop` on a PIL image: `img.crop((left, top, left+w, top+h))` then
 * `resize((width, height), BILINEAR)`. Not the same as resize with a box: the crop's edges clamp
 * the filter, where a box would let it read the pixels just outside. The crop is not copied.
 */
export function resizeCrop(
  img: RgbImage,
  left: number,
  top: number,
  cropW: number,
  cropH: number,
  width: number,
  height: number,
): RgbImage {
  checkSize(width, height);
  if (
    !Number.isInteger(left) || !Number.isInteger(top) || !Number.isInteger(cropW) || !Number.isInteger(cropH) ||
    left < 0 || top < 0 || cropW < 1 || cropH < 1 || left + cropW > img.width || top + cropH > img.height
  ) {
    throw new RangeError(`resizeCrop: crop (${left}, ${top}, ${cropW}x${cropH}) is outside the ${img.width}x${img.height} image`);
  }
  if (cropW === width && cropH === height) return crop(img, left, top, width, height);
  return resampleRect({ img, x0: left, y0: top, width: cropW, height: cropH }, width, height, [0, 0, cropW, cropH]);
}

/**
 * torchvision `Resize(size)` with an int: the short side becomes `size`, the long side
 * `int(size * long / short)`; an image already that size is returned as is.
 */
export function resizeShortSide(img: RgbImage, size: number): RgbImage {
  const { width: w, height: h } = img;
  const [short, long] = w <= h ? [w, h] : [h, w];
  const newLong = Math.trunc((size * long) / short);
  const [nw, nh] = w <= h ? [size, newLong] : [newLong, size];
  if (nw === w && nh === h) return img;
  return resizeBilinear(img, nw, nh);
}
