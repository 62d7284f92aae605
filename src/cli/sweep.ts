// `viewprobe sweep`: many heads from the cache, chosen honestly (val split, else k-fold CV on train),
// the winner written as an ordinary run (the files `train` writes, through the same code) plus
// sweep.json with every trial; a leaderboard on stdout (JSON with --json).
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { UserError } from '../errors.js';
import { writeFileAtomic } from '../head/file.js';
import { log, printJson } from '../log.js';
import { readTrainingSplits } from '../train/cache-reader.js';
import { pct } from '../format.js';
import { RUN_FILES, checkRunTarget, writeRun } from '../run/run.js';
import { SWEEP_FILE, SWEEP_FORMAT, type SweepFileJson, type SweepTrialJson } from '../run/sweep-file.js';
import type { CacheOpener } from './train.js';
import type { sweepBuilder } from './commands.js';
import type { ArgsOf } from './options.js';
import type { TrainResult } from '../train/loop.js';
import { SWEEP_DEFAULTS, sweep, type SweepOutcome } from '../train/sweep.js';
import { describeTrial } from '../train/sweep-space.js';
import type { TrialResult } from '../train/sweep-trial.js';

export type SweepArgs = ArgsOf<typeof sweepBuilder>;

function trialJson(r: TrialResult, rank: number, i: number): SweepTrialJson {
  return {
    trial: i, rank, score: r.score, loss: r.loss, epoch: r.epoch, seconds: r.seconds,
    ...(r.iterations !== undefined ? { iterations: r.iterations } : {}),
    description: describeTrial(r.spec), spec: r.spec,
  };
}

/** Ranks by score (ties: earlier trial first). */
function ranking(o: SweepOutcome): number[] {
  return o.results.map((_, i) => i).sort((a, b) => o.results[b]!.score - o.results[a]!.score || a - b);
}

export function leaderboard(o: SweepOutcome, top = 10): string[] {
  const order = ranking(o);
  const rankOf = new Map(order.map((i, r) => [i, r + 1]));
  const shown = order.slice(0, top);
  if (o.seedRecipe >= 0 && !shown.includes(o.seedRecipe)) shown.push(o.seedRecipe);
  const rows = [['rank', 'score', 'epoch', 'secs', 'trial'], ...shown.map((i) => {
    const r = o.results[i]!;
    const mark = i === o.winner ? ' (chosen)' : r.spec.name ? ` (${r.spec.name})` : '';
    return [String(rankOf.get(i)), pct(r.score), String(r.epoch), r.seconds.toFixed(2), describeTrial(r.spec) + mark];
  })];
  const w = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c < 4 ? cell.padStart(w[c]!) : cell)).join('  '));
}

/** The winner as what `train` returns, so that the run is written by the same code. */
function asTrainResult(o: SweepOutcome, trainImages: number, valImages: number): TrainResult {
  const w = o.results[o.winner]!;
  const best = { epoch: w.epoch, valAcc: w.score, valLoss: w.loss, head: o.head };
  const lastRec = w.history[w.history.length - 1]!;
  const last = w.last && lastRec.epoch !== w.epoch
    ? { epoch: lastRec.epoch, valAcc: lastRec.valAcc, valLoss: lastRec.valLoss, head: w.last }
    : best;
  const s = w.spec;
  const options = s.solver === 'adam'
    ? { epochs: s.epochs, lr: s.lr, stepSize: s.stepSize, gamma: s.gamma, batch: s.batch, seed: 0, views: s.views, weightDecay: s.weightDecay, labelSmoothing: s.labelSmoothing }
    : { epochs: 1, lr: 0, stepSize: 1, gamma: 1, batch: 0, seed: 0, views: s.views, weightDecay: 0, labelSmoothing: 0 };
  return { history: w.history, best, last, options, math: 'wasm-simd', trainImages, valImages, viewChoices: 0, seconds: o.seconds };
}

