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
import { evaluateScores, headEvalLogits, type EvalResult } from '../eval/metrics.js';
import { confidentMistakes } from '../eval/mistakes.js';
import type { MistakesView, ReportInput } from '../eval/report.js';
import { readSweepFile, type SweepFileJson } from '../run/sweep-file.js';
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
  const { bb, preset, norm, fingerprint: fp, precision } = await openRunBackbone(run.head.fingerprint, run.head.dim, run.headFile, a, run.cache);
  const dir = resolve(a.cache ?? run.cache);
  const split = `eval:${resolve(a.data!)}`;
  let cache: import('../cache/store.js').FeatureCache | undefined;
  try {
    cache = await FeatureCache.open(dir, { exclusive: true });
    precision.store(cache);
    await cache.ensureFingerprint(fp, run.classes);
    await cache.pruneMembers(split, new Set(data.items.map((i) => i.path)));
    const progress = progressReporter('eval --data');
    const s = await extractFeatures([{ split, items: data.items, views: 0, clean: true, tta: true }], {
      engine: bb.engine, norm, preset, cache, seed: fp.seed, batch: defaultBatch(bb.engine), onProgress: (p) => progress.update(p),
    });
    progress.done();
    log(`eval --data: ${s.images} images, ${s.extracted} views extracted, ${s.alreadyCached} cached, ${s.failed.length} failed`);
    for (const f of s.failed.slice(0, 20)) log(`  failed: ${f.reason}`);
    const features = cache.readSplit(split, { maxViews: 0 }); // the clean views and the preset's test-time views
    if (features.labels.length === 0) throw new UserError(`${data.source}: no image could be read`);
    return { features, classes: run.classes, label: `${data.source} (${features.labels.length} images)`, cache: dir, failed: s.failed.map(({ path, reason }) => ({ path, reason })) };
  } finally {
    await cache?.close();
    await bb.engine.dispose();
  }
}

/** Human-readable lines for an evaluation (and the run's best/final accuracies when given). */
export function formatEval(e: EvalResult, label: string, run?: { best: RunSummary; final: RunSummary; options?: Record<string, unknown> }): string[] {
  const lines: string[] = [];
  if (run) {
    // A sweep run chosen by cross-validation has no val figures: its curve is the mean over held-out folds.
    const score = (run.options?.selection as { kind?: string } | undefined)?.kind === 'cv' ? 'CV score' : 'val acc';
    lines.push(`Best ${score} ${pct(run.best.valAcc)} at epoch ${run.best.epoch}`);
    lines.push(`Final ${score} ${pct(run.final.valAcc)} (epoch ${run.final.epoch})`);
  }
  lines.push(`Best head on ${label}: accuracy ${pct(e.accuracy)}, top-${e.topK} ${pct(e.topKAccuracy)}, loss ${e.loss.toFixed(4)}`);
  lines.push('', 'Per class:');
  lines.push(...padTable([['  class', 'images', 'correct', 'accuracy'], ...e.perClass.map((c) => [`  ${c.label}`, String(c.n), String(c.correct), c.accuracy === null ? '-' : pct(c.accuracy)])]));
  lines.push('', 'Confusion matrix (rows: true class, columns: predicted class index):');
  const idx = e.classes.map((_, i) => String(i));
  lines.push(...padTable([['  ', '', ...idx], ...e.classes.map((c, i) => [`  ${i}`, c, ...e.confusion[i]!.map(String)])], 2));
  return lines;
}

/** Mistakes the report shows as thumbnails. */
export const REPORT_MISTAKES = 12;
const THUMBNAIL_PX = 128;

/**
 * The most confident mistakes with a thumbnail of each image, made from the file the cache (or
 * --data) names. An image that cannot be read gets a placeholder and its reason, never a failure.
 */
export async function reportMistakes(logits: Float32Array, ev: EvalFeatures, wrong: number, k = REPORT_MISTAKES): Promise<MistakesView> {
  const { thumbnailDataUri } = await import('../image/thumbnail.js');
  const { DecodeError } = await import('../image/decode.js');
  const items: MistakesView['items'] = [];
  for (const m of confidentMistakes(logits, ev.features.labels, ev.classes.length, k)) {
    const file = ev.features.paths[m.row];
    const item = { file: file ?? `image ${m.row + 1}`, truth: ev.classes[m.truth]!, predicted: ev.classes[m.predicted]!, prob: m.prob, trueProb: m.trueProb };
    if (!file) {
      items.push({ ...item, thumbnail: null, problem: 'the cache records no path for it' });
      continue;
    }
    try {
      items.push({ ...item, thumbnail: await thumbnailDataUri(file, { size: THUMBNAIL_PX }) });
    } catch (e) {
      items.push({ ...item, thumbnail: null, problem: e instanceof DecodeError ? e.reason : errorMessage(e) });
    }
  }
  const missing = items.filter((i) => !i.thumbnail).length;
  if (missing) log(`eval --report: ${missing} of the ${items.length} images shown as mistakes could not be read; the report shows placeholders`);
  return { items, wrong };
}

async function readSweepForReport(dir: string): Promise<SweepFileJson | undefined> {
  try {
    return (await readSweepFile(dir)) ?? undefined;
  } catch (e) {
    log(`eval --report: ${errorMessage(e)}; the report leaves the sweep out`);
    return undefined;
  }
}

export async function runEval(a: EvalArgs, io: CacheOpener = {}): Promise<number> {
  const run = await loadRun(a.run);
  const ev = a.data ? await dataFeatures(a, run) : await valFeatures(run, a.cache, io);
  const logits = headEvalLogits(run.head, ev.features, ev.classes, run.headFile);
  const result = evaluateScores(logits, ev.features.labels, ev.classes, 'logits');
  if (!a.json) printText(formatEval(result, ev.label, run));
  let report: string | undefined;
  if (a.report) {
    report = resolve(a.report);
    if (!a.force && existsSync(report)) throw new UserError(`--report ${a.report} exists; choose another file, or pass --force to replace it`);
    const { renderReport } = await import('../eval/report.js');
    const o = (run.options.options ?? {}) as Record<string, unknown>;
    const sweep = await readSweepForReport(run.dir);
    // The run's own val split chose the best epoch (train) or the trial (a sweep choosing on val).
    const choseOnThisData = !a.data && ev.cache === resolve(run.cache) && (!sweep || sweep.selection.kind === 'val');
    const input: ReportInput = {
      title: `viewprobe ${sweep ? 'sweep ' : ''}run ${run.dir}`,
      dataLabel: ev.label,
      history: run.history,
      best: run.best,
      final: run.final,
      eval: result,
      mistakes: await reportMistakes(logits, ev, result.n - result.correct),
      choseOnThisData,
      ...(sweep ? { sweep } : {}),
      facts: [
        ['run', run.dir],
        ['command', typeof run.options.command === 'string' ? run.options.command : 'train'],
        ['cache', ev.cache],
        ['fingerprint', run.fingerprintId ?? 'unknown'],
        ['classes', String(run.classes.length)],
        ['options', Object.entries(o).map(([k, v]) => `${k}=${v}`).join(' ')],
      ],
    };
    const html = await renderReport(input);
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
