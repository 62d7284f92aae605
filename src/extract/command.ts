// `viewprobe extract`: datasets in, features out, resumable. Parses, wires the pieces, reports.
import { resolve } from 'node:path';
import { loadDataset, type Dataset } from '../data/dataset.js';
import { resolveShard, inShard, describeShard } from '../data/shard.js';
import { FeatureCache } from '../cache/store.js';
import type { Fingerprint } from '../cache/types.js';
import { UserError } from '../errors.js';
import { log, printJson } from '../log.js';
import { openBackbone } from './backbone/index.js';
import { defaultBatch } from './backbone/engine.js';
import { makeNormLut } from './normalize.js';
import { getPreset, type PresetName } from './presets.js';
import { featureSpecFor } from './feature-options.js';
import { extractFeatures, type ExtractSummary, type SplitJob } from './pipeline.js';
import { progressReporter } from './progress.js';
import { writeWeightsHint } from '../eval/run-backbone.js';

export interface ExtractArgs {
  train?: string;
  val?: string;
  cache: string;
  views: number;
  cleanView: boolean;
  preset: PresetName;
  /** Network input side (standard and probe presets). */
  size?: number;
  /** --pool avg|gem|avg,gem and --layers 4|3,4: the pooled features (default: the preset's). */
  pool?: string;
  layers?: string;
  batch?: number;
  seed: number;
  concurrency?: number;
  commitViews: number;
  shard?: string;
  shards?: number;
  strict: boolean;
  json: boolean;
  weights?: string;
  backbone: string;
  engine: 'auto' | 'onnx' | 'tfjs';
  device: 'auto' | 'cpu' | 'cuda';
  threads?: number;
}

/** Exit codes: 0 all done; 3 done but some images were skipped (see the summary); 130 interrupted. */
export const EXIT_SKIPPED = 3;
export const EXIT_INTERRUPTED = 130;

function checkArgs(a: ExtractArgs): void {
  if (!a.train && !a.val) throw new UserError('extract needs --train DATA and/or --val DATA');
  if (!Number.isInteger(a.views) || a.views < 0) throw new UserError(`--views must be a whole number >= 0 (got ${a.views})`);
  if (a.batch !== undefined && (!Number.isInteger(a.batch) || a.batch < 1)) throw new UserError(`--batch must be a whole number >= 1 (got ${a.batch})`);
  if (!Number.isInteger(a.seed)) throw new UserError(`--seed must be a whole number (got ${a.seed})`);
  if (!Number.isInteger(a.commitViews) || a.commitViews < 1) throw new UserError(`--commit-views must be a whole number >= 1 (got ${a.commitViews})`);
  if (a.concurrency !== undefined && (!Number.isInteger(a.concurrency) || a.concurrency < 1)) throw new UserError('--concurrency must be >= 1');
}

/** Train and val must name the same classes in the same order: the label index is the class. */
export function sameClasses(a: Dataset, b: Dataset): void {
  if (a.classes.length !== b.classes.length || a.classes.some((c, i) => c !== b.classes[i])) {
    throw new UserError(`${b.source}: classes [${b.classes.join(', ')}] differ from ${a.source}'s [${a.classes.join(', ')}]`);
  }
}

