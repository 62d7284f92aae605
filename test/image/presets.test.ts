import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { normalizeInto, seedViewSteps } from '../../src/image/augment.js';
import { decodeImage, type RgbImage } from '../../src/image/decode.js';
import {
  type StandardViewParams,
  getPreset,
  standardCrop,
  standardViewImage,
  standardViewParams,
} from '../../src/image/presets.js';
import { resizeCrop } from '../../src/image/resize.js';
import { SEED_AUGMENT_FILES, type SeedAugmentReference, caffeLut, imagenetLut, loadSeedAugmentReference, pattern, sha256 } from '../helpers/pixels.js';
import { describeShared, sharedPath } from '../helpers/shared.js';

const sameFloats = (a: Float32Array, b: Float32Array): boolean =>
  a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

describeShared('seed preset against seed-augment-reference.json', SEED_AUGMENT_FILES, () => {
  const seed = getPreset('seed');
  let dog: RgbImage;
  let ref: SeedAugmentReference;
  beforeAll(async () => {
    ref = await loadSeedAugmentReference();
    dog = ref.dog;
  });

  it('prepareTrain is Resize([300,300]) and evalImage is Resize([244,244]), bit-exact', () => {
    const prepared = seed.prepareTrain(dog);
    expect([prepared.width, prepared.height]).toEqual([300, 300]);
    expect(sha256(prepared.data)).toBe(ref.get('resize300').sha256_of_uint8_hwc_bytes);
    const ev = seed.evalImage(dog);
    expect([ev.width, ev.height]).toEqual([seed.inputSize, seed.inputSize]);
    expect(sha256(ev.data)).toBe(ref.get('resize244').sha256_of_uint8_hwc_bytes);
  });

  it('renderTrainView writes the pinned pixels, normalised, for every pinned case', () => {
    const prepared = seed.prepareTrain(dog);
    const n = seed.inputSize ** 2 * 3;
    const cases: Array<[string, number, boolean, boolean]> = [
      ['rot30_crop', 30, false, false],
      ['rot30_crop_hflip', 30, true, false],
      ['rot30_crop_vflip', 30, false, true],
      ['rot-45_crop', -45, false, false],
      ['rot-45_crop_hflip', -45, true, false],
      ['rot-45_crop_vflip', -45, false, true],
    ];
    for (const [name, angle, hflip, vflip] of cases) {
      const p = { kind: 'seed', angle, hflip, vflip, gray: false } as const;
      const pinned = seedViewSteps(prepared, p, seed.inputSize);
      expect(sha256(pinned.data), name).toBe(ref.get(name).sha256_of_uint8_hwc_bytes);
      const want = new Float32Array(n);
      normalizeInto(pinned, imagenetLut, want, 0);
      const batch = new Float32Array(3 * n);
      seed.renderTrainView(prepared, p, imagenetLut, batch, n); // the middle slot of a batch of 3
      expect(sameFloats(batch.subarray(n, 2 * n), want), name).toBe(true);
    }
  });

  it('renderEval normalises the 244 eval image', () => {
    const ev = seed.evalImage(dog);
    const got = new Float32Array(seed.inputSize ** 2 * 3);
    seed.renderEval(ev, caffeLut, got, 0);
    const want = new Float32Array(got.length);
    normalizeInto(ev, caffeLut, want, 0);
    expect(sameFloats(got, want)).toBe(true);
    expect(() => seed.renderEval(dog, caffeLut, got, 0)).toThrow(/must be 244x244/);
  });
});

describeShared('standard preset eval = torchvision Resize(256) + CenterCrop(224) + Normalize', ['weights/reference.json', ...['dog', 'eagle', 'giraffe'].flatMap((p) => [`weights/ref-${p}.jpg`, `weights/input-resnet18-${p}.f32`, `weights/input-resnet50-keras-${p}.f32`])], () => {
  // The reference inputs were made by exactly that transform on these photos (SOURCE.md).
  type RefImage = { photo: string; input_file: string; crop_rgb_uint8_mean: number[] };
  // Read inside the tests: this body also runs (for collection) when the shared data is missing.
  const refImage = (model: string, name: string): RefImage =>
    (JSON.parse(readFileSync(sharedPath('weights/reference.json'), 'utf8')) as {
      models: Record<string, { images: Record<string, RefImage> }>;
    }).models[model]!.images[name]!;
  const std = getPreset('standard');
  for (const [model, norm] of [['resnet18', imagenetLut], ['resnet50-keras', caffeLut]] as const) {
    for (const name of ['dog', 'eagle', 'giraffe']) {
      it(`${model} ${name}: bit-exact input tensor`, async () => {
        const im = refImage(model, name);
        const ev = std.evalImage(await decodeImage(sharedPath('weights', im.photo)));
        expect([ev.width, ev.height]).toEqual([224, 224]);
        const means = [0, 0, 0];
        for (let i = 0; i < ev.data.length; i++) means[i % 3]! += ev.data[i]! / (224 * 224);
        means.forEach((m, c) => expect(m).toBeCloseTo(im.crop_rgb_uint8_mean[c]!, 4));
        const got = new Float32Array(224 * 224 * 3);
        std.renderEval(ev, norm, got, 0);
        const bytes = readFileSync(sharedPath('weights', im.input_file));
        expect(sameFloats(got, new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4))).toBe(true);
      });
    }
  }
});

