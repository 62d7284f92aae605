// The run directory, written by `train` (and `sweep`) and read by eval, predict, compare and export:
//   head-best.json  head-last.json  history.json  options.json
// One module owns its file names and formats, so that readers and the writer cannot drift apart.
import { readdir, readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { InputError, UserError, errorMessage } from '../errors.js';
import { loadHead, saveHead, writeFileAtomic, type HeadFile } from '../head/file.js';
import type { EpochRecord, TrainResult } from '../train/loop.js';

export const RUN_FILES = {
  best: 'head-best.json',
  last: 'head-last.json',
  history: 'history.json',
  options: 'options.json',
} as const;

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

export interface CacheInfoLike {
  fingerprint: unknown;
  fingerprintId: string;
  classes: string[];
}

/** Writes a run directory; `extra` adds to (or replaces) fields of options.json (the sweep's). */
export async function writeRun(outDir: string, cacheDir: string, info: CacheInfoLike, r: TrainResult, extra: Record<string, unknown> = {}): Promise<void> {
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
    ...extra,
  };
  await writeFileAtomic(resolve(outDir, RUN_FILES.options), JSON.stringify(options, null, 1) + '\n');
}

/**
 * A run directory is written only when it is new or empty, or with `force` (then its run files are
 * replaced): a second `train --out` must not silently destroy the first run.
 */
export async function checkRunTarget(dir: string, force: boolean): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code === 'ENOTDIR') throw new UserError(`--out ${dir} is a file, not a run directory`);
    throw new UserError(`cannot read --out ${dir} (${code ?? errorMessage(e)})`);
  }
  if (entries.length === 0 || force) return;
  const what = entries.includes(RUN_FILES.options) ? 'holds a run' : `is not empty (${entries.length} entries)`;
  throw new UserError(`--out ${dir} ${what}; choose another directory, or pass --force to replace its run files`);
}
