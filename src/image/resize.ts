// Pillow 9.4's `Image.resize(size, BILINEAR, box)` for RGB images, ported line for line from
// src/libImaging/Resample.c (precompute_coeffs, normalize_coeffs_8bpc, the two 8bpc passes,
// ImagingResampleInner) and the checks and shortcuts of `_resize` in src/_imaging.c and
// `Image.resize`. Bit-exact equality with Pillow is the point: torchvision's Resize on PIL images
// is this function, so every float and int conversion below mirrors the C one, including the
// float32 box and the integer fixed-point accumulation.
import type { RgbImage } from './decode.js';

/** Source region (left, top, right, bottom) in pixels; fractional values allowed, as in Pillow. */
export type ResizeBox = readonly [number, number, number, number];

// 32 - 8 (result) - 2 (headroom for negative lobes and sums above one)
const PRECISION_BITS = 22;
const HALF = 1 << (PRECISION_BITS - 1);
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

/** The coefficient table of one axis, already in fixed point. */
interface Coeffs {
  ksize: number;
  /** bounds[2*i] = first input index, bounds[2*i+1] = number of taps. */
  bounds: Int32Array;
  kk: Int32Array;
}

/**
 * precompute_coeffs + normalize_coeffs_8bpc. `in0`/`in1` are C floats in Pillow, so they arrive
 * here already rounded to float32; their difference is a float32 subtraction before the division.
 */
function precomputeCoeffs(inSize: number, in0: number, in1: number, outSize: number): Coeffs {
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

function clip8(ss: number): number {
  const v = ss >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * Horizontal pass over rows [rowOffset, rowOffset + outRows) of a source that is the sub-rectangle
 * (sx0, sy0, srcW x ...) of `src`, whose full row stride is `srcStride` pixels.
 */
function horizontalPass(
  src: Uint8Array,
  srcStride: number,
  sx0: number,
  sy0: number,
  rowOffset: number,
  outRows: number,
  outW: number,
  c: Coeffs,
): Uint8Array {
  const out = new Uint8Array(outW * outRows * 3);
  const { ksize, bounds, kk } = c;
  for (let yy = 0; yy < outRows; yy++) {
    const rowBase = ((sy0 + yy + rowOffset) * srcStride + sx0) * 3;
    let o = yy * outW * 3;
    for (let xx = 0; xx < outW; xx++) {
      const xmin = bounds[xx * 2]!;
      const xmax = bounds[xx * 2 + 1]!;
      const kb = xx * ksize;
      // int32 arithmetic, as in C: the weights are non-negative and sum to 2^22, so no sum overflows.
      let ss0 = HALF;
      let ss1 = HALF;
      let ss2 = HALF;
      let p = rowBase + xmin * 3;
      for (let x = 0; x < xmax; x++, p += 3) {
        const w = kk[kb + x]!;
        ss0 = (ss0 + Math.imul(src[p]!, w)) | 0;
        ss1 = (ss1 + Math.imul(src[p + 1]!, w)) | 0;
        ss2 = (ss2 + Math.imul(src[p + 2]!, w)) | 0;
      }
      out[o++] = clip8(ss0);
      out[o++] = clip8(ss1);
      out[o++] = clip8(ss2);
    }
  }
  return out;
}

/** Vertical pass; `bounds` are relative to the first row of `src` (which is `width` pixels wide). */
function verticalPass(
  src: Uint8Array,
  width: number,
  srcStride: number,
  sx0: number,
  sy0: number,
  outH: number,
  c: Coeffs,
  yShift: number,
): Uint8Array {
  const out = new Uint8Array(width * outH * 3);
  const { ksize, bounds, kk } = c;
  const rowBytes = srcStride * 3;
  for (let yy = 0; yy < outH; yy++) {
    const ymin = bounds[yy * 2]! - yShift;
    const ymax = bounds[yy * 2 + 1]!;
    const kb = yy * ksize;
    let o = yy * width * 3;
    const colBase = ((sy0 + ymin) * srcStride + sx0) * 3;
    for (let xx = 0; xx < width; xx++) {
      let ss0 = HALF;
      let ss1 = HALF;
      let ss2 = HALF;
      let p = colBase + xx * 3;
      for (let y = 0; y < ymax; y++, p += rowBytes) {
        const w = kk[kb + y]!;
        ss0 = (ss0 + Math.imul(src[p]!, w)) | 0;
        ss1 = (ss1 + Math.imul(src[p + 1]!, w)) | 0;
        ss2 = (ss2 + Math.imul(src[p + 2]!, w)) | 0;
      }
      out[o++] = clip8(ss0);
      out[o++] = clip8(ss1);
      out[o++] = clip8(ss2);
    }
  }
  return out;
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

function resampleRect(s: SourceRect, xsize: number, ysize: number, box: readonly number[]): RgbImage {
  const needHorizontal = xsize !== s.width || box[0] !== 0 || box[2] !== xsize;
  const needVertical = ysize !== s.height || box[1] !== 0 || box[3] !== ysize;

  const vert = precomputeCoeffs(s.height, box[1]!, box[3]!, ysize);
  // The horizontal pass only produces the rows the vertical pass will read.
  const yboxFirst = vert.bounds[0]!;
  const yboxLast = vert.bounds[ysize * 2 - 2]! + vert.bounds[ysize * 2 - 1]!;

  const horiz = needHorizontal ? precomputeCoeffs(s.width, box[0]!, box[2]!, xsize) : undefined;
  const width = horiz ? xsize : s.width;
  let data: Uint8Array | undefined;
  if (horiz) data = horizontalPass(s.img.data, s.img.width, s.x0, s.y0, yboxFirst, yboxLast - yboxFirst, xsize, horiz);
  if (needVertical) {
    data = data
      ? verticalPass(data, width, width, 0, 0, ysize, vert, yboxFirst)
      : verticalPass(s.img.data, width, s.img.width, s.x0, s.y0, ysize, vert, 0);
  }
  if (!data) return crop(s.img, s.x0, s.y0, s.width, s.height);
  return { data, width, height: needVertical ? ysize : yboxLast - yboxFirst };
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
