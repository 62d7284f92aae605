// Stage one: every image is read and hashed once, decoded and resized once, and its missing views are
// rendered by the preset's fused kernel straight into a batch buffer the engine consumes. The engine
// runs up to `engine.parallel` batches at once (onnx: one single-threaded session per core, each in
// its own worker thread) while this thread decodes and renders the next batch; one more full batch
// waits in line so that a session that finishes never waits for this thread.
//
// Finished views are committed to the cache in one transaction once there are `commitViews` of them
// (and at the end, or on a stop), so a killed run loses at most those plus the batches in flight.
//
// Files are read synchronously (one turn of the main thread instead of four: decode.ts readImageFile),
// decoding runs on sharp's thread pool, and enough images are kept in flight to fill the batches ahead.
import { availableParallelism } from 'node:os';
import pLimit from 'p-limit';
import type { Engine } from './backbone/engine.js';
import type { NormLut } from './normalize.js';
import type { Preset } from './presets.js';
import type { RgbImage } from './decode.js';
import { decodeImage, readImageFile } from './decode.js';
import type { FeatureCache, FeatureKind } from '../cache/store.js';
import type { Failure, Member } from '../cache/types.js';
import type { DatasetItem } from '../data/dataset.js';
import { hashBytes } from '../data/hash.js';
import { errorMessage } from '../errors.js';

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
  /** Polled between views: when it returns true, no new view is started; what is rendered is flushed and committed. */
  shouldStop?: () => boolean;
  onProgress?: (p: ExtractProgress) => void;
  /** Called for each image that could not be read (it is skipped and recorded in the ledger). */
  onFailure?: (f: { path: string; split: string; reason: string }) => void;
}

export interface ExtractProgress {
  imagesDone: number;
  imagesTotal: number;
  viewsExtracted: number;
  viewsCached: number;
  failed: number;
  seconds: number;
}

export interface ExtractSummary {
  images: number;
  /** Images outside this shard (not processed). */
  otherShard: number;
  /** Views the datasets ask for (aug + clean, before dedupe of identical files). */
  views: number;
  extracted: number;
  alreadyCached: number;
  failed: { path: string; split: string; reason: string }[];
  duplicates: number;
  seconds: number;
  viewsPerSecond: number;
  interrupted: boolean;
}

/** Features of one image and kind being gathered across batches, committed once complete. */
interface Pending {
  hash: string;
  kind: FeatureKind;
  start: number;
  count: number;
  filled: number;
  data: Float32Array;
  owner: ImageTask;
}

interface ImageTask {
  member: Member;
  /** Pendings of this image not yet complete. */
  open: number;
}

interface Slot {
  pending: Pending;
  index: number;
}

