// Stage one: every image is read and hashed once, decoded and resized once, and its missing views
// (missing.ts) are rendered by the preset's fused kernel straight into a batch buffer the engine
// consumes (batch-queue.ts), while earlier batches run. Finished views go to the commit buffer
// (commit-buffer.ts), which writes them to the cache in transactions of about `commitViews`, view by
// view as they become contiguous: a killed run loses at most those plus the batches in flight.
//
// Files are read synchronously (one turn of the main thread instead of four: decode.ts readImageFile),
// decoding runs on sharp's thread pool, and enough images are kept in flight to fill the batches ahead.
import { availableParallelism } from 'node:os';
import pLimit from 'p-limit';
import type { Engine } from '../backbone/engine.js';
import type { NormLut } from '../image/normalize.js';
import type { Preset } from '../image/presets.js';
import { decodeImage, readImageFile } from '../image/decode.js';
import { CacheWriteError, type FeatureCache } from '../cache/store.js';
import type { DatasetItem } from '../data/dataset.js';
import { hashBytes } from '../data/hash.js';
import { UserError, errorMessage } from '../errors.js';
import { BatchQueue } from './batch-queue.js';
import { CommitBuffer, type ViewRun } from './commit-buffer.js';
import { Claims } from './missing.js';

export interface SplitJob {
  split: string;
  items: DatasetItem[];
  /** Augmented views wanted per image (0 for eval-only splits). */
  views: number;
  /** Keep the eval-transform view too. */
  clean: boolean;
}

export interface ExtractOptions {
  engine: Engine;
  norm: NormLut;
  preset: Preset;
  cache: FeatureCache;
  seed: number;
  batch: number;
  /**
   * Finished views gathered into one cache transaction (default DEFAULT_COMMIT_VIEWS): a kill loses at
   * most these plus the batches in flight. Fewer, larger values keep the LMDB file near the payload size.
   */
  commitViews?: number;
  /** Images in flight (read, decoding, or waiting for batch slots); default: defaultConcurrency(). */
  concurrency?: number;
  /** Images whose content hash is outside the shard are skipped entirely. */
  inShard?: (hash: string) => boolean;
  maxPixels?: number;
  /** Polled between views: when it returns true, no new view is started; what is rendered is run and committed. */
  shouldStop?: () => boolean;
  /**
   * Stop now: nothing more is sent to the engine or committed; only the batches already inside the
   * engine are waited for (tearing them down is a native abort). The cache keeps what was committed.
   */
  abort?: AbortSignal;
  onProgress?: (p: ExtractProgress) => void;
  /** Called for each image that could not be read (it is skipped and recorded in the ledger). */
  onFailure?: (f: { path: string; split: string; reason: string }) => void;
}

export interface ExtractProgress {
  imagesDone: number;
  imagesTotal: number;
  /** Views the engine computed so far. */
  viewsExtracted: number;
  viewsCached: number;
  /** Views still to extract: those of images not looked at yet all count. */
  viewsLeft: number;
  failed: number;
  seconds: number;
  /** Seconds since the first view went to the engine (the time behind viewsExtracted). */
  extractSeconds: number;
}

export interface ExtractSummary {
  images: number;
  /** Images outside this shard (not processed). */
  otherShard: number;
  /** Views the datasets ask for (aug + clean, before dedupe of identical files). */
  views: number;
  /** Views extracted and stored in the cache by this run (an interrupt loses the rest). */
  extracted: number;
  alreadyCached: number;
  failed: { path: string; split: string; reason: string }[];
  duplicates: number;
  seconds: number;
  viewsPerSecond: number;
  interrupted: boolean;
}

interface Slot {
  run: ViewRun;
  index: number;
}

