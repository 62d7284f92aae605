// The seed's fused train-view kernel (src/image/augment.ts renderSeedView): Pillow's fixed-point
// rotation walk, centre crop, flips and grayscale, normalised through a lookup table, one pass over
// the output pixels. Integer steps and table lookups only, so the floats written are the table's,
// bit for bit, as the JS walk would write them; i32 adds wrap as the JS walk's `| 0` does.
//
// All addresses are byte offsets into this module's memory, at or above heapBase().

/** First byte the caller may use. */
export function heapBase(): usize {
  return (__heap_base + 15) & ~15;
}

// @ts-ignore: decorator
@inline function luma(r: u32, g: u32, b: u32): u32 {
  // Pillow's RGB -> L (Convert.c rgb2l), as augment.ts luma().
  return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
}

/**
 * size x size x 3 float32 at `out` from the w x h RGB bytes at `src`. lut: 768 float32 (channel c at
 * c*256); s0..s2: the source channel each output channel reads; the walk: fixed-point source
 * position of output (0, 0) and its steps per column and per row.
 */
export function seedView(
  src: usize, w: i32, h: i32, lut: usize, out: usize, size: i32,
  x0: i32, y0: i32, dxCol: i32, dyCol: i32, dxRow: i32, dyRow: i32,
  gray: bool, s0: i32, s1: i32, s2: i32,
): void {
  const f0 = load<f32>(lut), f1 = load<f32>(lut, 1024), f2 = load<f32>(lut, 2048);
  let o = out;
  let rowX = x0, rowY = y0;
  for (let r = 0; r < size; r++, rowX += dxRow, rowY += dyRow) {
    let xx = rowX, yy = rowY;
    for (let c = 0; c < size; c++, xx += dxCol, yy += dyCol, o += 12) {
      const xin = xx >> 16, yin = yy >> 16;
      if (<u32>xin >= <u32>w || <u32>yin >= <u32>h) {
        store<f32>(o, f0);
        store<f32>(o, f1, 4);
        store<f32>(o, f2, 8);
        continue;
      }
      const p = src + <usize>((yin * w + xin) * 3);
      if (gray) {
        const l = <usize>luma(<u32>load<u8>(p), <u32>load<u8>(p, 1), <u32>load<u8>(p, 2)) << 2;
        store<f32>(o, load<f32>(lut + l));
        store<f32>(o, load<f32>(lut + l, 1024), 4);
        store<f32>(o, load<f32>(lut + l, 2048), 8);
      } else {
        store<f32>(o, load<f32>(lut + (<usize>load<u8>(p + s0) << 2)));
        store<f32>(o, load<f32>(lut + (<usize>load<u8>(p + s1) << 2), 1024), 4);
        store<f32>(o, load<f32>(lut + (<usize>load<u8>(p + s2) << 2), 2048), 8);
      }
    }
  }
}