describe('presets', () => {
  it('have the documented sizes and versions, and refuse unknown names', () => {
    expect(getPreset('seed')).toMatchObject({ name: 'seed', inputSize: 244, transformVersion: 1 });
    expect(getPreset('standard')).toMatchObject({ name: 'standard', inputSize: 224, transformVersion: 1 });
    expect(() => getPreset('other' as 'seed')).toThrow(/unknown preset "other"/);
  });

  it('refuse view parameters of the other preset', () => {
    const out = new Float32Array(244 * 244 * 3);
    expect(() => getPreset('seed').renderTrainView(pattern(300, 300, 11), standardViewParams(0, 'h', 0), imagenetLut, out, 0)).toThrow(/seed preset given standard/);
    expect(() => getPreset('standard').renderTrainView(pattern(300, 300, 11), getPreset('seed').viewParams(0, 'h', 0), imagenetLut, out, 0)).toThrow(/standard preset given seed/);
  });

  it('view parameters are pure functions of (seed, hash, view)', () => {
    for (const name of ['seed', 'standard'] as const) {
      const p = getPreset(name);
      expect(p.viewParams(5, 'abc', 2)).toEqual(p.viewParams(5, 'abc', 2));
      expect(p.viewParams(5, 'abc', 2)).not.toEqual(p.viewParams(5, 'abc', 3));
    }
  });

  it('standard eval of a small image: short side to 256, then the centre 224', () => {
    const ev = getPreset('standard').evalImage(pattern(1, 1, 11));
    expect([ev.width, ev.height]).toEqual([224, 224]);
    const wide = getPreset('standard').evalImage(pattern(600, 200, 11));
    expect([wide.width, wide.height]).toEqual([224, 224]);
  });
});

describe('standard train view (RandomResizedCrop 224 + flip)', () => {
  it('crops inside the image, with area 8-100% and aspect 3/4-4/3 (up to rounding), over 2000 views', () => {
    let fallbacks = 0;
    for (let v = 0; v < 2000; v++) {
      const [W, H] = [[512, 384], [384, 512], [231, 512], [300, 300]][v % 4]!;
      const p = standardViewParams(1, 'img', v);
      const c = standardCrop(p, W!, H!);
      expect(c.top).toBeGreaterThanOrEqual(0);
      expect(c.left).toBeGreaterThanOrEqual(0);
      expect(c.top + c.height).toBeLessThanOrEqual(H!);
      expect(c.left + c.width).toBeLessThanOrEqual(W!);
      const area = (c.width * c.height) / (W! * H!);
      // w, h are each rounded to an integer: allow a little slack for the smallest crops
      expect(area).toBeGreaterThan(0.07);
      expect(area).toBeLessThanOrEqual(1);
      if (c.width === W && c.height === H) fallbacks++;
      else {
        expect(c.width / c.height).toBeGreaterThan(0.72);
        expect(c.width / c.height).toBeLessThan(1.39);
      }
    }
    expect(fallbacks).toBeLessThan(200);
  });

  it('falls back to a centre crop clamped to the ratio range when no attempt fits', () => {
    // Draws that ask for the whole area at the extreme ratio never fit a 1000x10 strip.
    const p: StandardViewParams = { kind: 'standard', u: new Array<number>(40).fill(0.999999), hflip: false };
    // in_ratio = 100 > 4/3: h = 10, w = round(10 * 4/3) = 13, left = (1000 - 13) // 2 = 493
    expect(standardCrop(p, 1000, 10)).toEqual({ top: 0, left: 493, height: 10, width: 13 });
    // in_ratio = 0.01 < 3/4: w = 10, h = round(10 / 0.75) = 13, top = (1000 - 13) // 2 = 493
    expect(standardCrop(p, 10, 1000)).toEqual({ top: 493, left: 0, height: 13, width: 10 });
    // A ratio inside the range: the whole image.
    expect(standardCrop({ ...p, u: new Array<number>(40).fill(0.999999) }, 10, 9)).toMatchObject({ height: 9, width: 10 });
  });

  it('renders crop -> Pillow resize to 224 -> flip -> normalise', () => {
    const std = getPreset('standard');
    const img = std.prepareTrain(pattern(320, 240, 11));
    const n = 224 * 224 * 3;
    for (let v = 0; v < 6; v++) {
      const p = standardViewParams(2, 'x', v) as StandardViewParams;
      const c = standardCrop(p, 320, 240);
      const resized = resizeCrop(img, c.left, c.top, c.width, c.height, 224, 224);
      expect(Buffer.from(standardViewImage(img, p).data).equals(Buffer.from(resized.data))).toBe(true);
      const want = new Float32Array(n);
      normalizeInto(resized, imagenetLut, want, 0);
      const got = new Float32Array(n);
      std.renderTrainView(img, p, imagenetLut, got, 0);
      if (!p.hflip) {
        expect(sameFloats(got, want)).toBe(true);
      } else {
        // Row 7, column 0 of the view is column 223 of the resized crop.
        for (let ch = 0; ch < 3; ch++) expect(got[(7 * 224 + 0) * 3 + ch]).toBe(want[(7 * 224 + 223) * 3 + ch]);
        expect(sameFloats(got, want)).toBe(false);
      }
    }
  });
});