export async function extractFeatures(jobs: SplitJob[], o: ExtractOptions): Promise<ExtractSummary> {
  const t0 = performance.now();
  const { engine, preset, cache, norm } = o;
  const dim = engine.dim;
  const aborted = () => o.abort?.aborted ?? false;
  const commits = new CommitBuffer(cache, dim, Math.max(1, Math.floor(o.commitViews ?? DEFAULT_COMMIT_VIEWS)));
  let computed = 0;
  const queue = new BatchQueue<Slot>(engine, Math.max(1, Math.floor(o.batch)), preset.inputSize, (features, slots) => {
    slots.forEach((s, i) => commits.viewDone(s.run, s.index, features.subarray(i * dim, (i + 1) * dim)));
    computed += slots.length;
    // After a failed write (a full disk) nothing more is tried: the error says what is safe.
    if (!aborted() && !queue.failed) commits.commitIfDue();
  });
  const halted = () => aborted() || queue.failed || (o.shouldStop?.() ?? false);
  const claims = new Claims(cache);
  const render = new SerialChain();
  const seen = new Set<string>();
  /** Per image content decoded in this run: why it failed (after the file name), or undefined. */
  const decodeFailures = new Map<string, Promise<string | undefined>>();
  const summary: ExtractSummary = {
    images: jobs.reduce((s, j) => s + j.items.length, 0), otherShard: 0, views: 0, extracted: 0, alreadyCached: 0,
    failed: [], duplicates: 0, seconds: 0, viewsPerSecond: 0, interrupted: false,
  };
  const progress = new Progress(jobs, t0);

  const recordFailure = (split: string, path: string, e: unknown) => {
    const reason = failureReason(path, e);
    commits.addFailure({ path, split, reason, at: new Date().toISOString() });
    summary.failed.push({ path, split, reason });
    o.onFailure?.({ path, split, reason });
  };

  /** One image: read, hash, claim its missing views, decode, render them into the queue. */
  const processItem = async (job: SplitJob, item: DatasetItem) => {
    if (halted()) return;
    const want = { views: job.views, clean: job.clean };
    const wantViews = job.views + (job.clean ? 1 : 0);
    summary.views += wantViews;
    let bytes: Buffer;
    try {
      bytes = readImageFile(item.path);
    } catch (e) {
      recordFailure(job.split, item.path, e);
      return progress.imageDone(wantViews);
    }
    const hash = hashBytes(bytes);
    if (seen.has(hash)) summary.duplicates++;
    seen.add(hash);
    if (o.inShard && !o.inShard(hash)) {
      summary.otherShard++;
      summary.views -= wantViews;
      return progress.imageDone(wantViews);
    }
    const member = { hash, path: item.path, label: item.label, split: job.split };
    const missing = claims.claim(hash, want);
    if (missing.count === 0) {
      // An identical file earlier in this run may still be decoding: this copy shares its fate.
      const why = await decodeFailures.get(hash);
      if (why !== undefined) {
        recordFailure(job.split, item.path, new Error(item.path + why));
        return progress.imageDone(wantViews);
      }
      summary.alreadyCached += wantViews;
      progress.cached += wantViews;
      commits.addMember(member);
      return progress.imageDone();
    }
    summary.alreadyCached += wantViews - missing.count;
    progress.cached += wantViews - missing.count;
    const decoding = decodeImage(bytes, { maxPixels: o.maxPixels, name: item.path });
    decodeFailures.set(hash, decoding.then(() => undefined, (e: unknown) => failureReason(item.path, e).slice(item.path.length)));
    let decoded;
    try {
      decoded = await decoding;
    } catch (e) {
      claims.release(hash, missing);
      recordFailure(job.split, item.path, e);
      return progress.imageDone(missing.count);
    }
    const [first, second] = commits.openImage(member, [
      ...(missing.clean ? [{ kind: 'clean' as const, start: 0, count: 1 }] : []),
      ...(missing.augTo > missing.augFrom ? [{ kind: 'aug' as const, start: missing.augFrom, count: missing.augTo - missing.augFrom }] : []),
    ]);
    const cleanRun = missing.clean ? first : undefined;
    const augRun = missing.clean ? second : first;
    await render.then(async () => {
      progress.started();
      if (cleanRun && !halted()) {
        const ev = preset.evalImage(decoded);
        await queue.add((out, off) => preset.renderEval(ev, norm, out, off), { run: cleanRun, index: 0 });
      }
      if (augRun) {
        const prepared = preset.prepareTrain(decoded);
        for (let v = augRun.start; v < augRun.start + augRun.count && !halted(); v++) {
          const params = preset.viewParams(o.seed, hash, v);
          await queue.add((out, off) => preset.renderTrainView(prepared, params, norm, out, off), { run: augRun, index: v - augRun.start });
        }
      }
    });
    progress.imageDone();
  };

  const report = () => o.onProgress?.(progress.snapshot(computed, summary.failed.length));
  const timer = o.onProgress ? setInterval(report, 1000) : undefined;
  let error: unknown;
  try {
    for (const job of jobs) {
      const limit = pLimit(o.concurrency ?? defaultConcurrency(queue.batch, job.views + (job.clean ? 1 : 0)));
      // Every image settles before the next step (none is left running), then the first error counts.
      const results = await Promise.allSettled(job.items.map((item) => limit(() => processItem(job, item).finally(report))));
      const rejected = results.find((r) => r.status === 'rejected');
      if (rejected) throw rejected.reason;
    }
    await render.idle();
    if (!aborted()) {
      await queue.drain();
      if (!aborted()) commits.commit();
    }
  } catch (e) {
    error = e;
  } finally {
    if (timer) clearInterval(timer);
    await queue.settle();
  }
  if (error) throw outOfSpace(error, cache, commits.committedViews);
  summary.extracted = commits.committedViews;
  summary.interrupted = aborted() || (o.shouldStop?.() ?? false);
  summary.seconds = (performance.now() - t0) / 1000;
  summary.viewsPerSecond = summary.extracted / Math.max(1e-9, summary.seconds);
  report();
  return summary;
}

