// `viewprobe eval --run RUN`: what the tutorial prints at the end (best accuracy and its epoch, final
// accuracy) plus per-class accuracy, the confusion matrix and top-5 accuracy of the run's best head on
// its cache's val features; `--report` writes the HTML report. `--data` goes through dataFeatures()
// below, the one place that needs the backbone.
import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { SplitFeatures } from '../cache/types.js';
import { InputError, UserError, errorMessage } from '../errors.js';
import { log, printJson } from '../log.js';
import { openCacheForReading } from '../train/cache-reader.js';
import { RUN_FILES, pct, type CacheOpener } from '../train/command.js';
import { loadHead, type HeadFile } from '../train/head.js';
import type { EpochRecord } from '../train/loop.js';
import { evaluateHead, type EvalResult } from './metrics.js';
import { defaultBatch } from '../extract/backbone/engine.js';

export interface EvalArgs {
  run: string;
  data?: string;
  cache?: string;
  report?: string;
  json: boolean;
  weights?: string;
  backbone?: string;
  engine?: 'auto' | 'onnx' | 'tfjs';
  device?: 'auto' | 'cpu' | 'cuda';
  threads?: number;
}

export interface RunSummary {
  epoch: number;
  valAcc: number;
}

export interface LoadedRun {
  dir: string;
  /** The cache the run was trained on (absolute). */
  cache: string;
  fingerprintId: string | null;
  classes: string[];
  options: Record<string, unknown>;
  history: EpochRecord[];
  best: RunSummary;
  final: RunSummary;
  /** The best epoch's head. */
  head: HeadFile;
  headFile: string;
}

async function readJson(file: string, what: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(file, undefined, code === 'ENOENT' ? `missing: not a viewprobe run directory (viewprobe train --out writes ${what})` : `cannot read (${errorMessage(e)})`);
  }
  try {
    const j: unknown = JSON.parse(text);
    if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new Error('not a JSON object');
    return j as Record<string, unknown>;
  } catch (e) {
    throw new InputError(file, undefined, `not a viewprobe ${what} file (${errorMessage(e)})`);
  }
}

function isRecord(r: unknown): r is EpochRecord {
  const o = r as Record<string, unknown>;
  return typeof o === 'object' && o !== null && ['epoch', 'trainLoss', 'valLoss', 'valAcc', 'lr'].every((k) => typeof o[k] === 'number');
}

/** Reads and checks a run directory written by `viewprobe train`. */
export async function loadRun(dir: string): Promise<LoadedRun> {
  const abs = resolve(dir);
  const optFile = resolve(abs, RUN_FILES.options);
  const histFile = resolve(abs, RUN_FILES.history);
  const headFile = resolve(abs, RUN_FILES.best);
  const opts = await readJson(optFile, RUN_FILES.options);
  if (opts.format !== 'viewprobe-run') throw new InputError(optFile, undefined, 'not a viewprobe run options file');
  if (typeof opts.cache !== 'string') throw new InputError(optFile, undefined, 'names no cache directory');
  const hist = await readJson(histFile, RUN_FILES.history);
  const epochs = hist.epochs;
  if (hist.format !== 'viewprobe-history' || !Array.isArray(epochs) || epochs.length === 0 || !epochs.every(isRecord)) {
    throw new InputError(histFile, undefined, 'not a viewprobe history file (expected a non-empty "epochs" list of {epoch, trainLoss, valLoss, valAcc, lr})');
  }
  const history = epochs as EpochRecord[];
  let best = history[0]!;
  for (const r of history) if (r.valAcc > best.valAcc) best = r;
  const last = history[history.length - 1]!;
  const head = await loadHead(headFile);
  const classes = Array.isArray(opts.classes) ? (opts.classes as string[]) : head.classes;
  return {
    dir: abs,
    cache: opts.cache,
    fingerprintId: head.fingerprintId,
    classes,
    options: opts,
    history,
    best: { epoch: best.epoch, valAcc: best.valAcc },
    final: { epoch: last.epoch, valAcc: last.valAcc },
    head,
    headFile,
  };
}

export interface EvalFeatures {
  features: SplitFeatures;
  /** The features' class names in label order. */
  classes: string[];
  /** For humans: what was evaluated. */
  label: string;
  cache: string;
}

/** The run's own validation features, from its cache (or --cache), checked against the head's fingerprint. */
export async function valFeatures(run: LoadedRun, cacheDir?: string, io: CacheOpener = {}): Promise<EvalFeatures> {
  const dir = resolve(cacheDir ?? run.cache);
  const cache = await (io.openCache ?? openCacheForReading)(dir);
  try {
    const info = await cache.info();
    if (run.fingerprintId && info.fingerprintId !== run.fingerprintId) {
      throw new UserError(
        `cache ${dir} holds features of fingerprint ${info.fingerprintId}, but the run's head was trained on ${run.fingerprintId} (another backbone, preset or seed); pass the run's cache with --cache`,
      );
    }
    const features = await cache.readSplit('val');
    if (features.labels.length === 0) throw new UserError(`cache ${dir} has no validation split to evaluate on`);
    return { features, classes: info.classes, label: `the val split of ${dir} (${features.labels.length} images)`, cache: dir };
  } finally {
    await cache.close();
  }
}

