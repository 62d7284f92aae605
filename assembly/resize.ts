// Pillow's two 8-bit resampling passes (src/libImaging/Resample.c, ImagingResampleHorizontal_8bpc and
// ImagingResampleVertical_8bpc) in WebAssembly SIMD, driven by src/image/resize.ts, which computes
// the coefficient tables exactly as Pillow does. Every sum is Pillow's int32 fixed point
// (22 fractional bits, rounding half added first), so the pixels are Pillow's bit for bit: integer
// adds do not depend on their order. SIMD lanes carry channels (horizontal pass: R, G, B and one
// unused lane) or 16 consecutive bytes of a row (vertical pass).
//
// All addresses are byte offsets into this module's memory, at or above heapBase(). Callers leave 16
// bytes of slack after every input and output: a pixel is read and written as 4 bytes, and a row of
// the vertical pass as whole 16-byte vectors; what lands past a row's end is overwritten by the next
// row or falls in the slack.

const PRECISION_BITS: u32 = 22;
const HALF: i32 = 1 << (PRECISION_BITS - 1);

/** First byte the caller may use. */
export function heapBase(): usize {
  return (__heap_base + 15) & ~15;
}

// @ts-ignore: decorator
@inline function clip8x4(acc: v128): v128 {
  // >> 22 then saturate to 0..255, as Pillow's clip8: i32 -> i16 (signed) -> u8 (unsigned).
  const s = i32x4.shr_s(acc, PRECISION_BITS);
  const h = i16x8.narrow_i32x4_s(s, s);
  return i8x16.narrow_i16x8_u(h, h);
}

/**
 * Horizontal pass: `rows` rows of RGB pixels starting at `src` (row stride `srcStride` bytes) to
 * `outW` pixels each at `out` (packed). bounds[2x] = first source pixel, bounds[2x+1] = taps;
 * kk[x*ksize + t] = tap weights (int32).
 */
export function horizontal(src: usize, srcStride: usize, rows: u32, out: usize, outW: u32, bounds: usize, kk: usize, ksize: u32): void {
  let o = out;
  for (let y: u32 = 0; y < rows; y++) {
    const row = src + <usize>y * srcStride;
    for (let x: u32 = 0; x < outW; x++) {
      const xmin = load<i32>(bounds + (<usize>x << 3));
      const taps = load<i32>(bounds + (<usize>x << 3), 4);
      let w = kk + ((<usize>x * <usize>ksize) << 2);
      let p = row + <usize>xmin * 3;
      let acc = i32x4.splat(HALF);
      for (let t: i32 = 0; t < taps; t++, p += 3, w += 4) {
        const px = i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(v128.load32_zero(p)));
        acc = i32x4.add(acc, i32x4.mul(px, i32x4.splat(load<i32>(w))));
      }
      v128.store32_lane(o, clip8x4(acc), 0);
      o += 3;
    }
  }
}

/**
 * Vertical pass: `outH` rows of `rowBytes` bytes at `out` (packed), each from the source rows at
 * `src` (stride `srcStride` bytes) that bounds[2y] (already relative to `src`) and bounds[2y+1] name.
 */
export function vertical(src: usize, srcStride: usize, rowBytes: u32, out: usize, outH: u32, bounds: usize, kk: usize, ksize: u32): void {
  const half = i32x4.splat(HALF);
  for (let y: u32 = 0; y < outH; y++) {
    const ymin = load<i32>(bounds + (<usize>y << 3));
    const taps = load<i32>(bounds + (<usize>y << 3), 4);
    const w0 = kk + ((<usize>y * <usize>ksize) << 2);
    const col0 = src + <usize>ymin * srcStride;
    const orow = out + <usize>y * <usize>rowBytes;
    for (let x: usize = 0; x < <usize>rowBytes; x += 16) {
      let a0 = half, a1 = half, a2 = half, a3 = half;
      let p = col0 + x;
      let w = w0;
      for (let t: i32 = 0; t < taps; t++, p += srcStride, w += 4) {
        const v = v128.load(p);
        const k = i32x4.splat(load<i32>(w));
        const lo = i16x8.extend_low_i8x16_u(v);
        const hi = i16x8.extend_high_i8x16_u(v);
        a0 = i32x4.add(a0, i32x4.mul(i32x4.extend_low_i16x8_u(lo), k));
        a1 = i32x4.add(a1, i32x4.mul(i32x4.extend_high_i16x8_u(lo), k));
        a2 = i32x4.add(a2, i32x4.mul(i32x4.extend_low_i16x8_u(hi), k));
        a3 = i32x4.add(a3, i32x4.mul(i32x4.extend_high_i16x8_u(hi), k));
      }
      const s0 = i16x8.narrow_i32x4_s(i32x4.shr_s(a0, PRECISION_BITS), i32x4.shr_s(a1, PRECISION_BITS));
      const s1 = i16x8.narrow_i32x4_s(i32x4.shr_s(a2, PRECISION_BITS), i32x4.shr_s(a3, PRECISION_BITS));
      v128.store(orow + x, i8x16.narrow_i16x8_u(s0, s1));
    }
  }
}
