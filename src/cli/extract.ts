// `viewprobe extract`: datasets in, features out, resumable. Parses, wires the pieces, reports.
import { totalmem } from 'node:os';
import { resolve } from 'node:path';
import { loadDataset, type Dataset } from '../data/dataset.js';
import { resolveShard, inShard, describeShard } from '../data/shard.js';
import { FeatureCache } from '../cache/store.js';
import type { Fingerprint } from '../cache/types.js';
import { UserError } from '../errors.js';
import { EXIT } from '../exit.js';
import { round } from '../format.js';
import type { extractBuilder } from './commands.js';
import type { ArgsOf } from './options.js';
import { log, printJson, printText } from '../log.js';
import { openBackbone } from '../backbone/index.js';
import { defaultBatch } from '../backbone/engine.js';
import { makeNormLut } from '../image/normalize.js';
import { getPreset } from '../image/presets.js';
import { featureSpecFor } from './feature-options.js';
import { extractFeatures, type ExtractSummary, type SplitJob } from '../extract/pipeline.js';
import { progressReporter } from '../extract/progress.js';
import { Interrupts } from '../extract/interrupt.js';
import { writeWeightsHint } from '../run/backbone.js';
import { planExtractPrecision } from '../extract/precision.js';

export type ExtractArgs = ArgsOf<typeof extractBuilder>;

/**
 * Peak memory of one view in an engine batch on the CPU, as a multiple of its input tensor (the
 * activations dominate). bench/batch-memory.mjs, onnxruntime, 4 batches in flight of 8 and of 64
 * views at 224 px: peak RSS rose by 4.1 MiB per view for resnet18 (7x the 0.57 MiB input) and by
 * 10.7 MiB for resnet50 (19x).
 */
const CPU_BYTES_PER_INPUT_BYTE = 20;

/**
 * Refuses a batch whose engine batches in flight (`inFlight`: the engine's parallel batches, each
 * with its input buffer and, on the CPU, its activations) would take more than half the memory.
 */
export function checkBatchMemory(batch: number, inputSize: number, inFlight: number, onCpu: boolean, total = totalmem()): void {
  const perView = inputSize * inputSize * 3 * 4 * (onCpu ? CPU_BYTES_PER_INPUT_BYTE : 1);
  const bytes = batch * inFlight * perView;
  const limit = total / 2;
  if (bytes > limit) {
    const fits = Math.max(1, Math.floor(limit / (inFlight * perView)));
    throw new UserError(`--batch ${batch} would need about ${(bytes / 2 ** 30).toFixed(1)} GiB (${inFlight} batches in flight of ${inputSize} px views), ` +
      `more than half of this machine's ${(total / 2 ** 30).toFixed(0)} GiB; use --batch ${fits} or less`);
  }
}

/** Train and val must name the same classes in the same order: the label index is the class. */
export function sameClasses(a: Dataset, b: Dataset): void {
  if (a.classes.length !== b.classes.length || a.classes.some((c, i) => c !== b.classes[i])) {
    throw new UserError(`${b.source}: classes [${b.classes.join(', ')}] differ from ${a.source}'s [${a.classes.join(', ')}]`);
  }
}

export async function runExtract(a: ExtractArgs): Promise<number> {
  if (!a.train && !a.val) throw new UserError('extract needs --train DATA and/or --val DATA');
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
  const precision = await planExtractPrecision(a, resolve(a.cache), a.cache, train?.items, preset);
  const bb = await openBackbone({ weights: a.weights, backbone: a.backbone, engine: a.engine, device: a.device, threads: a.threads, quiet: false, int8: precision.int8, features });
  const batch = a.batch ?? defaultBatch(bb.engine);
  try {
    checkBatchMemory(batch, preset.inputSize, bb.engine.parallel, bb.engine.device === 'cpu');
  } catch (e) {
    await bb.engine.dispose();
    throw e;
  }
  let cache: FeatureCache | undefined;
  const interrupts = new Interrupts();
  try {
    cache = await FeatureCache.open(resolve(a.cache), { exclusive: true });
    const fp: Fingerprint = precision.fingerprint({
      arch: bb.arch, weightsSha256: bb.weightsSha256, preset: preset.name, inputSize: preset.inputSize,
      transformVersion: preset.transformVersion, seed: a.seed, dim: bb.dim, pool: features.pool, layers: features.layers,
    });
    precision.store(cache);
    await cache.ensureFingerprint(fp, classes);
    await writeWeightsHint(cache.dir, bb.weightsPath, bb.weightsSha256);
    const jobs: SplitJob[] = [];
    // Without a val split (in this extract or already in the cache), sweep chooses by cross-validation
    // on train: training images then get the preset's test-time views too, so that held-out folds are
    // scored as eval scores new images (with a val split the sweep chooses on val, and they would cost
    // one view per image for nothing).
    const cacheHasVal = cache.members('val').length > 0; // the val members only: not info()'s scan of the whole cache
    if (train) jobs.push({ split: 'train', items: train.items, views: a.views, clean: a.cleanView, tta: a.cleanView && !val && !cacheHasVal });
    if (val) jobs.push({ split: 'val', items: val.items, views: 0, clean: true, tta: true });
    if (!shard) for (const j of jobs) await cache.pruneMembers(j.split, new Set(j.items.map((i) => i.path)));

    interrupts.install();
    const progress = progressReporter('extract');
    let strictFailure: string | undefined;
    const summary = await extractFeatures(jobs, {
      engine: bb.engine, norm: makeNormLut(bb.preprocess), preset, cache, seed: a.seed, batch,
      concurrency: a.concurrency, commitViews: a.commitViews,
      inShard: shard ? (h) => inShard(h, shard) : undefined,
      shouldStop: () => interrupts.stopRequested || (a.strict && strictFailure !== undefined),
      abort: interrupts.controller.signal,
      onProgress: (p) => progress.update(p),
      onFailure: (f) => { strictFailure ??= f.reason; },
    });
    progress.done();
    printSummary(summary, a, bb.engine.engine, bb.engine.backend, bb.engine.device, cache.dir);
    if (summary.interrupted && interrupts.stopRequested) {
      log(`interrupted: ${summary.extracted} views committed; rerun the same command to resume`);
      return EXIT.interrupted;
    }
    if (a.strict && summary.failed.length > 0) {
      const f = summary.failed[0]!;
      throw new UserError(`--strict: ${summary.failed.length} image(s) could not be read, first: ${f.reason}`);
    }
    return summary.failed.length > 0 ? EXIT.someFailed : 0;
  } finally {
    await cache?.close();
    await bb.engine.dispose();
    // Last: a Ctrl-C while closing must not kill the process by signal halfway through.
    interrupts.remove();
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
  // with --json the JSON is the result on stdout; the human summary still goes to the log
  if (a.json) log(lines.join('\n'));
  else printText(lines);
}
