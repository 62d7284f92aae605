// Pillow's Image.rotate(angle, NEAREST) as an exact integer map: the inverse matrix it computes in
// double precision and the 16.16 fixed-point walk its C code takes, so that a view kernel can read
// the same source pixel for every output pixel as torchvision's RandomRotation does.

/** Python's float `%` (result has the sign of the divisor). */
function pyMod(a: number, b: number): number {
  const m = a % b;
  if (m !== 0) return (b < 0) !== (m < 0) ? m + b : m;
  return b < 0 ? -0 : 0;
}

/** Python's round(x, 15): correctly rounded; toFixed is exact in V8 and ties cannot occur here. */
function round15(x: number): number {
  return Number(x.toFixed(15));
}

/**
 * Where output pixel (x, y) of `rotate(angle)` reads from: source column `(a2 + x*a0 + y*a1) >> 16`,
 * row `(a5 + x*a3 + y*a4) >> 16` (int32 arithmetic, out-of-range = fill). This covers Pillow's
 * three paths for NEAREST: the transpose fast paths, ImagingScaleAffine (a[1] == a[3] == 0) and
 * affine_fixed; their results are all of this form.
 */
export interface FixedRotation {
  a0: number;
  a1: number;
  a2: number;
  a3: number;
  a4: number;
  a5: number;
}

/** Image.rotate's inverse matrix (the 6 doubles it hands to Image.transform). */
export function pilRotationMatrix(angleDeg: number, w: number, h: number): number[] {
  const angle = -((pyMod(angleDeg, 360.0) * Math.PI) / 180);
  const m = [round15(Math.cos(angle)), round15(Math.sin(angle)), 0.0, round15(-Math.sin(angle)), round15(Math.cos(angle)), 0.0];
  const cx = w / 2.0;
  const cy = h / 2.0;
  const x = -cx - 0;
  const y = -cy - 0;
  m[2] = m[0]! * x + m[1]! * y + m[2]!;
  m[5] = m[3]! * x + m[4]! * y + m[5]!;
  m[2] += cx;
  m[5] += cy;
  return m;
}

const FIX = (v: number): number => Math.floor(v * 65536.0 + 0.5);

function checkFixed(a: number[], x: number, y: number): boolean {
  return Math.abs(x * a[0]! + y * a[1]! + a[2]!) < 32768.0 && Math.abs(x * a[3]! + y * a[4]! + a[5]!) < 32768.0;
}

/** Pillow's rotate(angle, NEAREST, expand=False) of a w x h image, as a fixed-point map; undefined where Pillow would use its float fallback (images beyond 32768 px). */
export function pilRotationFixed(angleDeg: number, w: number, h: number): FixedRotation | undefined {
  const angle = pyMod(angleDeg, 360.0);
  const one = 65536;
  // Image.rotate's fast paths (no center/translate): exact transposes.
  if (angle === 0) return { a0: one, a1: 0, a2: 0, a3: 0, a4: one, a5: 0 };
  if (angle === 180) return { a0: -one, a1: 0, a2: (w - 1) * one, a3: 0, a4: -one, a5: (h - 1) * one };
  if (w === h && angle === 90) return { a0: 0, a1: -one, a2: (w - 1) * one, a3: one, a4: 0, a5: 0 };
  if (w === h && angle === 270) return { a0: 0, a1: one, a2: 0, a3: -one, a4: 0, a5: (h - 1) * one };
  const a = pilRotationMatrix(angleDeg, w, h);
  if (a[1] === 0 && a[3] === 0) {
    // ImagingScaleAffine: COORD of an accumulated double; with |a0| = |a4| = 1 (a pure rotation
    // whose sine rounds to 0) the accumulation is exact, so the map is affine in whole pixels.
    const xo = a[2]! + a[0]! * 0.5;
    const yo = a[5]! + a[4]! * 0.5;
    if (Math.abs(a[0]!) !== 1 || Math.abs(a[4]!) !== 1 || xo !== Math.floor(xo) + 0.5 || yo !== Math.floor(yo) + 0.5) {
      return undefined;
    }
    return { a0: a[0]! * one, a1: 0, a2: Math.floor(xo) * one, a3: 0, a4: a[4]! * one, a5: Math.floor(yo) * one };
  }
  if (!(checkFixed(a, 0, 0) && checkFixed(a, w, h) && checkFixed(a, 0, h) && checkFixed(a, w, 0))) return undefined;
  return {
    a0: FIX(a[0]!),
    a1: FIX(a[1]!),
    a2: FIX(a[2]! + a[0]! * 0.5 + a[1]! * 0.5),
    a3: FIX(a[3]!),
    a4: FIX(a[4]!),
    a5: FIX(a[5]! + a[3]! * 0.5 + a[4]! * 0.5),
  };
}

// ---------------------------------------------------------------------------------------------
// Step-by-step operations (reference path; each equals its PIL/torchvision counterpart)