/**
 * `eval --data DATA`: extracts the eval-transform features of DATA into `--cache` (default: the run's
 * cache) under the run's fingerprint, refusing weights whose sha256 differs from the one the head was
 * trained on, and returns them as one split with DATA's class names (which must be the run's).
 */
export async function dataFeatures(a: EvalArgs, run: LoadedRun): Promise<EvalFeatures> {
  const [{ loadDataset }, { FeatureCache }, { extractFeatures }, { openRunBackbone }, { progressReporter }] = await Promise.all([
    import('../data/dataset.js'), import('../cache/store.js'), import('../extract/pipeline.js'), import('./run-backbone.js'),
    import('../extract/progress.js'),
  ]);
  const data = await loadDataset(a.data!);
  const same = data.classes.length === run.classes.length && data.classes.every((c, i) => c === run.classes[i]);
  if (!same) {
    throw new UserError(`${data.source}: classes [${data.classes.join(', ')}] are not the run's [${run.classes.join(', ')}] (same names, same order)`);
  }
  const fp = run.head.fingerprint;
  const { bb, preset, norm } = await openRunBackbone(fp, run.head.dim, run.headFile, a, run.cache);
  const dir = resolve(a.cache ?? run.cache);
  const split = `eval:${resolve(a.data!)}`;
  let cache: import('../cache/store.js').FeatureCache | undefined;
  try {
    cache = await FeatureCache.open(dir, { exclusive: true });
    await cache.ensureFingerprint(fp!, run.classes);
    await cache.pruneMembers(split, new Set(data.items.map((i) => i.path)));
    const progress = progressReporter('eval --data');
    const s = await extractFeatures([{ split, items: data.items, views: 0, clean: true, tta: true }], {
      engine: bb.engine, norm, preset, cache, seed: fp!.seed, batch: defaultBatch(bb.engine), onProgress: (p) => progress.update(p),
    });
    progress.done();
    log(`eval --data: ${s.images} images, ${s.extracted} views extracted, ${s.alreadyCached} cached, ${s.failed.length} failed`);
    for (const f of s.failed.slice(0, 20)) log(`  failed: ${f.reason}`);
    const features = cache.readSplit(split, { maxViews: 0 }); // the clean views and the preset's test-time views
    if (features.labels.length === 0) throw new UserError(`${data.source}: no image could be read`);
    return { features, classes: run.classes, label: `${data.source} (${features.labels.length} images)`, cache: dir };
  } finally {
    await cache?.close();
    await bb.engine.dispose();
  }
}

function padTable(rows: string[][], rightAlignFrom = 1): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c >= rightAlignFrom ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ').trimEnd());
}

/** Human-readable lines for an evaluation (and the run's best/final accuracies when given). */
export function formatEval(e: EvalResult, label: string, run?: { best: RunSummary; final: RunSummary }): string[] {
  const lines: string[] = [];
  if (run) {
    lines.push(`Best val acc ${pct(run.best.valAcc)} at epoch ${run.best.epoch}`);
    lines.push(`Final val acc ${pct(run.final.valAcc)} (epoch ${run.final.epoch})`);
  }
  lines.push(`Best head on ${label}: accuracy ${pct(e.accuracy)}, top-${e.topK} ${pct(e.topKAccuracy)}, loss ${e.loss.toFixed(4)}`);
  lines.push('', 'Per class:');
  lines.push(...padTable([['  class', 'images', 'correct', 'accuracy'], ...e.perClass.map((c) => [`  ${c.label}`, String(c.n), String(c.correct), c.accuracy === null ? '-' : pct(c.accuracy)])]));
  lines.push('', 'Confusion matrix (rows: true class, columns: predicted class index):');
  const idx = e.classes.map((_, i) => String(i));
  lines.push(...padTable([['  ', '', ...idx], ...e.classes.map((c, i) => [`  ${i}`, c, ...e.confusion[i]!.map(String)])], 2));
  return lines;
}

export async function runEval(a: EvalArgs, io: CacheOpener = {}): Promise<number> {
  const run = await loadRun(a.run);
  const ev = a.data ? await dataFeatures(a, run) : await valFeatures(run, a.cache, io);
  const result = evaluateHead(run.head, ev.features, ev.classes, run.headFile);
  for (const line of formatEval(result, ev.label, run)) log(line);
  let report: string | undefined;
  if (a.report) {
    const { renderReport } = await import('./report.js');
    const o = (run.options.options ?? {}) as Record<string, unknown>;
    const html = await renderReport({
      title: `viewprobe run ${run.dir}`,
      dataLabel: ev.label,
      history: run.history,
      best: run.best,
      final: run.final,
      eval: result,
      facts: [
        ['run', run.dir],
        ['cache', ev.cache],
        ['fingerprint', run.fingerprintId ?? 'unknown'],
        ['classes', String(run.classes.length)],
        ['options', Object.entries(o).map(([k, v]) => `${k}=${v}`).join(' ')],
      ],
    });
    report = resolve(a.report);
    try {
      await writeFile(report, html);
    } catch (e) {
      throw new UserError(`cannot write report ${a.report} (${(e as NodeJS.ErrnoException).code ?? errorMessage(e)})`);
    }
    log(`Wrote ${a.report}`);
  }
  if (a.json) {
    printJson({ run: run.dir, cache: ev.cache, data: a.data ?? 'val', best: run.best, final: run.final, eval: result, ...(report ? { report } : {}) });
  }
  return 0;
}
