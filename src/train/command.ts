// `viewprobe train`: stage two. Reads ONLY the feature cache (never the backbone, an image or the
// weights), trains the linear head with the seed's recipe, and writes the run directory:
//   head-best.json  head-last.json  history.json  options.json
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { UserError } from '../errors.js';
import { log, printJson } from '../log.js';
import { openCacheForReading, type CacheReader } from './cache-reader.js';
import { saveHead, writeFileAtomic } from './head.js';
import { resolveTrainOptions, trainHead, type EpochRecord, type TrainResult, type ViewMode } from './loop.js';

export interface TrainArgs {
  cache: string;
  out: string;
  epochs: number;
  lr: number;
  stepSize: number;
  gamma: number;
  batch: number;
  seed: number;
  views: ViewMode;
  json: boolean;
}

export const RUN_FILES = {
  best: 'head-best.json',
  last: 'head-last.json',
  history: 'history.json',
  options: 'options.json',
} as const;

/** 0.0005 -> "5e-4", 0.00025 -> "2.5e-4": the tutorial's way of printing the learning rate. */
export function formatLr(lr: number): string {
  return lr.toExponential().replace('e+', 'e');
}

export const pct = (v: number) => `${(v * 100).toFixed(1)}%`;

export function epochLine(r: EpochRecord, epochs: number): string {
  const w = String(epochs).length;
  return `Epoch ${String(r.epoch).padStart(w)}  loss ${r.trainLoss.toFixed(2)}  val loss ${r.valLoss.toFixed(2)}  val acc ${pct(r.valAcc)}  lr ${formatLr(r.lr)}`;
}

/** Replaceable in tests, which serve features from memory. */
export interface CacheOpener {
  openCache?: (dir: string) => Promise<CacheReader>;
}

export async function runTrain(a: TrainArgs, io: CacheOpener = {}): Promise<number> {
  const opts = resolveTrainOptions({
    epochs: a.epochs, lr: a.lr, stepSize: a.stepSize, gamma: a.gamma, batch: a.batch, seed: a.seed, views: a.views,
  });
  const cacheDir = resolve(a.cache);
  const outDir = resolve(a.out);

  const cache = await (io.openCache ?? openCacheForReading)(cacheDir);
  let train, val, info;
  try {
    info = await cache.info();
    train = await cache.readSplit('train');
    val = await cache.readSplit('val');
  } finally {
    await cache.close();
  }
  if (train.labels.length === 0) throw new UserError(`cache ${a.cache} has no training images (run viewprobe extract --train DATA --cache ${a.cache})`);
  if (val.labels.length === 0) throw new UserError(`cache ${a.cache} has no validation split (run viewprobe extract --val DATA --cache ${a.cache})`);

  log(
    `Training a linear head on ${train.labels.length} images (${a.views === 'clean' ? 'clean view' : `${train.views} augmented views${a.views === 'all' ? ' + clean' : ''}`}, ` +
      `${train.dim}-d, ${info.classes.length} classes), ${val.labels.length} val images${val.ttaViews ? ` (clean + ${val.ttaViews} test-time view${val.ttaViews === 1 ? '' : 's'}, averaged)` : ''}: ${opts.epochs} epochs, Adam lr ${formatLr(opts.lr)}, ` +
      `StepLR(${opts.stepSize}, ${opts.gamma}), batch ${opts.batch}, seed ${opts.seed}`,
  );
  const result = await trainHead(train, val, info.classes, opts, (r) => log(epochLine(r, opts.epochs)));

  await mkdir(outDir, { recursive: true }).catch((e: NodeJS.ErrnoException) => {
    throw new UserError(`cannot create run directory ${a.out} (${e.code ?? e.message})`);
  });
  await writeRun(outDir, cacheDir, info, result);

  log(`Best val acc ${pct(result.best.valAcc)} at epoch ${result.best.epoch}`);
  log(`Final val acc ${pct(result.last.valAcc)} (epoch ${result.last.epoch})`);
  log(`Trained in ${result.seconds.toFixed(2)} s (${result.math}); wrote ${a.out}/{${Object.values(RUN_FILES).join(',')}}`);
  if (a.json) printJson(summary(outDir, cacheDir, info, result));
  return 0;
}

interface CacheInfoLike {
  fingerprint: unknown;
  fingerprintId: string;
  classes: string[];
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

async function writeRun(outDir: string, cacheDir: string, info: CacheInfoLike, r: TrainResult): Promise<void> {
  const fp = (info.fingerprint ?? null) as Parameters<typeof saveHead>[2]['fingerprint'];
  const meta = (c: { epoch: number; valAcc: number }) => ({ fingerprint: fp, fingerprintId: info.fingerprintId, epoch: c.epoch, valAcc: c.valAcc });
  await saveHead(resolve(outDir, RUN_FILES.best), r.best.head, meta(r.best));
  await saveHead(resolve(outDir, RUN_FILES.last), r.last.head, meta(r.last));
  const history = {
    format: 'viewprobe-history',
    version: 1,
    epochs: r.history,
    best: { epoch: r.best.epoch, valAcc: r.best.valAcc, valLoss: r.best.valLoss },
    final: { epoch: r.last.epoch, valAcc: r.last.valAcc, valLoss: r.last.valLoss },
  };
  await writeFileAtomic(resolve(outDir, RUN_FILES.history), JSON.stringify(history, null, 1) + '\n');
  const options = {
    format: 'viewprobe-run',
    version: 1,
    command: 'train',
    options: r.options,
    cache: cacheDir,
    fingerprint: fp,
    fingerprintId: info.fingerprintId,
    classes: info.classes,
    trainImages: r.trainImages,
    valImages: r.valImages,
    viewChoices: r.viewChoices,
    math: r.math,
    seconds: r.seconds,
    createdAt: new Date().toISOString(),
  };
  await writeFileAtomic(resolve(outDir, RUN_FILES.options), JSON.stringify(options, null, 1) + '\n');
}
