// The command line: parse, call, print. Options live in commands.ts; each command's work in
// src/cli/<command>.ts, loaded lazily so that e.g. `train` never loads the backbone runtimes.
import yargs from 'yargs';
import { UserError, errorMessage } from '../errors.js';
import { EXIT } from '../exit.js';
import { log } from '../log.js';
import * as c from './commands.js';

export async function main(argv: string[]): Promise<number> {
  let code: number = EXIT.ok;
  // yargs hands the handler its parsed arguments; the run functions take the typed shape the builder defines.
  const run = (p: Promise<number>) => p.then((v) => { code = v; });
  const parser = yargs(argv)
    .scriptName('viewprobe')
    .usage('$0 <command> [options]\n\nTransfer learning with a frozen ResNet: extract features of many augmented views once, train a linear head from the cache in seconds.')
    .epilogue('Exit codes: 0 done; 2 bad options or input (one line says what); 3 done, but some images could not be read (each is named); 130 interrupted (finished work kept: rerun to resume); 1 internal error (a bug: please report it).')
    .command('embed <images..>', 'print backbone features of single images', c.embedBuilder,
      (a) => run(import('./embed.js').then((m) => m.runEmbed(a))))
    .command('extract', 'stage one: run the frozen backbone over K augmented views of every image, into the cache', c.extractBuilder,
      (a) => run(import('./extract.js').then((m) => m.runExtract(a))))
    .command('train', 'stage two: fit the linear head from the cache', c.trainBuilder,
      (a) => run(import('./train.js').then((m) => m.runTrain(a))))
    .command('sweep', 'train many heads from the cache in parallel and keep the best, chosen on val (or by cross-validation)', c.sweepBuilder,
      (a) => run(import('./sweep.js').then((m) => m.runSweep(a))))
    .command('eval', 'report best accuracy, per-class accuracy, confusion and top-5 of a run', c.evalBuilder,
      (a) => run(import('./eval.js').then((m) => m.runEval(a))))
    .command('compare <runs..>', 'best and final accuracy of several runs side by side, with a summary of runs that differ only by seed', c.compareBuilder,
      (a) => run(import('./compare.js').then((m) => m.runCompare(a))))
    .command('predict <images..>', 'classify new photos with a trained run', c.predictBuilder,
      (a) => run(import('./predict.js').then((m) => m.runPredict(a))))
    .command('export', 'write a run\'s whole classifier (normalisation, backbone, head, softmax) as one ONNX file, with model.json beside it', c.exportBuilder,
      (a) => run(import('./export.js').then((m) => m.runExport(a))))
    // `cache [action]`: an action that is neither info nor merge lands in this handler, which names it
    // (yargs' own demandCommand would only say that an action is missing).
    .command('cache [action]', 'inspect or merge caches', (y) =>
      y.command('info', 'summary of a cache', c.cacheInfoBuilder,
        (a) => run(import('./cache.js').then((m) => m.runCacheInfo(a))))
        .command('merge <out> <inputs..>', 'join caches of the same fingerprint (sharded runs)', c.cacheMergeBuilder,
          (a) => run(import('./cache.js').then((m) => m.runCacheMerge(a)))),
    (a) => {
      throw new UserError(a.action === undefined ? 'name a cache action: info or merge' : `unknown cache action "${a.action}": use info or merge`);
    })
    .demandCommand(1, 'name a command')
    .strict()
    .recommendCommands()
    .help()
    .exitProcess(false)
    // Numeric options take their raw text (options.ts checks it): `--views 0x10` is not 16.
    .parserConfiguration({ 'parse-numbers': false })
    .locale('en')
    .updateStrings({ 'Not enough arguments following: %s': '--%s needs a value', 'Did you mean %s?': 'unknown command; did you mean %s?' })
    // yargs reports its own usage errors, and wraps what an option's coerce throws, as YError: all
    // are the user's (exit 2). Anything else reaching here came from a command and keeps its class.
    .fail((msg, err) => {
      if (err && err.name !== 'YError') throw err;
      throw new UserError(err?.message ?? msg);
    });
  try {
    await parser.parseAsync();
  } catch (e) {
    if (e instanceof UserError) {
      log(`viewprobe: ${e.message}`);
      return e.exitCode;
    }
    log(`viewprobe: internal error: ${errorMessage(e)}`);
    if (process.env.VIEWPROBE_DEBUG) log(String((e as Error)?.stack ?? e));
    return EXIT.internal;
  }
  return code;
}
