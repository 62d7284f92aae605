// int8 calibration: the activation ranges of the QDQ graph (backbone/quantize.ts), measured on the
// fp32 network over the clean (eval-transform) views of a sample of training images.
//
// Deterministic by construction, so that a rerun, or each shard of a sharded run, arrives at the same
// file: the sample is the `count` distinct images with the smallest content hashes (a property of the
// bytes, not of the list order or the shard), every image runs alone (batch 1) through a
// single-threaded session, and the statistics (min/max, histograms) do not depend on image order.
// Shards on different CPU types may still differ in the last bits of fp32; they pass
// `--calibration CACHE` (one shard's cache) instead, and `cache merge` refuses a mix.
import { openCalibrationSession, type ActivationPoint, type ActivationRanges } from '../backbone/quantize.js';
import type { FoldedResNet } from '../backbone/spec.js';
import type { BackboneOptions } from '../backbone/index.js';
import { CALIBRATION_FORMAT, checkCalibrationFits, type CalibrationFile } from '../cache/calibration.js';
import type { DatasetItem } from '../data/dataset.js';
import { hashBytes } from '../data/hash.js';
import { UserError, errorMessage } from '../errors.js';
import { log } from '../log.js';
import { decodeImage, readImageFile } from '../image/decode.js';
import { makeNormLut, type NormLut } from '../image/normalize.js';
import type { Preset } from '../image/presets.js';

/**
 * How a point's range is chosen from its fp32 values: the extremes ("minmax"), a two-sided quantile
 * ("percentile:99.99" keeps 99.99 % of the values inside), or the clipping that minimises the
 * expected squared quantisation error over the histogram ("mse").
 */
export type CalibrationMethod = 'minmax' | 'mse' | `percentile:${number}`;

/**
 * Chosen by measurement on food101-10 train (bench/int8-calibration.mjs, resnet50-keras, 32 images):
 * cosine to fp32 on training images outside the sample, median 0.9973 (minmax 0.9968, mse 0.9970,
 * percentile:99.99 0.9965), 5th percentile 0.9951 (minmax 0.9944); the clean-view head's accuracy on a
 * held-out quarter of train was the same for all four within one image.
 */
export const DEFAULT_CALIBRATION_METHOD: CalibrationMethod = 'percentile:99.999';
/** 128 images measured no better than 32 (bench/int8-calibration.mjs). */
export const DEFAULT_CALIBRATION_IMAGES = 32;
const BINS = 2048;

export function parseMethod(m: string): CalibrationMethod {
  if (m === 'minmax' || m === 'mse') return m;
  const p = /^percentile:(\d+(?:\.\d+)?)$/.exec(m);
  if (p && Number(p[1]) > 50 && Number(p[1]) < 100) return m as CalibrationMethod;
  throw new UserError(`calibration method "${m}": expected minmax, mse or percentile:P (50 < P < 100)`);
}

/** The `count` distinct images with the smallest content hashes, in hash order. */
export function calibrationSample<T extends { hash: string }>(items: T[], count: number): T[] {
  const byHash = new Map<string, T>();
  for (const it of items) if (!byHash.has(it.hash)) byHash.set(it.hash, it);
  return [...byHash.values()].sort((a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0)).slice(0, count);
}

interface PointStats {
  point: ActivationPoint;
  min: number;
  max: number;
  /** Exact zeros (ReLU outputs are mostly zeros; zero is exact in every uint8 range). */
  zeros: number;
  count: number;
  /** BINS bins over [lo, hi] of the range pass, zeros left out. */
  hist?: Float64Array;
  lo: number;
  hi: number;
}

/** Per-point statistics, gathered in a range pass, then (for histogram methods) a histogram pass. */
export class ActivationStats {
  private readonly stats = new Map<string, PointStats>();

  constructor(points: ActivationPoint[]) {
    for (const p of points) {
      if (!p.sameAs) this.stats.set(p.name, { point: p, min: Infinity, max: -Infinity, zeros: 0, count: 0, lo: 0, hi: 0 });
    }
  }

  static needsHistogram(method: CalibrationMethod): boolean {
    return method !== 'minmax';
  }

