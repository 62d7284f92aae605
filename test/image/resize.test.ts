import { beforeAll, describe, expect, it } from 'vitest';
import { type RgbImage } from '../../src/image/decode.js';
import { crop, resizeBilinear, resizeCrop, resizeShortSide, type ResizeBox } from '../../src/image/resize.js';
import { oracleResample } from '../helpers/resize-oracle.js';
import { SEED_AUGMENT_FILES, type SeedAugmentReference, block, loadSeedAugmentReference, pattern, sha256 } from '../helpers/pixels.js';
import { describeShared } from '../helpers/shared.js';

function channelMeans(img: RgbImage): number[] {
  const s = [0, 0, 0];
  for (let i = 0; i < img.data.length; i++) s[i % 3]! += img.data[i]!;
  const n = img.width * img.height;
  return s.map((v) => v / n);
}

function constant(width: number, height: number, rgb: [number, number, number]): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i += 3) data.set(rgb, i);
  return { data, width, height };
}

describeShared('resize: Pillow 9.4 pixels pinned by torchvision', SEED_AUGMENT_FILES, () => {
  let ref: SeedAugmentReference;
  beforeAll(async () => {
    ref = await loadSeedAugmentReference();
  });

  for (const [name, size] of [['resize244', 244], ['resize300', 300]] as const) {
    it(`${name}: Resize([${size},${size}]) is bit-exact`, () => {
      const r = ref.get(name);
      const out = resizeBilinear(ref.dog, size, size);
      expect([out.height, out.width, 3]).toEqual(r.shape_hwc);
      // Block and means first: on a failure they say where and how much, the hash only that.
      expect(block(out)).toEqual(r.block_rows100_104_cols100_104_rgb);
      channelMeans(out).forEach((m, c) => expect(m).toBeCloseTo(r.channel_mean_rgb[c]!, 5));
      expect(sha256(out.data)).toBe(r.sha256_of_uint8_hwc_bytes);
    });
  }
});

