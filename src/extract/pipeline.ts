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
import { decodeImage, readImageFile, type RgbImage } from '../image/decode.js';
import { CacheWriteError, type FeatureCache } from '../cache/store.js';
import type { DatasetItem } from '../data/dataset.js';
import { hashBytes } from '../data/hash.js';
import { UserError, errorMessage } from '../errors.js';
import { BatchQueue } from './batch-queue.js';
import { CommitBuffer, type ViewRun } from './commit-buffer.js';
import { Claims } from './missing.js';
import { ProgressCounts, type ExtractProgress } from './progress.js';

export type { ExtractProgress };

export interface SplitJob {
  split: string;
  items: DatasetItem[];
  /** Augmented views wanted per image (0 for eval-only splits). */
  views: number;
  /** Keep the eval-transform view too. */
  clean: boolean;
  /** Also the preset's extra test-time views (val and eval images of a preset that has them). */
  tta?: boolean;
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
  return new Extraction(jobs, o).run();
}

/** One extract: the parts (queue, commit buffer, claims, counts) and the steps that use them. */
class Extraction {
  private readonly t0 = performance.now();
  private readonly dim: number;
  private readonly commits: CommitBuffer;
  private readonly queue: BatchQueue<Slot>;
  private readonly claims: Claims;
  /** Views are rendered one image at a time (one JS thread); decoding runs ahead on sharp's threads. */
  private readonly render = new SerialChain();
  private readonly seen = new Set<string>();
  /** Per image content decoded in this run: why it failed (after the file name), or undefined. */
  private readonly decodeFailures = new Map<string, Promise<string | undefined>>();
  private readonly summary: ExtractSummary;
  private readonly counts: ProgressCounts;

  constructor(private readonly jobs: SplitJob[], private readonly o: ExtractOptions) {
    this.dim = o.engine.dim;
    this.commits = new CommitBuffer(o.cache, this.dim, Math.max(1, Math.floor(o.commitViews ?? DEFAULT_COMMIT_VIEWS)));
    this.queue = new BatchQueue<Slot>(o.engine, Math.max(1, Math.floor(o.batch)), o.preset.inputSize, (f, slots) => this.batchDone(f, slots));
    this.claims = new Claims(o.cache);
    this.summary = {
      images: jobs.reduce((s, j) => s + j.items.length, 0), otherShard: 0, views: 0, extracted: 0, alreadyCached: 0,
      failed: [], duplicates: 0, seconds: 0, viewsPerSecond: 0, interrupted: false,
    };
    const viewsWanted = jobs.reduce((s, j) => s + j.items.length * this.viewsPerImage(j), 0);
    this.counts = new ProgressCounts(this.summary.images, viewsWanted, this.t0);
  }

  /** Views a job wants of each image: augmented, clean, and the preset's test-time views when asked. */
  private viewsPerImage(job: SplitJob): number {
    return job.views + (job.clean ? 1 : 0) + this.ttaWanted(job);
  }

  private ttaWanted(job: SplitJob): number {
    return job.tta ? this.o.preset.testViews : 0;
  }

  async run(): Promise<ExtractSummary> {
    const report = () => this.o.onProgress?.(this.counts.snapshot(this.summary.alreadyCached, this.summary.failed.length));
    const timer = this.o.onProgress ? setInterval(report, 1000) : undefined;
    let error: unknown;
    try {
      for (const job of this.jobs) {
        const limit = pLimit(this.o.concurrency ?? defaultConcurrency(this.queue.batch, this.viewsPerImage(job)));
        // Every image settles before the next step (none is left running), then the first error counts.
        const results = await Promise.allSettled(job.items.map((item) => limit(() => this.image(job, item).finally(report))));
        const rejected = results.find((r) => r.status === 'rejected');
        if (rejected) throw rejected.reason;
      }
      await this.render.idle();
      if (!this.aborted()) {
        await this.queue.drain();
        if (!this.aborted()) this.commits.commit();
      }
    } catch (e) {
      error = e;
    } finally {
      if (timer) clearInterval(timer);
      await this.queue.settle();
    }
    if (error) throw outOfSpace(error, this.o.cache, this.commits.committedViews);
    const s = this.summary;
    s.extracted = this.commits.committedViews;
    s.interrupted = this.aborted() || (this.o.shouldStop?.() ?? false);
    s.seconds = (performance.now() - this.t0) / 1000;
    s.viewsPerSecond = s.extracted / Math.max(1e-9, s.seconds);
    report();
    return s;
  }

  private aborted(): boolean {
    return this.o.abort?.aborted ?? false;
  }

  private halted(): boolean {
    return this.aborted() || this.queue.failed || (this.o.shouldStop?.() ?? false);
  }

