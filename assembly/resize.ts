// The two passes of Pillow's 8-bit resampler (see src/image/resize.ts) in WebAssembly SIMD, compiled by
// AssemblyScript at build time (dist/assembly/resize.wasm) and driven by src/image/resize-wasm.ts.
// The same integer arithmetic as Pillow (int32 fixed point, PRECISION_BITS 22, the same rounding and
// clipping), so the result is bit-identical; the channels of a pixel (horizontal pass) or 8 bytes of a
// row (vertical pass) sit in the lanes of one i32x4 operation.
//
// Both passes read up to 8 bytes past the last byte they need and write up to 8 past the last they
// produce; the caller leaves that slack after every region. Addresses are at or above heapBase().

const PRECISION_BITS = 22;
const HALF: i32 = 1 << (PRECISION_BITS - 1);

/** First byte the caller may use. */
export function heapBase(): usize {
  return (__heap_base + 15) & ~15;
}

/** Fixed point to 0..255: shift, then signed saturation to 16 bits and unsigned saturation to 8. */
// @ts-ignore: decorator
@inline function clip8(lo: v128, hi: v128): v128 {
  const s = i16x8.narrow_i32x4_s(i32x4.shr_s(lo, PRECISION_BITS), i32x4.shr_s(hi, PRECISION_BITS));
  return i8x16.narrow_i16x8_u(s, s);
}

/**
 * For each of nRows source rows (from byte src, rowStride bytes apart), outW RGB output pixels:
 * out[px] = clip8(HALF + Σ_t src[(xmin + t) px] · kk[t]) per channel, where bounds[2x] = xmin and
 * bounds[2x+1] = the number of taps, and output pixel x's taps start at kk + x·ksize.
 */
export function hpass(src: usize, rowStride: usize, nRows: u32, out: usize, outW: u32, bounds: usize, kk: usize, ksize: u32): void {
  let o = out;
  for (let yy: u32 = 0; yy < nRows; yy++) {
    const rowBase = src + <usize>yy * rowStride;
    let bp = bounds, kb = kk;
    for (let xx: u32 = 0; xx < outW; xx++) {
      let p = rowBase + <usize>load<i32>(bp) * 3;
      const n = load<u32>(bp, 4);
      let acc = i32x4.splat(HALF);
      let kp = kb;
      for (let t: u32 = 0; t < n; t++) {
        const px = i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(v128.load32_zero(p)));
        acc = i32x4.add(acc, i32x4.mul(px, i32x4.splat(load<i32>(kp))));
        p += 3;
        kp += 4;
      }
      const s = clip8(acc, acc);
      v128.store32_lane(o, s, 0);
      o += 3;
      bp += 8;
      kb += <usize>ksize << 2;
    }
  }
}

/**
 * For each output row y < outH, its rowBytes bytes = clip8(HALF + Σ_t row(ymin - yShift + t) · kk[t]),
 * rows of the source rowStride bytes apart; bounds and kk as in hpass (per output row).
 */
export function vpass(src: usize, rowStride: usize, out: usize, rowBytes: u32, outH: u32, bounds: usize, kk: usize, ksize: u32, yShift: i32): void {
  for (let yy: u32 = 0; yy < outH; yy++) {
    const by = bounds + (<usize>yy << 3);
    const base = src + <usize>(load<i32>(by) - yShift) * rowStride;
    const n = load<u32>(by, 4);
    const kb = kk + ((<usize>yy * ksize) << 2);
    const o = out + <usize>yy * rowBytes;
    for (let x: u32 = 0; x < rowBytes; x += 8) {
      let acc0 = i32x4.splat(HALF), acc1 = acc0;
      let p = base + x;
      let kp = kb;
      for (let t: u32 = 0; t < n; t++) {
        const v = i16x8.extend_low_i8x16_u(v128.load64_zero(p));
        const w = i32x4.splat(load<i32>(kp));
        acc0 = i32x4.add(acc0, i32x4.mul(i32x4.extend_low_i16x8_u(v), w));
        acc1 = i32x4.add(acc1, i32x4.mul(i32x4.extend_high_i16x8_u(v), w));
        p += rowStride;
        kp += 4;
      }
      v128.store64_lane(o + x, clip8(acc0, acc1), 0);
    }
  }
}
