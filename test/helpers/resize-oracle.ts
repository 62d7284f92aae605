// The scalar resize of commit fdc6450 (Pillow 9.4's Resample.c ported line for line to JS, bit-exact
// against Pillow by the tests of that time), kept as the oracle for the SIMD kernels that replaced its
// two passes (assembly/resize.ts): test/image/resize.test.ts compares them on random images.
import type { RgbImage } from '../../src/image/decode.js';
// The coefficient tables are the code's own (pinned against Pillow's pixels elsewhere): only the passes are old.
import { precomputeCoeffs, type Coeffs } from '../../src/image/resize.js';

const PRECISION_BITS = 22;
const HALF = 1 << (PRECISION_BITS - 1);

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
  if (!data) throw new Error("oracle: nothing to resample");
  return { data, width, height: needVertical ? ysize : yboxLast - yboxFirst };
}

/** The old resampleRect on the rect (x0, y0, width x height) of `img` with a float32 box. */
export function oracleResample(img: RgbImage, x0: number, y0: number, width: number, height: number, xsize: number, ysize: number, box: readonly number[]): RgbImage {
  return resampleRect({ img, x0, y0, width, height }, xsize, ysize, box.map((v) => Math.fround(v)));
}
