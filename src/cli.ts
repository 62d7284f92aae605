// The command line: parse, call, print. Each command's work lives in its module, loaded lazily so
// that e.g. `train` never loads the backbone runtimes or the image decoder.
import yargs, { type Argv } from 'yargs';
import { UserError, errorMessage } from './errors.js';
import { log } from './log.js';

export interface BackboneArgs {
  weights?: string;
  backbone: string;
  engine: 'auto' | 'onnx' | 'tfjs';
  device: 'auto' | 'cpu' | 'cuda';
  threads?: number;
}

/** Where the backbone runs; eval and predict take the architecture from the run, so only these. */
function runtimeOptions<T>(y: Argv<T>) {
  return y
    .option('weights', { type: 'string', describe: 'backbone weights (safetensors); default: download resnet18 IMAGENET1K_V1 once' })
    .option('engine', { choices: ['auto', 'onnx', 'tfjs'] as const, default: 'auto' as const, describe: 'backbone runtime' })
    .option('device', { choices: ['auto', 'cpu', 'cuda'] as const, default: 'auto' as const })
    .option('threads', { type: 'number', describe: 'CPU threads for the backbone (default: all cores)' });
}

function backboneOptions<T>(y: Argv<T>) {
  return runtimeOptions(y)
    .option('backbone', { type: 'string', default: 'resnet18', describe: 'architecture of the default weights' });
}

/** The transform and the pooled features: what the features of an image are. */
function viewOptions<T>(y: Argv<T>) {
  return y
    .option('preset', { choices: ['seed', 'standard', 'probe'] as const, default: 'seed' as const, describe: 'views: seed (the tutorial), standard (RandomResizedCrop + flip), probe (best for a linear head, with a test-time flip)' })
    .option('size', { type: 'number', describe: 'network input side in pixels (standard: 224, probe: 224; seed is fixed at 244)' })
    .option('pool', { type: 'string', describe: 'pooling of the feature maps: avg, gem (GeM, p=3), gemP, or several (avg,gem) concatenated (default avg)' })
    .option('layers', { type: 'string', describe: 'ResNet stages whose pooled outputs are concatenated: 4, or 4,3 (default 4)' });
}