describe('resizeBilinear', () => {
  it('upsamples [0, 255] to width 4 as Pillow does: [0, 64, 191, 255]', () => {
    // Worked by hand from Resample.c: centres 0.25/0.75/1.25/1.75, weights 1 | .75,.25 | .25,.75 | 1,
    // fixed point 2^22 with +2^21 rounding: 255 * 0.25 = 63.75 -> 64.
    const img: RgbImage = { data: new Uint8Array([0, 0, 0, 255, 255, 255]), width: 2, height: 1 };
    const out = resizeBilinear(img, 4, 1);
    expect([...out.data].filter((_, i) => i % 3 === 0)).toEqual([0, 64, 191, 255]);
  });

  it('keeps a constant image constant at every scale, box and aspect', () => {
    const img = constant(37, 23, [3, 128, 254]);
    for (const [w, h, box] of [
      [5, 5, undefined],
      [100, 7, undefined],
      [1, 1, undefined],
      [37, 60, undefined],
      [10, 10, [1.5, 2.25, 30.75, 20] as const],
    ] as const) {
      const out = resizeBilinear(img, w, h, box);
      expect(out.width).toBe(w);
      expect(out.height).toBe(h);
      for (let i = 0; i < out.data.length; i += 3) {
        expect([out.data[i], out.data[i + 1], out.data[i + 2]]).toEqual([3, 128, 254]);
      }
    }
  });

  it('returns an equal copy for the same size, and a crop for an integer box of the output size', () => {
    const img = pattern(20, 15);
    const same = resizeBilinear(img, 20, 15);
    expect(same.data).toEqual(img.data);
    expect(same.data).not.toBe(img.data);
    const boxed = resizeBilinear(img, 8, 6, [3, 4, 11, 10]);
    expect(boxed.data).toEqual(crop(img, 3, 4, 8, 6).data);
  });

  it('only resamples the axis that changes', () => {
    const img = pattern(30, 12);
    const wide = resizeBilinear(img, 13, 12);
    // Each row is resampled independently: row 5 of the result depends on row 5 of the input only.
    const row = { data: img.data.slice(5 * 30 * 3, 6 * 30 * 3), width: 30, height: 1 };
    expect(resizeBilinear(row, 13, 1).data).toEqual(wide.data.slice(5 * 13 * 3, 6 * 13 * 3));
  });

  it('reads pixels outside a box (it is not crop-then-resize), which resizeCrop does not', () => {
    const img = pattern(40, 40);
    const viaBox = resizeBilinear(img, 10, 10, [10, 10, 30, 30]);
    const viaCrop = resizeCrop(img, 10, 10, 20, 20, 10, 10);
    expect(viaCrop.data).toEqual(resizeBilinear(crop(img, 10, 10, 20, 20), 10, 10).data);
    expect(viaBox.data).not.toEqual(viaCrop.data);
  });

  it('refuses bad sizes and boxes with Pillow-like messages', () => {
    const img = pattern(10, 10);
    expect(() => resizeBilinear(img, 0, 5)).toThrow(/height and width must be positive/);
    expect(() => resizeBilinear(img, 5.5, 5)).toThrow(/positive integers/);
    expect(() => resizeBilinear(img, 5, 5, [-1, 0, 5, 5])).toThrow(/box offset can't be negative/);
    expect(() => resizeBilinear(img, 5, 5, [0, 0, 11, 5])).toThrow(/box can't exceed original image size/);
    expect(() => resizeBilinear(img, 5, 5, [6, 0, 5, 5])).toThrow(/box can't be empty/);
  });
});

describe('resizeShortSide (torchvision Resize(int))', () => {
  it('sets the short side and truncates the long one: int(256 * 512 / 384) = 341', () => {
    const out = resizeShortSide(pattern(512, 384), 256);
    expect([out.width, out.height]).toEqual([341, 256]);
    const tall = resizeShortSide(pattern(231, 512), 256);
    expect([tall.width, tall.height]).toEqual([256, 567]); // int(256 * 512 / 231) = int(567.38)
  });

  it('returns the image itself when it already has that size', () => {
    const img = pattern(256, 300);
    expect(resizeShortSide(img, 256)).toBe(img);
  });
});

describe('crop', () => {
  it('copies the region and refuses one outside the image', () => {
    const img = pattern(6, 5);
    const c = crop(img, 2, 1, 3, 2);
    expect([...c.data.subarray(0, 3)]).toEqual([...img.data.subarray((1 * 6 + 2) * 3, (1 * 6 + 2) * 3 + 3)]);
    expect([...c.data.subarray(9, 12)]).toEqual([...img.data.subarray((2 * 6 + 2) * 3, (2 * 6 + 2) * 3 + 3)]);
    expect(() => crop(img, 4, 0, 3, 2)).toThrow(/outside the 6x5 image/);
  });
});

describe('the SIMD resize kernels against the scalar port they replaced (test/helpers/resize-oracle.ts)', () => {
  const random = (width: number, height: number, seed: number): RgbImage => {
    let s = seed;
    const data = Uint8Array.from({ length: width * height * 3 }, () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 24);
    return { data, width, height };
  };
  const same = (a: RgbImage, b: RgbImage, what: string) => {
    expect([a.width, a.height], what).toEqual([b.width, b.height]);
    const i = a.data.findIndex((v, k) => v !== b.data[k]);
    expect(i, `${what}: first differing byte`).toBe(-1);
  };

  it('resizeBilinear: shrinking, enlarging, one axis only, 1x1, rows of any byte length, fractional boxes', () => {
    const cases: [number, number, number, number, ResizeBox?][] = [
      [512, 384, 300, 300], [308, 512, 300, 300], [37, 23, 300, 300], [1, 1, 5, 3], [640, 480, 17, 9],
      [101, 77, 101, 40], [101, 77, 33, 77], [7, 9, 1, 1], [250, 3, 61, 2],
      [200, 150, 90, 70, [10.5, 3.25, 180.75, 149]], [64, 64, 64, 64, [0.5, 0.5, 63.5, 63.5]],
    ];
    cases.forEach(([w, h, ow, oh, box], i) => {
      const img = random(w, h, i + 1);
      same(resizeBilinear(img, ow, oh, box), oracleResample(img, 0, 0, w, h, ow, oh, box ?? [0, 0, w, h]), `${w}x${h} -> ${ow}x${oh}${box ? ` box ${box}` : ''}`);
    });
  });

  it('resizeCrop: crops away from the corner, including the vertical-only case with a left offset', () => {
    const img = random(333, 251, 99);
    const cases: [number, number, number, number, number, number][] = [
      [17, 9, 200, 180, 224, 224], [100, 50, 40, 30, 224, 224], [5, 7, 224, 100, 224, 224], [40, 3, 101, 240, 77, 240],
      [1, 1, 331, 249, 3, 5],
    ];
    for (const [left, top, cw, ch, ow, oh] of cases) {
      same(resizeCrop(img, left, top, cw, ch, ow, oh), oracleResample(img, left, top, cw, ch, ow, oh, [0, 0, cw, ch]), `crop ${left},${top} ${cw}x${ch} -> ${ow}x${oh}`);
    }
  });
});