export async function runSweep(a: SweepArgs, io: CacheOpener = {}): Promise<number> {
  if (a.trials !== undefined && a.grid !== undefined) throw new UserError('--trials and --grid exclude each other (a grid says which trials)');
  const cacheDir = resolve(a.cache);
  const outDir = resolve(a.out);
  await checkRunTarget(outDir, a.force);
  const { info, train, val } = await readTrainingSplits(cacheDir, a.cache, io.openCache);
  if (info.classes.length < 2) throw new UserError(`need at least 2 classes, the cache has ${info.classes.length}`);
  const hasVal = val.labels.length > 0;
  if (a.select === 'val' && !hasVal) throw new UserError(`--select val: cache ${a.cache} has no validation split`);
  if (!hasVal || a.select === 'cv') {
    const counts = new Map<number, number>();
    for (const y of train.labels) counts.set(y, (counts.get(y) ?? 0) + 1);
    const fewest = Math.min(...counts.values());
    if (fewest < a.folds) throw new UserError(`--folds ${a.folds}: a class has only ${fewest} training images`);
  }

  const byCv = !hasVal || a.select === 'cv';
  // What a held-out fold is scored on: eval averages the clean view with the preset's test-time views,
  // so CV should too; a cache extracted with a val split (or interrupted) lacks them for training images.
  // sweep reads only the cache (no image code): the cache having test-time views anywhere says the preset has them.
  const presetHasViews = (info.counts?.ttaViews ?? 0) > 0;
  const foldViews = train.ttaViews ? `clean + ${train.ttaViews} test-time view${train.ttaViews === 1 ? '' : 's'}, averaged` : 'the clean view';
  log(`Sweep over ${train.labels.length} training images (${train.views} augmented views${train.clean ? ' + clean' : ''}, ${train.dim}-d, ${info.classes.length} classes); ` +
    `choosing on ${!byCv ? `the val split (${val.labels.length} images)` : `${a.folds}-fold CV of the training split (held-out folds scored on ${foldViews})`}`);
  if (byCv && presetHasViews && !train.ttaViews) {
    log(`sweep: eval averages the clean and test-time views of each image for this preset, but not every training image has its test-time views, so the folds are scored on the clean view only; ` +
      `extract --train without --val into a cache without a val split stores them`);
  }
  const outcome = await sweep(train, hasVal ? val : null, info.classes, {
    ...(a.grid !== undefined ? { grid: a.grid } : { trials: a.trials ?? SWEEP_DEFAULTS.trials }),
    folds: a.folds, seed: a.seed,
    ...(a.select ? { select: a.select } : {}),
    ...(a.workers !== undefined ? { workers: a.workers } : {}),
    onResult: (r, done, total) => log(`trial ${done}/${total}: ${pct(r.score)}  ${describeTrial(r.spec)}`),
  });
  const w = outcome.results[outcome.winner]!;
  const seedRow = outcome.seedRecipe >= 0 ? outcome.results[outcome.seedRecipe]! : undefined;

  await mkdir(outDir, { recursive: true }).catch((e: NodeJS.ErrnoException) => {
    throw new UserError(`cannot create run directory ${a.out} (${e.code ?? e.message})`);
  });
  await writeRun(outDir, cacheDir, info, asTrainResult(outcome, train.labels.length, outcome.selection.kind === 'val' ? val.labels.length : 0), {
    command: 'sweep',
    options: w.spec,
    selection: { ...outcome.selection, score: w.score },
  });
  const order = ranking(outcome);
  const sweepJson: SweepFileJson = {
    format: SWEEP_FORMAT, version: 1,
    cache: cacheDir, fingerprintId: info.fingerprintId,
    selection: outcome.selection,
    workers: outcome.workers, seconds: outcome.seconds, trialsPerSecond: outcome.results.length / outcome.seconds,
    winner: outcome.winner, seedRecipe: outcome.seedRecipe,
    trials: outcome.results.map((r, i) => trialJson(r, order.indexOf(i) + 1, i)),
  };
  await writeFileAtomic(resolve(outDir, SWEEP_FILE), JSON.stringify(sweepJson, null, 1) + '\n');

  log(`Selection score: ${outcome.selection.label}. It chose among the trials, so it is optimistic: the number to trust is viewprobe eval --run ${a.out} --data DATA on images that took no part in choosing.`);
  log(`${outcome.results.length} trials in ${outcome.seconds.toFixed(1)} s on ${outcome.workers} worker${outcome.workers === 1 ? '' : 's'} (${(outcome.results.length / outcome.seconds).toFixed(2)} trials/s); wrote ${a.out}/{${[...Object.values(RUN_FILES), SWEEP_FILE].join(',')}}`);
  if (a.json) {
    printJson({
      run: outDir, selection: outcome.selection, seconds: outcome.seconds, trialsPerSecond: sweepJson.trialsPerSecond, workers: outcome.workers,
      winner: trialJson(w, 1, outcome.winner),
      seedRecipe: seedRow ? trialJson(seedRow, order.indexOf(outcome.seedRecipe) + 1, outcome.seedRecipe) : null,
      top: order.slice(0, 10).map((i) => trialJson(outcome.results[i]!, order.indexOf(i) + 1, i)),
    });
  } else {
    process.stdout.write(`Selection score = ${outcome.selection.label}\n${leaderboard(outcome).join('\n')}\n`);
    if (seedRow) process.stdout.write(`Chosen: ${describeTrial(w.spec)}: ${pct(w.score)}, the seed recipe: ${pct(seedRow.score)}\n`);
  }
  return 0;
}

