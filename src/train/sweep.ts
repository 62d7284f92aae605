// `viewprobe sweep`'s engine: many heads trained from the cache in parallel (worker threads, one per
// core), each scored on the selection rows, the best one chosen. The features are copied once into
// shared memory that every worker reads; a worker gets tasks one at a time, so a slow trial never
// holds up the queue.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { SplitFeatures } from '../cache/types.js';
import type { Head } from '../head/head.js';
import { chooseSelection, stratifiedFolds, type Selection } from './selection.js';
import { defaultTasks, gridTasks, type Task, type TransformName } from './sweep-space.js';
import { prepareTransform, refitWinner, runTask, type SweepData, type TrialResult } from './sweep-trial.js';

export interface SweepOptions {
  /** Random Adam trials beside the fixed ones (ignored with `grid`). */
  trials?: number;
  grid?: string;
  folds?: number;
  /** 'cv' chooses by cross-validation even when there is a val split (which then stays unseen). Default: val when present. */
  select?: 'val' | 'cv';
  /** Worker threads; 1 runs everything in this thread. Default: all cores. */
  workers?: number;
  seed?: number;
  onResult?: (r: TrialResult, done: number, total: number) => void;
}

export interface SweepOutcome {
  selection: Selection;
  /** Every trial, in task order. */
  results: TrialResult[];
  /** Index into results of the winner (highest score; ties go to the earlier trial, the seed recipe first). */
  winner: number;
  /** Index of the seed recipe's row. */
  seedRecipe: number;
  /** The head to save and its history (CV: refitted on all training images). */
  head: Head;
  workers: number;
  seconds: number;
}

export const SWEEP_DEFAULTS = { trials: 40, folds: 5, seed: 0 } as const;

/** Mean L1 norm of a sample of training rows after a transform: how Adam's lr scales with it. */
function l1Scale(train: SplitFeatures): (t: TransformName) => number {
  const rows = train.clean ?? train.aug;
  const n = Math.min(200, rows.length / train.dim);
  const sample = { ...train, labels: train.labels.subarray(0, n), views: 0, aug: new Float32Array(0), clean: rows.subarray(0, n * train.dim) };
  const l1 = (s: SplitFeatures) => {
    let sum = 0;
    for (const v of s.clean!) sum += Math.abs(v);
    return sum / n;
  };
  const raw = l1(sample);
  return (t) => (t === 'none' ? 1 : raw / l1(prepareTransform(sample, t).train));
}

/** Float32Arrays on shared memory: the workers read them without a copy each. */
function shared(a: Float32Array): Float32Array {
  const s = new Float32Array(new SharedArrayBuffer(a.byteLength));
  s.set(a);
  return s;
}
const shareSplit = (s: SplitFeatures): SplitFeatures => ({ ...s, aug: shared(s.aug), clean: s.clean ? shared(s.clean) : null, ...(s.tta ? { tta: shared(s.tta) } : {}) });

/** The compiled worker; under vitest this module runs from src/*.ts, and the worker only exists in dist/. */
function workerUrl(): URL {
  return import.meta.url.endsWith('.ts') ? new URL('../../dist/train/sweep-worker.js', import.meta.url) : new URL('./sweep-worker.js', import.meta.url);
}

async function runPool(tasks: Task[], data: SweepData, workers: number, done: (t: Task, r: TrialResult[]) => void): Promise<void> {
  if (workers <= 1) {
    for (const t of tasks) done(t, await runTask(t, data));
    return;
  }
  const wd = { ...data, train: shareSplit(data.train), val: data.val ? shareSplit(data.val) : null };
  let next = 0;
  const pool: Worker[] = [];
  let failed = false;
  const one = () => new Promise<void>((resolve, reject) => {
    const w = new Worker(workerUrl(), { workerData: wd });
    pool.push(w);
    let current: Task | undefined;
    const fail = (e: Error) => {
      // One failure ends the sweep: no worker picks up another task, all of them stop.
      failed = true;
      for (const p of pool) void p.terminate();
      reject(e);
    };
    const feed = () => {
      current = failed ? undefined : tasks[next++];
      if (current) w.postMessage(current);
      else void w.terminate().then(() => resolve());
    };
    w.on('message', (m: { results?: TrialResult[]; error?: string }) => {
      if (m.error !== undefined) fail(new Error(`sweep worker failed on task ${current?.id}: ${m.error}`));
      else {
        done(current!, m.results!);
        feed();
      }
    });
    w.on('error', fail);
    w.on('online', feed);
  });
  await Promise.all(Array.from({ length: Math.min(workers, tasks.length) }, one));
}

export async function sweep(train: SplitFeatures, val: SplitFeatures | null, classes: string[], o: SweepOptions = {}): Promise<SweepOutcome> {
  const t0 = performance.now();
  const seed = o.seed ?? SWEEP_DEFAULTS.seed;
  const folds = o.folds ?? SWEEP_DEFAULTS.folds;
  const selection = chooseSelection(o.select === 'cv' ? null : val, folds, seed);
  const data: SweepData = {
    train, val: selection.kind === 'val' ? val : null, classes, selection, seed,
    folds: selection.kind === 'cv' ? stratifiedFolds(train.labels, folds, seed) : null,
  };
  const tasks = o.grid
    ? gridTasks(o.grid)
    : defaultTasks({ trials: o.trials ?? SWEEP_DEFAULTS.trials, seed, hasAug: train.views > 0, hasClean: !!train.clean }, l1Scale(train));
  // Longest first (L-BFGS paths, then by epochs), grouped by transform so each worker prepares each
  // transform once; the order results are reported in stays the task order.
  const cost = (t: Task) => (t.trials[0]!.solver === 'lbfgs' ? 1e9 : (t.trials[0] as { epochs: number }).epochs);
  const order = [...tasks].sort((a, b) => cost(b) - cost(a) || a.trials[0]!.transform.localeCompare(b.trials[0]!.transform) || a.id - b.id);
  const workers = Math.max(1, Math.floor(o.workers ?? availableParallelism()));
  const byTask = new Map<number, TrialResult[]>();
  const total = tasks.reduce((s, t) => s + t.trials.length, 0);
  let doneCount = 0;
  await runPool(order, data, workers, (t, rs) => {
    byTask.set(t.id, rs);
    for (const r of rs) o.onResult?.(r, ++doneCount, total);
  });
  const results = tasks.flatMap((t) => byTask.get(t.id)!);
  let winner = 0;
  results.forEach((r, i) => {
    if (r.score > results[winner]!.score) winner = i;
  });
  const seedRecipe = results.findIndex((r) => r.spec.name === 'seed recipe');
  let head = results[winner]!.head;
  if (!head) {
    const w = results[winner]!;
    const refit = await refitWinner(w.spec, w.epoch, data);
    head = refit.head;
    w.history.forEach((e, i) => {
      if (refit.trainLoss[i] !== undefined) e.trainLoss = refit.trainLoss[i]!;
    });
  }
  return { selection, results, winner, seedRecipe, head, workers, seconds: (performance.now() - t0) / 1000 };
}