export async function main(argv: string[]): Promise<number> {
  let code = 0;
  const run = (p: Promise<number>) => p.then((c) => { code = c; });
  const parser = yargs(argv)
    .scriptName('viewprobe')
    .usage('$0 <command> [options]\n\nTransfer learning with a frozen ResNet: extract features of many augmented views once, train a linear head from the cache in seconds.')
    .command('embed <images..>', 'print backbone features of single images', (y) =>
      viewOptions(backboneOptions(y))
        .positional('images', { type: 'string', array: true, demandOption: true })
        .option('json', { type: 'boolean', default: false }),
      (a) => run(import('./extract/embed.js').then((m) => m.runEmbed(a as never))))
    .command('extract', 'stage one: run the frozen backbone over K augmented views of every image, into the cache', (y) =>
      viewOptions(backboneOptions(y))
        .option('train', { type: 'string', describe: 'training data: folder of class folders, or list file' })
        .option('val', { type: 'string', describe: 'validation data' })
        .option('cache', { type: 'string', default: 'cache', describe: 'cache directory (LMDB)' })
        .option('views', { type: 'number', default: 10, describe: 'augmented views per training image (K)' })
        .option('clean-view', { type: 'boolean', default: true, describe: 'also keep the eval-transform view of each training image' })
        .option('batch', { type: 'number', describe: 'views per engine batch (default: 8 on CPU, 32 on a GPU)' })
        .option('seed', { type: 'number', default: 0 })
        .option('concurrency', { type: 'number', describe: 'images in flight (default: enough to fill two batches)' })
        .option('commit-views', { type: 'number', default: 64, describe: 'finished views per cache transaction (a kill loses at most these plus the batches in flight)' })
        .option('shard', { type: 'string', describe: 'i/n: process a stable subset (also JOB_COMPLETION_INDEX / SLURM_ARRAY_TASK_ID with --shards or their COUNT variables)' })
        .option('shards', { type: 'number', describe: 'shard count when the index comes from JOB_COMPLETION_INDEX / SLURM_ARRAY_TASK_ID (or VIEWPROBE_SHARDS)' })
        .option('strict', { type: 'boolean', default: false, describe: 'any unreadable image is an error' })
        .option('json', { type: 'boolean', default: false }),
      (a) => run(import('./extract/command.js').then((m) => m.runExtract(a as never))))
    .command('train', 'stage two: fit the linear head from the cache', (y) =>
      y.option('cache', { type: 'string', default: 'cache' })
        .option('out', { type: 'string', demandOption: true, describe: 'run directory to write' })
        .option('epochs', { type: 'number', default: 50 })
        .option('lr', { type: 'number', default: 1e-3 })
        .option('step-size', { type: 'number', default: 5 })
        .option('gamma', { type: 'number', default: 0.5 })
        .option('batch', { type: 'number', default: 64 })
        .option('seed', { type: 'number', default: 0 })
        .option('views', { choices: ['aug', 'clean', 'all'] as const, default: 'aug' as const })
        .option('json', { type: 'boolean', default: false }),
      (a) => run(import('./train/command.js').then((m) => m.runTrain(a as never))))
    .command('eval', 'report best accuracy, per-class accuracy, confusion and top-5 of a run', (y) =>
      runtimeOptions(y)
        .option('run', { type: 'string', demandOption: true })
        .option('data', { type: 'string', describe: 'data never seen in training (list or folder)' })
        .option('cache', { type: 'string', describe: 'cache for --data features (default: the run\'s)' })
        .option('report', { type: 'string', describe: 'write a self-contained HTML report here' })
        .option('json', { type: 'boolean', default: false }),
      (a) => run(import('./eval/command.js').then((m) => m.runEval(a as never))))
    .command('compare <runs..>', 'best and final accuracy of several runs side by side, with a summary of runs that differ only by seed', (y) =>
      y.positional('runs', { type: 'string', array: true, demandOption: true })
        .option('json', { type: 'boolean', default: false }),
      (a) => run(import('./eval/compare.js').then((m) => m.runCompare(a as never))))
    .command('predict <images..>', 'classify new photos with a trained run', (y) =>
      runtimeOptions(y)
        .positional('images', { type: 'string', array: true, demandOption: true })
        .option('run', { type: 'string', demandOption: true })
        .option('top', { type: 'number', default: 5 })
        .option('json', { type: 'boolean', default: false }),
      (a) => run(import('./eval/predict.js').then((m) => m.runPredict(a as never))))
    .command('cache <action>', 'inspect or merge caches', (y) =>
      y.command('info', 'summary of a cache', (yy) =>
        yy.option('cache', { type: 'string', default: 'cache' }).option('json', { type: 'boolean', default: false }),
        (a) => run(import('./cache/command.js').then((m) => m.runCacheInfo(a as never))))
        .command('merge <out> <inputs..>', 'join caches of the same fingerprint (sharded runs)', (yy) =>
          yy.positional('out', { type: 'string', demandOption: true })
            .positional('inputs', { type: 'string', array: true, demandOption: true })
            .option('json', { type: 'boolean', default: false }),
          (a) => run(import('./cache/command.js').then((m) => m.runCacheMerge(a as never))))
        .demandCommand(1), () => {})
    .demandCommand(1, 'name a command')
    .strict()
    .recommendCommands()
    .help()
    .exitProcess(false)
    .fail((msg, err) => { throw err ?? new UserError(msg); });
  try {
    await parser.parseAsync();
  } catch (e) {
    if (e instanceof UserError) {
      log(`viewprobe: ${e.message}`);
      return e.exitCode;
    }
    log(`viewprobe: internal error: ${errorMessage(e)}`);
    if (process.env.VIEWPROBE_DEBUG) log(String((e as Error)?.stack ?? e));
    return 1;
  }
  return code;
}
