// The command line's surface: every command's options, in one place, with their ranges. Each
// command's arguments type is derived from its builder here (ArgsOf), and its work lives in
// src/cli/<command>.ts, loaded only when that command runs (so that `train` never loads the
// backbone runtimes or the image decoder).
import type { Argv } from 'yargs';
import { PRESET_NAMES } from '../image/presets.js';
import { backboneOptions, capThreads, checkNumber, jsonOption, numberOption, runtimeOptions, SEED } from './options.js';

/**
 * Views and batches far beyond these are typos; an extract batch is also checked against memory
 * when the input size is known. A training batch stages batch x dim floats in the head's wasm
 * memory: 65,536 rows of 2048-d features are 512 MiB, and a batch beyond the training split only
 * means "the whole split".
 */
export const LIMITS = {
  views: { min: 0, max: 1000, int: true },
  extractBatch: { min: 1, max: 1024, int: true },
  concurrency: { min: 1, max: 1024, int: true },
  commitViews: { min: 1, max: 100_000, int: true },
  shards: { min: 1, max: 100_000, int: true },
  epochs: { min: 1, max: 100_000, int: true },
  lr: { min: 0, max: 10, minExclusive: true },
  stepSize: { min: 1, max: 100_000, int: true },
  gamma: { min: 0, max: 1, minExclusive: true },
  // Adam's L2 penalty: beyond 1 it only shrinks the head to zero. Label smoothing of 1 is a uniform target.
  weightDecay: { min: 0, max: 1 },
  labelSmoothing: { min: 0, max: 0.99 },
  trainBatch: { min: 1, max: 65_536, int: true },
  top: { min: 1, max: 100_000, int: true },
  calibrationImages: { min: 1, max: 100_000, int: true },
  trials: { min: 0, max: 100_000, int: true },
  folds: { min: 2, max: 100, int: true },
  workers: { min: 1, max: 1024, int: true },
  // Network input side: a ResNet's stride is 32; beyond 1024 the views only cost memory.
  size: { min: 32, max: 1024, int: true },
} as const;

/** The transform and the pooled features: what the features of an image are (fingerprint fields). */
function viewOptions<T>(y: Argv<T>) {
  return y
    .option('preset', { choices: PRESET_NAMES, default: 'seed' as const, describe: 'views: seed (the tutorial), standard (RandomResizedCrop + flip), probe (best for a linear head, with a test-time flip)' })
    .option('size', numberOption('network input side in pixels (standard: 224, probe: 288; seed is fixed at 244)', LIMITS.size, 'size'))
    .option('pool', { type: 'string', requiresArg: true, describe: 'pooling of the feature maps: avg, gem (GeM, p=3), gemP, or several (avg,gem) concatenated (default avg)' })
    .option('layers', { type: 'string', requiresArg: true, describe: 'ResNet stages whose pooled outputs are concatenated: 4, or 4,3 (default 4)' });
}

/** int8 backbone: extract and embed default to fp32; eval, predict and export to the run's precision. */
function precisionOptions<T>(y: Argv<T>, fallback: string) {
  return y
    .option('precision', { choices: ['fp32', 'int8'] as const, describe: `backbone arithmetic (default: ${fallback}); int8 runs onnxruntime's int8 kernels on the CPU` })
    .option('calibration', { type: 'string', requiresArg: true, describe: 'int8 activation ranges: a calibration.json, or a cache folder holding one' });
}

export const embedBuilder = (y: Argv) =>
  viewOptions(precisionOptions(jsonOption(backboneOptions(y)), 'fp32'))
    .positional('images', { type: 'string', array: true, demandOption: true });

export const extractBuilder = (y: Argv) =>
  viewOptions(precisionOptions(jsonOption(backboneOptions(y)), 'fp32; int8 calibrates on --train, or reuses the cache\'s calibration'))
    .option('calibration-method', { type: 'string', requiresArg: true, describe: 'int8 calibration: minmax, mse or percentile:P (default: see README)' })
    .option('calibration-images', numberOption('int8 calibration: training images, chosen by content hash (default 32)', LIMITS.calibrationImages, 'calibration-images'))
    .option('train', { type: 'string', requiresArg: true, describe: 'training data: folder of class folders, or list file' })
    .option('val', { type: 'string', requiresArg: true, describe: 'validation data' })
    .option('cache', { type: 'string', default: 'cache', requiresArg: true, describe: 'cache directory (LMDB)' })
    .option('views', { ...numberOption('augmented views per training image (K)', LIMITS.views, 'views'), default: 10 })
    .option('clean-view', { type: 'boolean', default: true, describe: 'also keep the eval-transform view of each training image' })
    .option('batch', numberOption('views per engine batch (default: 8 on CPU, 32 on a GPU)', LIMITS.extractBatch, 'batch'))
    .option('seed', { ...numberOption('augmentation seed', SEED, 'seed'), default: 0 })
    .option('concurrency', numberOption('images in flight (default: enough to fill two batches)', LIMITS.concurrency, 'concurrency'))
    .option('commit-views', { ...numberOption('finished views per cache transaction (a kill loses at most these plus the batches in flight)', LIMITS.commitViews, 'commit-views'), default: 64 })
    .option('shard', { type: 'string', requiresArg: true, describe: 'i/n: process a stable subset (also JOB_COMPLETION_INDEX / SLURM_ARRAY_TASK_ID with --shards or their COUNT variables)' })
    .option('shards', numberOption('shard count when the index comes from JOB_COMPLETION_INDEX / SLURM_ARRAY_TASK_ID (or VIEWPROBE_SHARDS)', LIMITS.shards, 'shards'))
    .option('strict', { type: 'boolean', default: false, describe: 'any unreadable image is an error' });

