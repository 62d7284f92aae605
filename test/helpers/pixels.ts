// What the image-transform tests share: synthetic images, the normalisation tables, and the
// torchvision pixels pinned in ../shared/weights/seed-augment-reference.json.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { decodeImage, type RgbImage } from '../../src/image/decode.js';
import { CAFFE_PREPROCESS, IMAGENET_PREPROCESS, makeNormLut } from '../../src/image/normalize.js';
import { sharedPath } from './shared.js';

export const sha256 = (d: Uint8Array): string => createHash('sha256').update(d).digest('hex');

export const imagenetLut = makeNormLut(IMAGENET_PREPROCESS);
export const caffeLut = makeNormLut(CAFFE_PREPROCESS);

/** A textured test image whose every pixel differs from its neighbours (an LCG, so any seed is reproducible). */
export function pattern(width: number, height: number, seed = 1): RgbImage {
  const data = new Uint8Array(width * height * 3);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    data[i] = (s >>> 16) & 255;
  }
  return { data, width, height };
}

/** One pinned case of seed-augment-reference.json: the uint8 HWC image torchvision produced. */
export interface RefResult {
  name: string;
  /** e.g. ['rotate(-45)', 'CenterCrop(244)', 'vflip'] */
  steps: string[];
  shape_hwc: [number, number, number];
  channel_mean_rgb: [number, number, number];
  block_rows100_104_cols100_104_rgb: number[][][];
  pixels_all_zero: number;
  sha256_of_uint8_hwc_bytes: string;
}

/** Rows 100..104 x columns 100..104, as the reference's `block_rows100_104_cols100_104_rgb`. */
export function block(img: RgbImage): number[][][] {
  const rows: number[][][] = [];
  for (let r = 100; r < 105; r++) {
    const row: number[][] = [];
    for (let c = 100; c < 105; c++) {
      const i = (r * img.width + c) * 3;
      row.push([img.data[i]!, img.data[i + 1]!, img.data[i + 2]!]);
    }
    rows.push(row);
  }
  return rows;
}

/** The shared files loadSeedAugmentReference reads, for describeShared. */
export const SEED_AUGMENT_FILES = ['weights/seed-augment-reference.json', 'weights/ref-dog.jpg'];

export interface SeedAugmentReference {
  /** The decoded photo every pinned case starts from. */
  dog: RgbImage;
  results: RefResult[];
  /** The case of that name; throws when the reference has none (a renamed case must not pass silently). */
  get(name: string): RefResult;
}

export async function loadSeedAugmentReference(): Promise<SeedAugmentReference> {
  const file = sharedPath('weights/seed-augment-reference.json');
  const { results } = JSON.parse(readFileSync(file, 'utf8')) as { results: RefResult[] };
  const byName = new Map(results.map((r) => [r.name, r]));
  return {
    dog: await decodeImage(sharedPath('weights/ref-dog.jpg')),
    results,
    get(name) {
      const r = byName.get(name);
      if (!r) throw new Error(`${file}: no result named "${name}"`);
      return r;
    },
  };
}