  observeRange(values: Map<string, Float32Array>): void {
    for (const [name, v] of values) {
      const s = this.stats.get(name);
      if (!s) continue;
      let min = s.min, max = s.max;
      for (let i = 0; i < v.length; i++) {
        const x = v[i]!;
        if (x < min) min = x;
        if (x > max) max = x;
      }
      s.min = min;
      s.max = max;
    }
  }

  observeHistogram(values: Map<string, Float32Array>): void {
    for (const [name, v] of values) {
      const s = this.stats.get(name);
      if (!s) continue;
      if (!s.hist) {
        s.hist = new Float64Array(BINS);
        s.lo = Math.min(0, s.min);
        s.hi = Math.max(0, s.max);
      }
      const h = s.hist;
      const width = (s.hi - s.lo) / BINS;
      const inv = width > 0 ? 1 / width : 0;
      let zeros = 0;
      for (let i = 0; i < v.length; i++) {
        const x = v[i]!;
        if (x === 0) {
          zeros++;
          continue;
        }
        h[Math.min(BINS - 1, Math.max(0, Math.floor((x - s.lo) * inv)))]!++;
      }
      s.zeros += zeros;
      s.count += v.length;
    }
  }

  ranges(method: CalibrationMethod): ActivationRanges {
    const out: ActivationRanges = {};
    for (const [name, s] of this.stats) {
      if (!(s.min <= s.max)) throw new Error(`calibration saw no values of ${name}`);
      if (method === 'minmax' || !s.hist) out[name] = [s.min, s.max];
      else if (method === 'mse') out[name] = mseRange(s);
      else out[name] = percentileRange(s, Number(method.slice('percentile:'.length)));
    }
    return out;
  }
}

function binEdges(s: PointStats): { width: number; center: (i: number) => number } {
  const width = (s.hi - s.lo) / BINS;
  return { width, center: (i) => s.lo + (i + 0.5) * width };
}

/** Two-sided: at most (100 - p)/2 % of the values below the low end and as many above the high end. */
function percentileRange(s: PointStats, p: number): [number, number] {
  const h = s.hist!;
  const { width } = binEdges(s);
  const tail = ((100 - p) / 100 / 2) * s.count;
  let hi = s.max;
  let acc = 0;
  for (let i = BINS - 1; i >= 0; i--) {
    acc += h[i]!;
    if (acc > tail) {
      hi = Math.min(s.max, s.lo + (i + 1) * width);
      break;
    }
  }
  let lo = s.min;
  acc = 0;
  for (let i = 0; i < BINS; i++) {
    acc += h[i]!;
    if (acc > tail) {
      lo = Math.max(s.min, s.lo + i * width);
      break;
    }
  }
  return [Math.min(lo, 0), Math.max(hi, 0)];
}

/**
 * The range [lo·t, hi·t] (t in (0, 1]) with the least expected squared error: values inside round
 * with error step²/12, values outside are clipped to the nearest end.
 */
function mseRange(s: PointStats): [number, number] {
  const h = s.hist!;
  const { center } = binEdges(s);
  const lo0 = s.point.nonNegative ? 0 : Math.min(0, s.min);
  const hi0 = Math.max(0, s.max);
  let best: [number, number] = [lo0, hi0];
  let bestErr = Infinity;
  for (let k = 200; k >= 4; k--) {
    const t = k / 200;
    const lo = lo0 * t, hi = hi0 * t;
    const step = (hi - lo) / 255;
    let err = 0;
    const inside = (step * step) / 12;
    for (let i = 0; i < BINS; i++) {
      const n = h[i]!;
      if (n === 0) continue;
      const c = center(i);
      if (c > hi) err += n * (c - hi) ** 2;
      else if (c < lo) err += n * (lo - c) ** 2;
      else err += n * inside;
    }
    if (err < bestErr) {
      bestErr = err;
      best = [lo, hi];
    }
  }
  return best;
}

export interface CalibrateOptions {
  preset: Preset;
  norm: NormLut;
  weightsSha256: string;
  count?: number;
  method?: CalibrationMethod;
  quiet?: boolean;
}

