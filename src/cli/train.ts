// `viewprobe train`: stage two. Reads ONLY the feature cache (never the backbone, an image or the
// weights), trains the linear head with the seed's recipe, and writes the run directory:
//   head-best.json  head-last.json  history.json  options.json
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { UserError } from '../errors.js';
import { formatLr, pct } from '../format.js';
import { log, printJson, printText } from '../log.js';
import { RUN_FILES, checkRunTarget, writeRun, type CacheInfoLike } from '../run/run.js';
import type { trainBuilder } from './commands.js';
import type { ArgsOf } from './options.js';
import { readTrainingSplits, type CacheReader } from '../train/cache-reader.js';
import { resolveTrainOptions, trainHead, type EpochRecord, type TrainResult } from '../train/loop.js';

export type TrainArgs = ArgsOf<typeof trainBuilder>;

export function epochLine(r: EpochRecord, epochs: number): string {
  const w = String(epochs).length;
  return `Epoch ${String(r.epoch).padStart(w)}  loss ${r.trainLoss.toFixed(2)}  val loss ${r.valLoss.toFixed(2)}  val acc ${pct(r.valAcc)}  lr ${formatLr(r.lr)}`;
}

/**
 * A loss that is no longer a finite number means the head's arithmetic has overflowed: every later
 * epoch, and any head saved from the run, would be NaN. Training stops there and no run is written.
 */
export function checkFinite(r: EpochRecord, lr: number): void {
  const bad = !Number.isFinite(r.trainLoss) ? `training loss is ${r.trainLoss}` : !Number.isFinite(r.valLoss) ? `validation loss is ${r.valLoss}` : undefined;
  if (bad) {
    throw new UserError(`training diverged at epoch ${r.epoch}: the ${bad}, so no run was written; ` +
      `lower --lr (this run used ${formatLr(lr)}); if it diverges at any rate, the cache's features may be damaged: extract them again`);
  }
}

/** Replaceable in tests, which serve features from memory. */
export interface CacheOpener {
  openCache?: (dir: string) => Promise<CacheReader>;
}

export async function runTrain(a: TrainArgs, io: CacheOpener = {}): Promise<number> {
  const opts = resolveTrainOptions({
    epochs: a.epochs, lr: a.lr, stepSize: a.stepSize, gamma: a.gamma, batch: a.batch, seed: a.seed, views: a.views,
    weightDecay: a.weightDecay, labelSmoothing: a.labelSmoothing,
  });
  const cacheDir = resolve(a.cache);
  const outDir = resolve(a.out);
  await checkRunTarget(outDir, a.force);

  const { info, train, val } = await readTrainingSplits(cacheDir, a.cache, io.openCache);
  if (val.labels.length === 0) throw new UserError(`cache ${a.cache} has no validation split (run viewprobe extract --val DATA --cache ${a.cache})`);

  log(
    `Training a linear head on ${train.labels.length} images (${a.views === 'clean' ? 'clean view' : `${train.views} augmented views${a.views === 'all' ? ' + clean' : ''}`}, ` +
      `${train.dim}-d, ${info.classes.length} classes), ${val.labels.length} val images${val.ttaViews ? ` (clean + ${val.ttaViews} test-time view${val.ttaViews === 1 ? '' : 's'}, averaged)` : ''}: ${opts.epochs} epochs, Adam lr ${formatLr(opts.lr)}, ` +
      `StepLR(${opts.stepSize}, ${opts.gamma}), batch ${opts.batch}, seed ${opts.seed}` +
      `${opts.weightDecay ? `, weight decay ${opts.weightDecay}` : ''}${opts.labelSmoothing ? `, label smoothing ${opts.labelSmoothing}` : ''}`,
  );
  const result = await trainHead(train, val, info.classes, opts, (r) => {
    log(epochLine(r, opts.epochs));
    checkFinite(r, opts.lr);
  });

  await mkdir(outDir, { recursive: true }).catch((e: NodeJS.ErrnoException) => {
    throw new UserError(`cannot create run directory ${a.out} (${e.code ?? e.message})`);
  });
  await writeRun(outDir, cacheDir, info, result);

  if (!a.json) printText([`Best val acc ${pct(result.best.valAcc)} at epoch ${result.best.epoch}`, `Final val acc ${pct(result.last.valAcc)} (epoch ${result.last.epoch})`]);
  log(`Trained in ${result.seconds.toFixed(2)} s (${result.math}); wrote ${a.out}/{${Object.values(RUN_FILES).join(',')}}`);
  if (a.json) printJson(summary(outDir, cacheDir, info, result));
  return 0;
}

function summary(outDir: string, cacheDir: string, info: CacheInfoLike, r: TrainResult) {
  return {
    run: outDir,
    cache: cacheDir,
    fingerprintId: info.fingerprintId,
    classes: info.classes,
    trainImages: r.trainImages,
    valImages: r.valImages,
    views: r.options.views,
    epochs: r.options.epochs,
    best: { epoch: r.best.epoch, valAcc: r.best.valAcc, valLoss: r.best.valLoss },
    final: { epoch: r.last.epoch, valAcc: r.last.valAcc, valLoss: r.last.valLoss },
    seconds: r.seconds,
    math: r.math,
  };
}