  private batchDone(features: Float32Array, slots: Slot[]): void {
    slots.forEach((s, i) => this.commits.viewDone(s.run, s.index, features.subarray(i * this.dim, (i + 1) * this.dim)));
    this.counts.extracted += slots.length;
    // After a failed write (a full disk) nothing more is tried: the error says what is safe.
    if (!this.aborted() && !this.queue.failed) this.commits.commitIfDue();
  }

  /** One image: read, hash, claim its missing views, decode, render them into the queue. */
  private async image(job: SplitJob, item: DatasetItem): Promise<void> {
    if (this.halted()) return;
    const { summary, counts } = this;
    const wantViews = this.viewsPerImage(job);
    summary.views += wantViews;
    let bytes: Buffer;
    try {
      bytes = readImageFile(item.path);
    } catch (e) {
      this.recordFailure(job.split, item.path, e);
      return counts.imageDone(wantViews);
    }
    const hash = hashBytes(bytes);
    if (this.seen.has(hash)) summary.duplicates++;
    this.seen.add(hash);
    if (this.o.inShard && !this.o.inShard(hash)) {
      summary.otherShard++;
      summary.views -= wantViews;
      return counts.imageDone(wantViews);
    }
    const member = { hash, path: item.path, label: item.label, split: job.split };
    const missing = this.claims.claim(hash, { views: job.views, clean: job.clean, tta: this.ttaWanted(job) });
    if (missing.count === 0) {
      // An identical file earlier in this run may still be decoding: this copy shares its fate.
      const why = await this.decodeFailures.get(hash);
      if (why !== undefined) {
        this.recordFailure(job.split, item.path, new Error(item.path + why));
        return counts.imageDone(wantViews);
      }
      summary.alreadyCached += wantViews;
      this.commits.addMember(member);
      return counts.imageDone();
    }
    summary.alreadyCached += wantViews - missing.count;
    const decoding = decodeImage(bytes, { maxPixels: this.o.maxPixels, name: item.path });
    this.decodeFailures.set(hash, decoding.then(() => undefined, (e: unknown) => failureReason(item.path, e).slice(item.path.length)));
    let decoded: RgbImage;
    try {
      decoded = await decoding;
    } catch (e) {
      this.claims.release(hash, missing);
      this.recordFailure(job.split, item.path, e);
      return counts.imageDone(missing.count);
    }
    const runs = this.commits.openImage(member, [
      ...(missing.clean ? [{ kind: 'clean' as const, start: 0, count: 1 }] : []),
      ...(missing.ttaTo! > missing.ttaFrom! ? [{ kind: 'tta' as const, start: missing.ttaFrom!, count: missing.ttaTo! - missing.ttaFrom! }] : []),
      ...(missing.augTo > missing.augFrom ? [{ kind: 'aug' as const, start: missing.augFrom, count: missing.augTo - missing.augFrom }] : []),
    ]);
    await this.render.run(() => this.renderViews(decoded, runs));
    counts.imageDone();
  }

  /** Renders the views of one image's runs into the queue, in order, until told to stop. */
  private async renderViews(decoded: RgbImage, runs: ViewRun[]): Promise<void> {
    const { preset, norm, seed } = this.o;
    this.counts.started();
    let ev: RgbImage | undefined;
    for (const run of runs) {
      if (run.kind === 'clean') {
        if (this.halted()) return;
        ev ??= preset.evalImage(decoded);
        const img = ev;
        await this.queue.add((out, off) => preset.renderEval(img, norm, out, off), { run, index: 0 });
        continue;
      }
      if (run.kind === 'tta') {
        // Test-time views are drawn from the eval image, like the clean view.
        const img = (ev ??= preset.evalImage(decoded));
        for (let t = run.start; t < run.start + run.count && !this.halted(); t++) {
          await this.queue.add((out, off) => preset.renderTestView(img, t, norm, out, off), { run, index: t - run.start });
        }
        continue;
      }
      const prepared = preset.prepareTrain(decoded);
      for (let v = run.start; v < run.start + run.count && !this.halted(); v++) {
        const params = preset.viewParams(seed, run.hash, v);
        await this.queue.add((out, off) => preset.renderTrainView(prepared, params, norm, out, off), { run, index: v - run.start });
      }
    }
  }

  private recordFailure(split: string, path: string, e: unknown): void {
    const reason = failureReason(path, e);
    this.commits.addFailure({ path, split, reason, at: new Date().toISOString() });
    this.summary.failed.push({ path, split, reason });
    this.o.onFailure?.({ path, split, reason });
  }
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

/** Runs async steps one after the other, in the order they were asked for. */
class SerialChain {
  private tail: Promise<void> = Promise.resolve();

  run(fn: () => Promise<void>): Promise<void> {
    const p = this.tail.then(fn);
    this.tail = p.catch(() => {});
    return p;
  }

  idle(): Promise<void> {
    return this.run(async () => {});
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
