// What the train and eval tests share: in-memory feature caches, linearly separable by construction
// so that a linear head must reach 100%, captured console output, and a temp directory per block.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, vi } from 'vitest';
import type { Fingerprint, SplitFeatures } from '../../src/cache/types.js';
import type { CacheReader, CacheSummary } from '../../src/train/cache-reader.js';
import { Rng } from '../../src/random.js';

export interface SyntheticOptions {
  classes?: number;
  dim?: number;
  /** Images per class. */
  perClass?: number;
  valPerClass?: number;
  views?: number;
  clean?: boolean;
  seed?: number;
}

/**
 * Image i of class c: every view is 2·e_c + uniform noise in [-0.4, 0.4] on every coordinate, so
 * coordinate c is >= 1.6 and every other <= 0.4: the head W = identity separates them perfectly.
 */
export function separable(o: SyntheticOptions = {}): { train: SplitFeatures; val: SplitFeatures; classes: string[] } {
  const nc = o.classes ?? 4, dim = o.dim ?? 16, per = o.perClass ?? 20, valPer = o.valPerClass ?? 10, k = o.views ?? 3;
  if (dim < nc) throw new Error('dim must be >= classes');
  const rng = new Rng(o.seed ?? 7, 1234);
  const row = (out: Float32Array, at: number, c: number) => {
    for (let j = 0; j < dim; j++) out[at + j] = (j === c ? 2 : 0) + (rng.uniform() - 0.5) * 0.8;
  };
  const split = (name: string, count: number, views: number, clean: boolean): SplitFeatures => {
    const n = count * nc;
    const labels = Int32Array.from({ length: n }, (_, i) => i % nc);
    const aug = new Float32Array(n * views * dim);
    const cl = clean ? new Float32Array(n * dim) : null;
    for (let i = 0; i < n; i++) {
      for (let v = 0; v < views; v++) row(aug, (i * views + v) * dim, labels[i]!);
      if (cl) row(cl, i * dim, labels[i]!);
    }
    return {
      split: name,
      dim,
      paths: Array.from({ length: n }, (_, i) => `/data/${name}/${i}.jpg`),
      hashes: Array.from({ length: n }, (_, i) => `h${name}${i}`),
      labels,
      views,
      aug,
      clean: cl,
    };
  };
  return {
    train: split('train', per, k, o.clean ?? true),
    val: split('val', valPer, 0, true),
    classes: Array.from({ length: nc }, (_, i) => `class_${i}`),
  };
}

export function fingerprint(dim: number, seed = 0): Fingerprint {
  return { arch: 'resnet50', weightsSha256: 'ab'.repeat(32), preset: 'seed', inputSize: 244, transformVersion: 1, seed, dim };
}

/** A CacheReader over in-memory splits (what FeatureCache gives train and eval). `summary` undefined = empty cache. */
export function memoryCache(splits: Record<string, SplitFeatures>, summary: CacheSummary | undefined): () => Promise<CacheReader> {
  return async () => ({
    async info() {
      if (!summary) {
        const { UserError } = await import('../../src/errors.js');
        throw new UserError('cache is empty (run viewprobe extract --cache DIR first)');
      }
      return summary;
    },
    async readSplit(split: string) {
      const s = splits[split];
      if (s) return s;
      const dim = summary?.fingerprint.dim ?? 0;
      return { split, dim, paths: [], hashes: [], labels: new Int32Array(0), views: 0, aug: new Float32Array(0), clean: null };
    },
    async close() {},
  });
}

/** Collects what the commands write to stderr and stdout instead of printing it; undo with vi.restoreAllMocks(). */
export function capture(): { err: string[]; out: string[] } {
  const err: string[] = [], out: string[] = [];
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
  return { err, out };
}

/**
 * A fresh temp directory for the enclosing describe block, removed after it. Call it before the
 * block's own beforeAll hooks (they run in order) and read the path inside hooks and tests.
 */
export function useTempDir(prefix: string): () => string {
  let dir: string | undefined;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), prefix));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  return () => {
    if (dir === undefined) throw new Error('useTempDir: the directory exists only inside hooks and tests');
    return dir;
  };
}

/** Noisy, overlapping classes on shifted, unevenly scaled features: trials really differ. */
export function noisy(seed = 1, nc = 4, dim = 12, per = 24, valPer = 12, views = 2): { train: SplitFeatures; val: SplitFeatures; classes: string[] } {
  const rng = new Rng(seed, 50);
  const means = Float32Array.from({ length: nc * dim }, () => rng.uniform());
  const row = (out: Float32Array, at: number, c: number) => {
    for (let j = 0; j < dim; j++) out[at + j] = (3 + j) * (means[c * dim + j]! + 0.9 * (rng.uniform() - 0.5)) + 5;
  };
  const split = (name: string, count: number, k: number): SplitFeatures => {
    const n = count * nc;
    const labels = Int32Array.from({ length: n }, (_, i) => i % nc);
    const aug = new Float32Array(n * k * dim), clean = new Float32Array(n * dim);
    for (let i = 0; i < n; i++) {
      for (let v = 0; v < k; v++) row(aug, (i * k + v) * dim, labels[i]!);
      row(clean, i * dim, labels[i]!);
    }
    return { split: name, dim, paths: Array.from({ length: n }, (_, i) => `${name}/${i}.jpg`), hashes: [], labels, views: k, aug, clean };
  };
  return { train: split('train', per, views), val: split('val', valPer, 0), classes: Array.from({ length: nc }, (_, i) => `c${i}`) };
}