export async function extractFeatures(jobs: SplitJob[], o: ExtractOptions): Promise<ExtractSummary> {
  const t0 = performance.now();
  const { engine, preset, cache, norm } = o;
  const size = preset.inputSize;
  const viewFloats = size * size * 3;
  const dim = engine.dim;
  const batchSize = Math.max(1, Math.floor(o.batch));
  const stop = o.shouldStop ?? (() => false);

  const imagesTotal = jobs.reduce((s, j) => s + j.items.length, 0);
  const summary: ExtractSummary = {
    images: imagesTotal, otherShard: 0, views: 0, extracted: 0, alreadyCached: 0, failed: [],
    duplicates: 0, seconds: 0, viewsPerSecond: 0, interrupted: false,
  };
  let imagesDone = 0;

  // Which (hash, kind) views are already claimed by this run, so identical files are extracted once.
  const claimedAug = new Map<string, number>();
  const claimedClean = new Set<string>();
  const claimedTta = new Map<string, number>();
  const seen = new Set<string>();

  // --- the batch buffers: one being filled, the others with the engine ----------------------------
  const free = Array.from({ length: engine.parallel + 1 }, () => engine.allocInput(batchSize * viewFloats));
  let buf = free.pop()!;
  let slots: Slot[] = [];
  const running = new Set<Promise<void>>();
  let failure: unknown;
  const commitViews = Math.max(1, Math.floor(o.commitViews ?? DEFAULT_COMMIT_VIEWS));
  const doneFeatures: Pending[] = [];
  let doneViews = 0;
  const doneMembers: Member[] = [];
  const failures: Failure[] = [];
  const resolved: string[] = [];

  // Batches finish in any order; their commits still go one after the other.
  let commits: Promise<void> = Promise.resolve();
  const commitDone = () => {
    commits = commits.then(async () => {
      if (doneFeatures.length === 0 && doneMembers.length === 0 && failures.length === 0 && resolved.length === 0) return;
      doneViews = 0;
      const features = doneFeatures.splice(0).map((p) => ({ hash: p.hash, kind: p.kind, start: p.start, data: p.data }));
      await cache.commit({ features, members: doneMembers.splice(0), failures: failures.splice(0), resolved: resolved.splice(0) });
    });
    return commits;
  };

  const finishTask = (task: ImageTask) => {
    doneMembers.push(task.member);
    resolved.push(task.member.path);
    imagesDone++;
  };

  const runBatch = async (input: Float32Array, batchSlots: Slot[]) => {
    const n = batchSlots.length;
    const feats = await engine.embed(n === batchSize ? input : input.subarray(0, n * viewFloats), n, size, size);
    for (let i = 0; i < n; i++) {
      const { pending, index } = batchSlots[i]!;
      pending.data.set(feats.subarray(i * dim, (i + 1) * dim), index * dim);
      if (++pending.filled === pending.count) {
        doneFeatures.push(pending);
        doneViews += pending.count;
        if (--pending.owner.open === 0) finishTask(pending.owner);
      }
    }
    summary.extracted += n;
    if (doneViews >= commitViews) await commitDone();
  };

  /** Hands the filled buffer to the engine and returns once another buffer is free to fill. */
  const flush = async () => {
    if (slots.length > 0) {
      const input = buf;
      const batchSlots = slots;
      slots = [];
      const p: Promise<void> = runBatch(input, batchSlots)
        .catch((e) => { failure ??= e; })
        .finally(() => { running.delete(p); free.push(input); });
      running.add(p);
      while (free.length === 0) await Promise.race(running);
      buf = free.pop()!;
    }
    if (failure) throw failure;
  };

  /** Renders one view into the current buffer; flushes when it is full. */
  const addView = async (render: (out: Float32Array, offset: number) => void, slot: Slot) => {
    render(buf, slots.length * viewFloats);
    slots.push(slot);
    if (slots.length === batchSize) await flush();
  };

  const report = () => o.onProgress?.({
    imagesDone, imagesTotal, viewsExtracted: summary.extracted, viewsCached: summary.alreadyCached,
    failed: summary.failed.length, seconds: (performance.now() - t0) / 1000,
  });

  const recordFailure = (split: string, path: string, e: unknown) => {
    const reason = errorMessage(e).split('\n')[0]!;
    failures.push({ path, split, reason, at: new Date().toISOString() });
    summary.failed.push({ path, split, reason });
    o.onFailure?.({ path, split, reason });
    imagesDone++;
  };

  // Views are rendered serially (one JS thread); decoding runs ahead on sharp's thread pool.
  let renderChain: Promise<void> = Promise.resolve();
  const serially = (fn: () => Promise<void>) => {
    const p = renderChain.then(fn);
    renderChain = p.catch(() => {});
    return p;
  };

  const processItem = async (job: SplitJob, item: DatasetItem) => {
    if (stop() || failure) return;
    const wantTta = job.tta ? preset.testViews : 0;
    const wantViews = job.views + (job.clean ? 1 : 0) + wantTta;
    summary.views += wantViews;
    let bytes: Buffer;
    try {
      bytes = readImageFile(item.path);
    } catch (e) {
      recordFailure(job.split, item.path, e);
      return;
    }
    const hash = hashBytes(bytes);
    if (seen.has(hash)) summary.duplicates++;
    seen.add(hash);
    if (o.inShard && !o.inShard(hash)) {
      summary.otherShard++;
      summary.views -= wantViews;
      imagesDone++;
      return;
    }
    const member: Member = { hash, path: item.path, label: item.label, split: job.split };
    // Claim the views this image still needs, past what the cache and this run already have.
    const have = Math.max(cache.augViews(hash), claimedAug.get(hash) ?? 0);
    const augFrom = have, augTo = Math.max(have, job.views);
    if (augTo > augFrom) claimedAug.set(hash, augTo);
    const needClean = job.clean && !cache.hasClean(hash) && !claimedClean.has(hash);
    if (needClean) claimedClean.add(hash);
    const haveTta = Math.max(cache.ttaViews(hash), claimedTta.get(hash) ?? 0);
    const ttaFrom = haveTta, ttaTo = Math.max(haveTta, wantTta);
    if (ttaTo > ttaFrom) claimedTta.set(hash, ttaTo);
    const newViews = (augTo - augFrom) + (needClean ? 1 : 0) + (ttaTo - ttaFrom);
    summary.alreadyCached += Math.max(0, wantViews - newViews);
    if (newViews === 0) {
      doneMembers.push(member);
      resolved.push(item.path);
      imagesDone++;
      return;
    }

    let decoded: RgbImage;
    try {
      decoded = await decodeImage(bytes, { maxPixels: o.maxPixels, name: item.path });
    } catch (e) {
      // Give the claims back so that a duplicate path of the same bytes does not wait on nothing.
      if (augTo > augFrom) claimedAug.set(hash, augFrom);
      if (needClean) claimedClean.delete(hash);
      if (ttaTo > ttaFrom) claimedTta.set(hash, ttaFrom);
      recordFailure(job.split, item.path, e);
      return;
    }

    const task: ImageTask = { member, open: 0 };
    const mk = (kind: FeatureKind, start: number, count: number): Pending => {
      const p: Pending = { hash, kind, start, count, filled: 0, data: new Float32Array(count * dim), owner: task };
      task.open++;
      return p;
    };
    const augP = augTo > augFrom ? mk('aug', augFrom, augTo - augFrom) : undefined;
    const cleanP = needClean ? mk('clean', 0, 1) : undefined;
    const ttaP = ttaTo > ttaFrom ? mk('tta', ttaFrom, ttaTo - ttaFrom) : undefined;

    await serially(async () => {
      if (cleanP || ttaP) {
        const ev = preset.evalImage(decoded);
        if (stop()) return;
        if (cleanP) await addView((out, off) => preset.renderEval(ev, norm, out, off), { pending: cleanP, index: 0 });
        for (let t = ttaFrom; ttaP && t < ttaTo; t++) {
          if (stop() || failure) return;
          await addView((out, off) => preset.renderTestView(ev, t, norm, out, off), { pending: ttaP, index: t - ttaFrom });
        }
      }
      if (augP) {
        const prepared = preset.prepareTrain(decoded);
        for (let v = augFrom; v < augTo; v++) {
          if (stop() || failure) return;
          const params = preset.viewParams(o.seed, hash, v);
          await addView((out, off) => preset.renderTrainView(prepared, params, norm, out, off), { pending: augP, index: v - augFrom });
        }
      }
    });
    report();
  };

  const timer = o.onProgress ? setInterval(report, 1000) : undefined;
  try {
    for (const job of jobs) {
      const limit = pLimit(o.concurrency ?? defaultConcurrency(batchSize, job.views + (job.clean ? 1 : 0) + (job.tta ? preset.testViews : 0)));
      await Promise.all(job.items.map((item) => limit(() => processItem(job, item))));
    }
    await serially(async () => {});
    await flush();
    await Promise.all(running);
    if (failure) throw failure;
    await commitDone();
  } finally {
    if (timer) clearInterval(timer);
  }
  summary.interrupted = stop();
  summary.seconds = (performance.now() - t0) / 1000;
  summary.viewsPerSecond = summary.extracted / Math.max(1e-9, summary.seconds);
  report();
  return summary;
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
