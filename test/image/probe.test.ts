// The probe preset's views against torchvision's pixels (fixtures/view-reference.json, made by
// fixtures/make_view_reference.py with torchvision 0.14 / Pillow 9.4 from ../shared/weights/ref-dog.jpg),
// and its train view as the composition of the pinned steps.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeImage, type RgbImage } from '../../src/image/decode.js';
import type { NormLut } from '../../src/image/normalize.js';
import { PROBE_DEFAULTS } from '../../src/image/probe.js';
import {
  type StandardViewParams, evalResizeFor, getPreset, probePreset, randomResizedCrop, renderCropView, standardCrop, standardViewParams,
} from '../../src/image/presets.js';
import { UserError } from '../../src/errors.js';
import { imagenetLut, pattern, sha256 } from '../helpers/pixels.js';
import { describeShared, sharedPath } from '../helpers/shared.js';

/** Through this table a view's floats are its bytes (0..255 are exact floats). */
const IDENTITY: NormLut = { lut: Float32Array.from({ length: 768 }, (_, i) => i & 255), srcChannel: [0, 1, 2] };
const bytesOf = (f: Float32Array) => Uint8Array.from(f);

interface Case {
  name: string;
  box?: { top: number; left: number; height: number; width: number; size: number };
  size?: number;
  resize?: number;
  hflip: boolean;
  sha256_of_uint8_hwc_bytes: string;
}
const cases = (): Case[] => (JSON.parse(readFileSync(new URL('./fixtures/view-reference.json', import.meta.url), 'utf8')) as { cases: Case[] }).cases;

describeShared('probe views equal torchvision (ref-dog.jpg)', ['weights/ref-dog.jpg'], () => {
  let dog: RgbImage;
  beforeAll(async () => {
    dog = await decodeImage(sharedPath('weights/ref-dog.jpg'));
  });

  it('resized crops at 224 and 288, plain and mirrored: the kernel the train views use', () => {
    const crops = cases().filter((c) => c.box);
    expect(crops.length).toBe(20);
    for (const c of crops) {
      const { size, ...box } = c.box!;
      const out = new Float32Array(3 * size * size * 3);
      renderCropView(dog, box, size, c.hflip, IDENTITY, out, size * size * 3); // the middle slot of a batch of 3
      expect(sha256(bytesOf(out.subarray(size * size * 3, 2 * size * size * 3))), c.name).toBe(c.sha256_of_uint8_hwc_bytes);
    }
  });

  it('eval view Resize(floor(S/0.875)) + CenterCrop(S) at 224, 288, 320, and the test-time view is its mirror', () => {
    for (const size of [224, 288, 320]) {
      const p = probePreset(size);
      expect(p.inputSize).toBe(size);
      const ev = p.evalImage(dog);
      const want = cases().find((c) => c.name === `eval_${size}`)!;
      expect(evalResizeFor(size)).toBe(want.resize);
      expect(sha256(ev.data), want.name).toBe(want.sha256_of_uint8_hwc_bytes);
      expect(p.testViews).toBe(1);
      // model.json's description of it, as data: reverse axis 2 (width) of the NHWC eval view
      expect(p.testViewSpecs).toEqual([{ op: 'flip', axis: 2, what: expect.stringMatching(/mirrored left to right/) }]);
      const out = new Float32Array(size * size * 3);
      p.renderTestView(ev, 0, IDENTITY, out, 0);
      expect(sha256(bytesOf(out)), `eval_${size}_hflip`).toBe(cases().find((c) => c.name === `eval_${size}_hflip`)!.sha256_of_uint8_hwc_bytes);
      expect(() => p.renderTestView(ev, 1, IDENTITY, out, 0)).toThrow(/1 test-time view/);
    }
  });

  it('a train view is the resized crop of its RandomResizedCrop box, mirrored when drawn so', () => {
    const p = probePreset();
    const size = p.inputSize;
    const n = size * size * 3;
    let flips = 0;
    for (let v = 0; v < 8; v++) {
      const params = p.viewParams(3, 'dog', v) as StandardViewParams;
      const box = randomResizedCrop(params, dog.width, dog.height, PROBE_DEFAULTS.scale);
      const want = new Float32Array(n);
      renderCropView(dog, box, size, params.hflip, imagenetLut, want, 0);
      const got = new Float32Array(n);
      p.renderTrainView(p.prepareTrain(dog), params, imagenetLut, got, 0);
      expect(Buffer.from(got.buffer).equals(Buffer.from(want.buffer)), `view ${v}`).toBe(true);
      if (params.hflip) flips++;
    }
    expect(flips).toBeGreaterThan(0);
    expect(flips).toBeLessThan(8);
  });
});

describe('probe preset', () => {
  it('draws boxes inside the image with the scale range and aspect 3/4-4/3 (up to rounding), over 2000 views', () => {
    const [lo] = PROBE_DEFAULTS.scale;
    for (let v = 0; v < 2000; v++) {
      const [W, H] = [[512, 384], [384, 512], [231, 512], [300, 300]][v % 4]!;
      const c = randomResizedCrop(standardViewParams(1, 'img', v), W!, H!, PROBE_DEFAULTS.scale);
      expect(c.top >= 0 && c.left >= 0 && c.top + c.height <= H! && c.left + c.width <= W!).toBe(true);
      const area = (c.width * c.height) / (W! * H!);
      expect(area).toBeGreaterThan(lo * 0.97);
      expect(area).toBeLessThanOrEqual(1);
    }
  });

  it('with the scale range (0.08, 1) the box is the standard preset\'s', () => {
    for (let v = 0; v < 200; v++) {
      const p = standardViewParams(0, 'h', v);
      expect(randomResizedCrop(p, 400, 300, [0.08, 1])).toEqual(standardCrop(p, 400, 300));
    }
  });

  it('--size: probe and standard take it, seed refuses another size; nonsense sizes are user errors', () => {
    expect(getPreset('probe').inputSize).toBe(PROBE_DEFAULTS.size);
    expect(getPreset('probe', { size: 288 }).inputSize).toBe(288);
    expect(getPreset('standard', { size: 320 }).evalImage(pattern(500, 400, 3))).toMatchObject({ width: 320, height: 320 });
    expect(getPreset('seed', { size: 244 }).inputSize).toBe(244);
    expect(() => getPreset('seed', { size: 288 })).toThrow(UserError);
    for (const bad of [0, 31, 100.5, 5000, Number.NaN]) expect(() => getPreset('probe', { size: bad }), String(bad)).toThrow(/--size must be/);
  });

  it('seed and standard have no test-time views', () => {
    for (const name of ['seed', 'standard'] as const) {
      const p = getPreset(name);
      expect(p.testViews).toBe(0);
      expect(p.testViewSpecs).toEqual([]);
      expect(() => p.renderTestView(pattern(8, 8), 0, imagenetLut, new Float32Array(192), 0)).toThrow(/no test-time views/);
    }
  });
});