/**
 * Calibrates `net` on the clean views of a sample of `items` (typically the training set; every file
 * is read once to hash it). Unreadable or undecodable images are passed over for the next hashes.
 */
export async function computeCalibration(net: FoldedResNet, items: DatasetItem[], o: CalibrateOptions): Promise<CalibrationFile> {
  const t0 = performance.now();
  const count = Math.max(1, Math.floor(o.count ?? DEFAULT_CALIBRATION_IMAGES));
  const method = o.method ?? DEFAULT_CALIBRATION_METHOD;
  const hashed: { hash: string; path: string }[] = [];
  for (const it of items) {
    try {
      hashed.push({ hash: hashBytes(readImageFile(it.path)), path: it.path });
    } catch {
      // extract records unreadable files in its ledger; calibration just takes other images
    }
  }
  const size = o.preset.inputSize;
  const per = size * size * 3;
  const views: { hash: string; x: Float32Array }[] = [];
  for (const cand of calibrationSample(hashed, hashed.length)) {
    if (views.length === count) break;
    try {
      const x = new Float32Array(per);
      o.preset.renderEval(o.preset.evalImage(await decodeImage(cand.path)), o.norm, x, 0);
      views.push({ hash: cand.hash, x });
    } catch (e) {
      if (!o.quiet) log(`calibration: skipping ${cand.path} (${errorMessage(e).split('\n')[0]})`);
    }
  }
  if (views.length === 0) throw new UserError('int8 calibration: none of the training images could be read');
  if (!o.quiet) log(`int8: calibrating on the clean views of ${views.length} training images (${method})...`);
  const session = await openCalibrationSession(net, 1);
  try {
    const stats = new ActivationStats(session.points);
    for (const v of views) stats.observeRange(await session.run(v.x, 1, size, size));
    if (ActivationStats.needsHistogram(method)) for (const v of views) stats.observeHistogram(await session.run(v.x, 1, size, size));
    const calib: CalibrationFile = {
      format: CALIBRATION_FORMAT,
      version: 1,
      arch: net.variant.arch,
      weightsSha256: o.weightsSha256,
      preset: o.preset.name,
      inputSize: size,
      transformVersion: o.preset.transformVersion,
      method,
      images: views.map((v) => v.hash),
      ranges: stats.ranges(method),
    };
    if (!o.quiet) log(`int8: calibrated in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    return calib;
  } finally {
    await session.dispose();
  }
}

/** `--precision` and `--calibration` as the commands take them. */
export interface PrecisionArgs {
  precision?: 'fp32' | 'int8';
  /** A calibration.json, or a cache folder holding one. */
  calibration?: string;
}

export interface Int8Choice {
  /** A calibration decided already (given, or stored in the cache); otherwise one is computed on `train`. */
  calibration?: CalibrationFile;
  /** Where `calibration` came from, for messages. */
  source?: string;
  train?: DatasetItem[];
  preset: Preset;
  method?: CalibrationMethod;
  count?: number;
  /** Receives the calibration the graph is built with. */
  onCalibration?: (c: CalibrationFile) => void;
}

/** The `int8` option of openBackbone: a given calibration (checked against the net and views), or a fresh one. */
export function int8Backbone(o: Int8Choice): NonNullable<BackboneOptions['int8']> {
  return async (net, weightsSha256) => {
    let c = o.calibration;
    if (!c) {
      if (!o.train?.length) throw new UserError('--precision int8 needs a calibration: give --train DATA (it calibrates on training images) or --calibration FILE|CACHE');
      c = await computeCalibration(net, o.train, {
        preset: o.preset, norm: makeNormLut(net.variant.preprocess), weightsSha256,
        ...(o.method !== undefined ? { method: o.method } : {}), ...(o.count !== undefined ? { count: o.count } : {}),
      });
    }
    const p = o.preset;
    checkCalibrationFits(c, { arch: net.variant.arch, weightsSha256, preset: p.name, inputSize: p.inputSize, transformVersion: p.transformVersion }, o.source ?? 'computed here');
    o.onCalibration?.(c);
    return c.ranges;
  };
}
