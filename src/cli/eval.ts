// `viewprobe eval --run RUN`: what the tutorial prints at the end (best accuracy and its epoch, final
// accuracy) plus per-class accuracy, the confusion matrix and top-5 accuracy of the run's best head on
// its cache's val features; `--report` writes the HTML report. `--data` goes through dataFeatures()
// below, the one place that needs the backbone.
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { SplitFeatures } from '../cache/types.js';
import { UserError, errorMessage } from '../errors.js';
import { log, printJson, printText } from '../log.js';
import { EXIT } from '../exit.js';
import { openCacheForReading } from '../train/cache-reader.js';
import type { CacheOpener } from './train.js';
import { pct, padTable } from '../format.js';
import { loadRun, type LoadedRun, type RunSummary } from '../run/run.js';
import type { evalBuilder } from './commands.js';
import type { ArgsOf } from './options.js';
import { evaluateHead, type EvalResult } from '../eval/metrics.js';
import { defaultBatch } from '../backbone/engine.js';

export type EvalArgs = ArgsOf<typeof evalBuilder>;

export interface EvalFeatures {
  features: SplitFeatures;
  /** The features' class names in label order. */
  classes: string[];
  /** For humans: what was evaluated. */
  label: string;
  cache: string;
  /** `--data` images that could not be read (each named): the command then exits 3, as extract and predict do. */
  failed?: { path: string; reason: string }[];
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
    import('../data/dataset.js'), import('../cache/store.js'), import('../extract/pipeline.js'), import('../run/backbone.js'),
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
    const s = await extractFeatures([{ split, items: data.items, views: 0, clean: true }], {
      engine: bb.engine, norm, preset, cache, seed: fp!.seed, batch: defaultBatch(bb.engine), onProgress: (p) => progress.update(p),
    });
    progress.done();
    log(`eval --data: ${s.images} images, ${s.extracted} views extracted, ${s.alreadyCached} cached, ${s.failed.length} failed`);
    for (const f of s.failed.slice(0, 20)) log(`  failed: ${f.reason}`);
    const features = cache.readSplit(split, { maxViews: 0 }); // only the clean views are evaluated
    if (features.labels.length === 0) throw new UserError(`${data.source}: no image could be read`);
    return { features, classes: run.classes, label: `${data.source} (${features.labels.length} images)`, cache: dir, failed: s.failed.map(({ path, reason }) => ({ path, reason })) };
  } finally {
    await cache?.close();
    await bb.engine.dispose();
  }
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
  if (!a.json) printText(formatEval(result, ev.label, run));
  let report: string | undefined;
  if (a.report) {
    const { renderReport } = await import('../eval/report.js');
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
    if (!a.force && existsSync(report)) throw new UserError(`--report ${a.report} exists; choose another file, or pass --force to replace it`);
    try {
      await writeFile(report, html);
    } catch (e) {
      throw new UserError(`cannot write report ${a.report} (${(e as NodeJS.ErrnoException).code ?? errorMessage(e)})`);
    }
    log(`Wrote ${a.report}`);
  }
  if (a.json) {
    printJson({ run: run.dir, cache: ev.cache, data: a.data ?? 'val', best: run.best, final: run.final, eval: result, ...(report ? { report } : {}), ...(ev.failed ? { failed: ev.failed } : {}) });
  }
  return ev.failed?.length ? EXIT.someFailed : EXIT.ok;
}
