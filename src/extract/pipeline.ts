// Stage one: every image is read and hashed once, decoded and resized once, and its missing views are
// rendered by the preset's fused kernel straight into the batch buffer the engine consumes. Engine
// batches run one at a time while the next batch is being filled; each finished batch is committed to
// the cache in one transaction, so a killed run loses at most the batch in flight.
//
// onnxruntime-node runs a batch synchronously on the JS main thread (its session.run is a setImmediate
// around a blocking native call), so this thread gets a turn only between batches, and every step
// that needs it costs a whole batch of latency. Hence files are read synchronously (one turn instead
// of four: decode.ts readImageFile) and enough images are kept in flight that the next batch is decoded while this one runs.
// The view kernels stay on this thread, between batches. A render worker that overlapped them with
// inference was tried and dropped: on the 2-core machine here it slowed the engine's parallel sections
// by more than the rendering it hid (61.6 vs 64.6 views/s with 2 engine threads, no gain with 1).
import { availableParallelism } from 'node:os';
import pLimit from 'p-limit';
import type { Engine } from './backbone/engine.js';
import type { NormLut } from './normalize.js';
import type { Preset } from './presets.js';
import type { RgbImage } from './decode.js';
import { decodeImage, readImageFile } from './decode.js';
import type { FeatureCache } from '../cache/store.js';
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
}

export interface ExtractOptions {
  engine: Engine;
  norm: NormLut;
  preset: Preset;
  cache: FeatureCache;
  seed: number;
  batch: number;
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
  kind: 'aug' | 'clean';
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
  const seen = new Set<string>();

  // --- the batch buffers: fill one while the engine runs the other -----------------------------
  const buffers = [new Float32Array(batchSize * viewFloats), new Float32Array(batchSize * viewFloats)];
  let cur = 0;
  let slots: Slot[] = [];
  let inflight: Promise<void> = Promise.resolve();
  let failure: unknown;
  const doneFeatures: Pending[] = [];
  const doneMembers: Member[] = [];
  const failures: Failure[] = [];
  const resolved: string[] = [];

  const commitDone = async () => {
    if (doneFeatures.length === 0 && doneMembers.length === 0 && failures.length === 0 && resolved.length === 0) return;
    const features = doneFeatures.splice(0).map((p) => ({ hash: p.hash, kind: p.kind, start: p.start, data: p.data }));
    await cache.commit({ features, members: doneMembers.splice(0), failures: failures.splice(0), resolved: resolved.splice(0) });
  };

  const finishTask = (task: ImageTask) => {
    doneMembers.push(task.member);
    resolved.push(task.member.path);
    imagesDone++;
  };

  const runBatch = async (buf: Float32Array, batchSlots: Slot[]) => {
    const n = batchSlots.length;
    const feats = await engine.embed(n === batchSize ? buf : buf.subarray(0, n * viewFloats), n, size, size);
    for (let i = 0; i < n; i++) {
      const { pending, index } = batchSlots[i]!;
      pending.data.set(feats.subarray(i * dim, (i + 1) * dim), index * dim);
      if (++pending.filled === pending.count) {
        doneFeatures.push(pending);
        if (--pending.owner.open === 0) finishTask(pending.owner);
      }
    }
    summary.extracted += n;
    await commitDone();
  };

  const flush = async () => {
    if (slots.length === 0) return;
    const buf = buffers[cur]!;
    const batchSlots = slots;
    slots = [];
    cur ^= 1;
    // One engine batch at a time; the other buffer is free to fill as soon as the previous batch is done.
    const prev = inflight;
    inflight = prev.then(() => runBatch(buf, batchSlots)).catch((e) => { failure ??= e; });
    await prev;
    if (failure) throw failure;
  };

  /** Renders one view into the current buffer; flushes when it is full. */
  const addView = async (render: (out: Float32Array, offset: number) => void, slot: Slot) => {
    render(buffers[cur]!, slots.length * viewFloats);
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
    const wantViews = job.views + (job.clean ? 1 : 0);
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
    const newViews = (augTo - augFrom) + (needClean ? 1 : 0);
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
      recordFailure(job.split, item.path, e);
      return;
    }

    const task: ImageTask = { member, open: 0 };
    const mk = (kind: 'aug' | 'clean', start: number, count: number): Pending => {
      const p: Pending = { hash, kind, start, count, filled: 0, data: new Float32Array(count * dim), owner: task };
      task.open++;
      return p;
    };
    const augP = augTo > augFrom ? mk('aug', augFrom, augTo - augFrom) : undefined;
    const cleanP = needClean ? mk('clean', 0, 1) : undefined;

    await serially(async () => {
      if (cleanP) {
        const ev = preset.evalImage(decoded);
        if (stop()) return;
        await addView((out, off) => preset.renderEval(ev, norm, out, off), { pending: cleanP, index: 0 });
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
      const limit = pLimit(o.concurrency ?? defaultConcurrency(batchSize, job.views + (job.clean ? 1 : 0)));
      await Promise.all(job.items.map((item) => limit(() => processItem(job, item))));
    }
    await serially(async () => {});
    await flush();
    await inflight;
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
 * Images in flight by default: an image admitted in one turn of the main thread is decoded (on sharp's
 * threads) during the next engine batch and rendered in the turn after it, so the images in flight
 * must hold the views of the batch being rendered plus the next one.
 */
export function defaultConcurrency(batch: number, viewsPerImage: number): number {
  return Math.max(2 * availableParallelism(), Math.ceil((2 * batch) / Math.max(1, viewsPerImage)) + 2);
}
