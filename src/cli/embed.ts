// `viewprobe embed IMAGE...`: the backbone features of single photos through a preset's EVAL
// transform. The geometry comes from the preset, the normalisation from the weights. An unreadable
// image is reported on stderr and skipped; the others are still processed (exit code 3, as extract and predict).
import { openBackbone } from '../backbone/index.js';
import { embedImages } from '../extract/embed-images.js';
import { makeNormLut } from '../image/normalize.js';
import { getPreset } from '../image/presets.js';
import { featureSpecFor } from './feature-options.js';
import { UserError } from '../errors.js';
import { log, printJson } from '../log.js';
import { planEmbedPrecision } from '../extract/precision.js';
import type { embedBuilder } from './commands.js';
import type { ArgsOf } from './options.js';

export type EmbedArgs = ArgsOf<typeof embedBuilder>;

/** The shortest decimal that reads back as the same float32 (JSON stays exact but short). */
export function float32String(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  for (let p = 6; p < 9; p++) {
    const v = Number(x.toPrecision(p));
    if (Math.fround(v) === x) return v;
  }
  return Number(x.toPrecision(9));
}

export interface EmbedResult {
  image: string;
  features: Float32Array;
}

export async function runEmbed(opts: EmbedArgs): Promise<number> {
  if (!opts.images?.length) throw new UserError('name at least one image');
  const preset = getPreset(opts.preset ?? 'seed', { size: opts.size });
  const precision = planEmbedPrecision(opts, preset);
  const bb = await openBackbone({
    features: featureSpecFor(preset, opts),
    ...(precision.int8 ? { int8: precision.int8 } : {}),
    ...(opts.weights !== undefined ? { weights: opts.weights } : {}),
    ...(opts.backbone !== undefined ? { backbone: opts.backbone } : {}),
    ...(opts.engine !== undefined ? { engine: opts.engine } : {}),
    ...(opts.device !== undefined ? { device: opts.device } : {}),
    ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
  });
  const results: EmbedResult[] = [];
  let failed = 0;
  try {
    for await (const chunk of embedImages(opts.images, { engine: bb.engine, preset, norm: makeNormLut(bb.preprocess) })) {
      for (const r of chunk) {
        if ('error' in r) {
          log(`viewprobe: ${r.error}`);
          failed++;
        } else {
          results.push({ image: r.path, features: r.features });
        }
      }
    }
  } finally {
    await bb.engine.dispose();
  }

  if (opts.json) {
    printJson(results.map((r) => ({ image: r.image, features: Array.from(r.features, float32String) })));
  } else {
    for (const r of results) process.stdout.write(summary(r) + '\n');
  }
  if (failed) log(`viewprobe: ${failed} of ${opts.images.length} image${opts.images.length === 1 ? '' : 's'} could not be read`);
  // 3, as extract and predict: done, but some inputs were skipped.
  return failed ? 3 : 0;
}

function summary(r: EmbedResult): string {
  const f = r.features;
  let sq = 0;
  let sum = 0;
  let zeros = 0;
  for (const v of f) {
    sq += v * v;
    sum += v;
    if (v === 0) zeros++;
  }
  const first = Array.from(f.subarray(0, 8), (v) => v.toFixed(4)).join(' ');
  return `${r.image}: ${f.length}-d, L2 norm ${Math.sqrt(sq).toFixed(4)}, mean ${(sum / f.length).toFixed(4)}, ` +
    `zeros ${zeros}, first 8: ${first}`;
}