export async function runExtract(a: ExtractArgs): Promise<number> {
  checkArgs(a);
  const shard = resolveShard({ shard: a.shard, shards: a.shards }, process.env);
  if (shard) log(`extract: ${describeShard(shard)}`);
  // Every list-file problem surfaces here, before the backbone loads or anything is written.
  const train = a.train ? await loadDataset(a.train) : undefined;
  const val = a.val ? await loadDataset(a.val) : undefined;
  if (train && val) sameClasses(train, val);
  const classes = (train ?? val)!.classes;
  for (const d of [train, val]) for (const w of d?.warnings ?? []) log(`warning: ${w}`);

  const preset = getPreset(a.preset, { size: a.size });
  const features = featureSpecFor(preset, a);
  const bb = await openBackbone({ weights: a.weights, backbone: a.backbone, engine: a.engine, device: a.device, threads: a.threads, quiet: false, features });
  let cache: FeatureCache | undefined;
  let stopRequested = false;
  const onSignal = () => {
    if (stopRequested) return;
    stopRequested = true;
    log('\nviewprobe: interrupt: finishing and committing the batches in flight (press Ctrl-C again to abort at once)');
    process.once('SIGINT', () => process.exit(EXIT_INTERRUPTED));
  };
  try {
    cache = await FeatureCache.open(resolve(a.cache), { exclusive: true });
    const fp: Fingerprint = {
      arch: bb.arch, weightsSha256: bb.weightsSha256, preset: preset.name, inputSize: preset.inputSize,
      transformVersion: preset.transformVersion, seed: a.seed, dim: bb.dim, pool: features.pool, layers: features.layers,
    };
    await cache.ensureFingerprint(fp, classes);
    await writeWeightsHint(cache.dir, bb.weightsPath, bb.weightsSha256);
    const jobs: SplitJob[] = [];
    if (train) jobs.push({ split: 'train', items: train.items, views: a.views, clean: a.cleanView });
    if (val) jobs.push({ split: 'val', items: val.items, views: 0, clean: true, tta: true });
    if (!shard) for (const j of jobs) await cache.pruneMembers(j.split, new Set(j.items.map((i) => i.path)));

    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const progress = progressReporter('extract');
    let strictFailure: string | undefined;
    const summary = await extractFeatures(jobs, {
      engine: bb.engine, norm: makeNormLut(bb.preprocess), preset, cache, seed: a.seed, batch: a.batch ?? defaultBatch(bb.engine),
      concurrency: a.concurrency, commitViews: a.commitViews,
      inShard: shard ? (h) => inShard(h, shard) : undefined,
      shouldStop: () => stopRequested || (a.strict && strictFailure !== undefined),
      onProgress: (p) => progress.update(p),
      onFailure: (f) => { strictFailure ??= f.reason; },
    });
    progress.done();
    printSummary(summary, a, bb.engine.engine, bb.engine.backend, bb.engine.device, cache.dir);
    if (summary.interrupted && stopRequested) {
      log(`interrupted: every finished batch is committed; rerun the same command to resume`);
      return EXIT_INTERRUPTED;
    }
    if (a.strict && summary.failed.length > 0) {
      const f = summary.failed[0]!;
      throw new UserError(`--strict: ${summary.failed.length} image(s) could not be read, first: ${f.reason}`);
    }
    return summary.failed.length > 0 ? EXIT_SKIPPED : 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cache?.close();
    await bb.engine.dispose();
  }
}

function printSummary(s: ExtractSummary, a: ExtractArgs, engine: string, backend: string, device: string, cacheDir: string): void {
  const out = {
    images: s.images, otherShard: s.otherShard, views: s.views, extracted: s.extracted, alreadyCached: s.alreadyCached,
    duplicates: s.duplicates, failed: s.failed, seconds: round(s.seconds, 3), viewsPerSecond: round(s.viewsPerSecond, 2),
    engine, backend, device, cache: cacheDir, interrupted: s.interrupted,
  };
  if (a.json) printJson(out);
  const lines = [
    `extract: ${s.images} images${s.otherShard ? ` (${s.otherShard} in other shards)` : ''}, ${s.views} views wanted: ` +
      `${s.extracted} extracted, ${s.alreadyCached} already cached, ${s.failed.length} images failed`,
    `  ${round(s.seconds, 1)} s, ${round(s.viewsPerSecond, 1)} views/s on ${engine} (${backend}, ${device}); cache ${cacheDir}`,
  ];
  for (const f of s.failed.slice(0, 20)) lines.push(`  failed: ${f.reason}`);
  if (s.failed.length > 20) lines.push(`  ... and ${s.failed.length - 20} more (viewprobe cache info --cache ${a.cache})`);
  log(lines.join('\n'));
}

function round(x: number, d: number): number {
  const f = 10 ** d;
  return Math.round(x * f) / f;
}