/** A full disk (or a file-size limit) mid-run, said the way a user acts on it: how much is safe, what to do. */
function outOfSpace(e: unknown, cache: FeatureCache, committed: number): unknown {
  if (!(e instanceof CacheWriteError) || !e.outOfSpace) return e;
  return new UserError(`${e.outOfSpace.words} writing ${cache.shown}; ${committed} views committed, ${e.outOfSpace.remedy} and rerun to resume`);
}

/**
 * Why a file failed, in one line that starts with its name: the error's first line after the name,
 * which may itself hold a newline (the message's first line would cut it there and lose the reason).
 */
export function failureReason(path: string, e: unknown): string {
  const msg = errorMessage(e);
  return msg.startsWith(path) ? path + msg.slice(path.length).split('\n')[0]! : `${path}: ${msg.split('\n')[0]!}`;
}

/** Views are rendered one image at a time (one JS thread); decoding runs ahead on sharp's threads. */
class SerialChain {
  private tail: Promise<void> = Promise.resolve();

  then(fn: () => Promise<void>): Promise<void> {
    const p = this.tail.then(fn);
    this.tail = p.catch(() => {});
    return p;
  }

  idle(): Promise<void> {
    return this.then(async () => {});
  }
}

/** Counts for the progress line; the ETA counts views still to extract, not images. */
class Progress {
  imagesDone = 0;
  cached = 0;
  private skipped = 0;
  private readonly imagesTotal: number;
  private readonly viewsWanted: number;
  private firstView: number | undefined;

  constructor(jobs: SplitJob[], private readonly t0: number) {
    this.imagesTotal = jobs.reduce((s, j) => s + j.items.length, 0);
    this.viewsWanted = jobs.reduce((s, j) => s + j.items.length * (j.views + (j.clean ? 1 : 0)), 0);
  }

  /** The first view goes to the engine. */
  started(): void {
    this.firstView ??= performance.now();
  }

  /** An image is through: `notToDo` of its wanted views will not be extracted (unreadable, other shard). */
  imageDone(notToDo = 0): void {
    this.imagesDone++;
    this.skipped += notToDo;
  }

  snapshot(viewsExtracted: number, failed: number): ExtractProgress {
    const now = performance.now();
    return {
      imagesDone: this.imagesDone, imagesTotal: this.imagesTotal, viewsExtracted, viewsCached: this.cached,
      viewsLeft: Math.max(0, this.viewsWanted - this.cached - this.skipped - viewsExtracted), failed,
      seconds: (now - this.t0) / 1000, extractSeconds: this.firstView === undefined ? 0 : (now - this.firstView) / 1000,
    };
  }
}

/**
 * Views per cache transaction by default. Measured (bench/extract.mjs, 200 images, K=5): one commit
 * per 8-view batch made the file 1.29x the payload (LMDB rounds each packed value up to whole pages);
 * 64 views per commit brings it back to ~1.05-1.15x, and a kill then loses at most ~1 s of work.
 */
export const DEFAULT_COMMIT_VIEWS = 64;

/**
 * Images in flight by default: an image admitted in one turn of the main thread is decoded (on sharp's
 * threads) while earlier batches run and rendered in a later turn, so the images in flight must hold
 * the views of the batch being rendered plus the next one, and never fewer than two per core.
 */
export function defaultConcurrency(batch: number, viewsPerImage: number): number {
  return Math.max(2 * availableParallelism(), Math.ceil((2 * batch) / Math.max(1, viewsPerImage)) + 2);
}