export const trainBuilder = (y: Argv) =>
  jsonOption(y)
    .option('cache', { type: 'string', default: 'cache', requiresArg: true })
    .option('out', { type: 'string', demandOption: true, requiresArg: true, describe: 'run directory to write' })
    .option('force', { type: 'boolean', default: false, describe: 'replace an existing run in --out' })
    .option('epochs', { ...numberOption('epochs', LIMITS.epochs, 'epochs'), default: 50 })
    .option('lr', { ...numberOption('Adam learning rate', LIMITS.lr, 'lr'), default: 1e-3 })
    .option('step-size', { ...numberOption('StepLR: epochs between learning-rate drops', LIMITS.stepSize, 'step-size'), default: 5 })
    .option('gamma', { ...numberOption('StepLR: factor of each drop', LIMITS.gamma, 'gamma'), default: 0.5 })
    .option('batch', { ...numberOption('training batch', LIMITS.trainBatch, 'batch'), default: 64 })
    .option('seed', { ...numberOption('head seed (init, shuffles, view choice)', SEED, 'seed'), default: 0 })
    .option('views', { choices: ['aug', 'clean', 'all'] as const, default: 'aug' as const })
    .option('weight-decay', { ...numberOption('Adam weight decay (L2 penalty added to the gradient, as torch.optim.Adam)', LIMITS.weightDecay, 'weight-decay'), default: 0 })
    .option('label-smoothing', { ...numberOption('label smoothing of the training loss (as torch CrossEntropyLoss)', LIMITS.labelSmoothing, 'label-smoothing'), default: 0 });

export const sweepBuilder = (y: Argv) =>
  jsonOption(y)
    .option('cache', { type: 'string', default: 'cache', requiresArg: true })
    .option('out', { type: 'string', demandOption: true, requiresArg: true, describe: 'run directory to write (the winner, plus sweep.json)' })
    .option('force', { type: 'boolean', default: false, describe: 'replace an existing run in --out' })
    .option('trials', numberOption('random Adam trials beside the fixed ones (default 40)', LIMITS.trials, 'trials'))
    .option('grid', { type: 'string', requiresArg: true, describe: 'explicit grid instead, e.g. "lr=1e-3,3e-3;views=clean,all;transform=none,l2"' })
    .option('folds', { ...numberOption('k of the cross-validation used without a val split (or with --select cv)', LIMITS.folds, 'folds'), default: 5 })
    .option('select', { choices: ['val', 'cv'] as const, describe: 'choose on the val split (default when there is one) or by CV on train' })
    .option('workers', {
      ...numberOption('worker threads (default: all cores)', LIMITS.workers, 'workers'),
      coerce: (v: unknown) => capThreads(checkNumber('workers', LIMITS.workers)(v), 'workers'),
    })
    .option('seed', { ...numberOption('sweep seed (trial draws, folds, head seeds)', SEED, 'seed'), default: 0 });

export const evalBuilder = (y: Argv) =>
  precisionOptions(jsonOption(runtimeOptions(y)), 'the run\'s')
    .option('run', { type: 'string', demandOption: true, requiresArg: true })
    .option('data', { type: 'string', requiresArg: true, describe: 'data never seen in training (list or folder)' })
    .option('cache', { type: 'string', requiresArg: true, describe: 'cache for --data features (default: the run\'s)' })
    .option('report', { type: 'string', requiresArg: true, describe: 'write a self-contained HTML report here' })
    .option('force', { type: 'boolean', default: false, describe: 'replace an existing --report file' });

export const compareBuilder = (y: Argv) =>
  jsonOption(y).positional('runs', { type: 'string', array: true, demandOption: true });

export const predictBuilder = (y: Argv) =>
  precisionOptions(jsonOption(runtimeOptions(y)), 'the run\'s')
    .positional('images', { type: 'string', array: true, demandOption: true })
    .option('run', { type: 'string', demandOption: true, requiresArg: true })
    .option('top', { ...numberOption('classes to show per image', LIMITS.top, 'top'), default: 5 });

export const cacheInfoBuilder = (y: Argv) =>
  jsonOption(y).option('cache', { type: 'string', default: 'cache', requiresArg: true });

export const cacheMergeBuilder = (y: Argv) =>
  jsonOption(y)
    .positional('out', { type: 'string', demandOption: true })
    .positional('inputs', { type: 'string', array: true, demandOption: true });

export const exportBuilder = (y: Argv) =>
  precisionOptions(jsonOption(y), 'the run\'s; int8 with the calibration of the run\'s cache')
    .option('run', { type: 'string', demandOption: true, requiresArg: true })
    .option('out', { type: 'string', demandOption: true, requiresArg: true, describe: 'the .onnx file to write; its sidecar goes beside it (model.onnx -> model.json)' })
    .option('weights', { type: 'string', requiresArg: true, describe: 'the backbone weights the run was trained on (default: the ones recorded beside its cache)' })
    .option('force', { type: 'boolean', default: false, describe: 'replace an existing --out and its model.json' });
