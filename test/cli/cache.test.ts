import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { UserError } from '../../src/errors.js';
import { inShard } from '../../src/data/shard.js';
import { mergeCaches, runCacheInfo, runCacheMerge } from '../../src/cli/cache.js';
import { FeatureCache, type FeatureRecord } from '../../src/cache/store.js';
import type { Failure, Fingerprint, Member } from '../../src/cache/types.js';
import { argsWith } from '../helpers/args.js';
import { cacheInfoBuilder, cacheMergeBuilder } from '../../src/cli/commands.js';

const DIM = 16;
const K = 4;
const FP: Fingerprint = { arch: 'resnet18', weightsSha256: 'cd'.repeat(32), preset: 'seed', inputSize: 244, transformVersion: 1, seed: 0, dim: DIM };
const CLASSES = ['apple', 'banana', 'cherry'];
const AT = '2024-01-01T00:00:00.000Z';

const hashOf = (s: string) => createHash('sha256').update(s).digest('hex');

function views(hash: string, start: number, n: number): Float32Array {
  const base = parseInt(hash.slice(0, 5), 16) % 9973;
  const out = new Float32Array(n * DIM);
  for (let v = 0; v < n; v++) for (let j = 0; j < DIM; j++) out[v * DIM + j] = base + (start + v) / 8 + j / 1024;
  return out;
}

interface Item {
  path: string;
  hash: string;
  label: number;
  split: string;
}

// 30 train images (two paths share one file's bytes), 8 val images.
const items: Item[] = [
  ...Array.from({ length: 30 }, (_, i) => ({ path: `/data/train/${i}.jpg`, hash: hashOf(`t${i === 7 ? 3 : i}`), label: i % 3, split: 'train' })),
  ...Array.from({ length: 8 }, (_, i) => ({ path: `/data/val/${i}.jpg`, hash: hashOf(`v${i}`), label: i % 3, split: 'val' })),
];

/** Writes items the way extract does: per batch, all views of an image together (optionally K in two steps). */
async function build(dir: string, list: Item[], failures: Failure[], opts: { fp?: Fingerprint; classes?: string[]; twoSteps?: boolean } = {}): Promise<void> {
  const c = await FeatureCache.open(dir);
  await c.ensureFingerprint(opts.fp ?? FP, opts.classes ?? CLASSES);
  const steps = opts.twoSteps ? [[0, 2], [2, K]] : [[0, K]];
  for (const [from, to] of steps) {
    for (let i = 0; i < list.length; i += 5) {
      const features: FeatureRecord[] = [];
      const members: Member[] = [];
      for (const it of list.slice(i, i + 5)) {
        if (it.split === 'train') {
          features.push({ hash: it.hash, kind: 'aug', start: from!, data: views(it.hash, from!, to! - from!) });
        }
        if (from === 0) features.push({ hash: it.hash, kind: 'clean', start: 0, data: views(it.hash, 100, 1) });
        members.push({ hash: it.hash, path: it.path, label: it.label, split: it.split });
      }
      await c.commit({ features, members });
    }
  }
  if (failures.length) await c.commit({ features: [], failures });
  await c.close();
}

let dir: string;
let out: string[];
let err: string[];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vp-cachecmd-'));
  out = [];
  err = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => {
    out.push(String(s));
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
    err.push(String(s));
    return true;
  });
});
afterEach(() => {
  vi.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
});

const bad: Failure = { path: '/data/train/bad.jpg', split: 'train', reason: 'truncated JPEG', at: AT };

describe('cache info', () => {
  it('prints one JSON object with counts, failures and the bytes ratio', async () => {
    await build(join(dir, 'c'), items, [bad]);
    expect(await runCacheInfo(argsWith(cacheInfoBuilder, { cache: join(dir, 'c'), json: true }))).toBe(0);
    expect(out.length).toBe(1);
    const r = JSON.parse(out[0]!);
    expect(r.fingerprint).toEqual(FP);
    expect(r.fingerprintId).toMatch(/^[0-9a-f]{16}$/);
    expect(r.classes).toEqual(CLASSES);
    expect(r.counts.splits).toEqual({
      train: { images: 30, withFeatures: 30, augViewsMin: K, augViewsMax: K, clean: 30 },
      val: { images: 8, withFeatures: 8, augViewsMin: 0, augViewsMax: 0, clean: 8 },
    });
    // 29 distinct train images (one file under two paths) + 8 val.
    expect(r.counts.uniqueImages).toBe(37);
    expect(r.counts.augViews).toBe(29 * K);
    expect(r.counts.cleanViews).toBe(37);
    expect(r.counts.payloadBytes).toBe((29 * K + 37) * DIM * 4);
    expect(r.counts.failures).toBe(1);
    expect(r.failureList).toEqual([bad]);
    expect(r.bytesPerPayload).toBeCloseTo(r.counts.fileBytes / r.counts.payloadBytes, 10);
  });

  it('prints a readable summary on stdout (nothing on stderr)', async () => {
    await build(join(dir, 'c'), items, [bad]);
    expect(await runCacheInfo(argsWith(cacheInfoBuilder, { cache: join(dir, 'c'), json: false }))).toBe(0);
    expect(err).toEqual([]);
    const text = out.join('');
    expect(text).toContain('classes (3): apple, banana, cherry');
    expect(text).toContain('split train: 30 images (30 with features), augmented views per image 4, clean views 30');
    expect(text).toContain('split val: 8 images (8 with features), augmented views per image 0, clean views 8');
    expect(text).toContain('preset seed, input 244, transform v1, seed 0, dim 16');
    expect(text).toMatch(/bytes: payload [\d.]+ KB \(float32\), file [\d.]+ KB = \d+\.\d{3}x payload/);
    expect(text).toContain('failures: 1\n  train /data/train/bad.jpg: truncated JPEG');
  });

  it('says so for a cache without features, and refuses a missing one', async () => {
    const c = await FeatureCache.open(join(dir, 'empty'));
    await c.close();
    expect(await runCacheInfo(argsWith(cacheInfoBuilder, { cache: join(dir, 'empty'), json: true }))).toBe(0);
    expect(JSON.parse(out[0]!)).toEqual({ dir: join(dir, 'empty'), empty: true });
    await expect(runCacheInfo(argsWith(cacheInfoBuilder, { cache: join(dir, 'none'), json: false }))).rejects.toThrow(UserError);
    await expect(runCacheInfo(argsWith(cacheInfoBuilder, { cache: join(dir, 'none'), json: false }))).rejects.toThrow(`cache ${join(dir, 'none')} does not exist`);
  });
});

async function snapshot(cacheDir: string) {
  const c = await FeatureCache.open(cacheDir, { readOnly: true });
  try {
    const info = c.info()!;
    return {
      train: c.readSplit('train'),
      val: c.readSplit('val'),
      members: c.members(),
      failures: c.failures(),
      counts: { ...info.counts, fileBytes: 0 },
      fingerprintId: info.fingerprintId,
    };
  } finally {
    await c.close();
  }
}

describe('cache merge', () => {
  it('two shard caches merge into exactly what one unsharded run holds', async () => {
    const shard = (index: number) => ({ index, count: 2, source: 'test' });
    const part = [items.filter((i) => inShard(i.hash, shard(0))), items.filter((i) => inShard(i.hash, shard(1)))];
    expect(part[0]!.length).toBeGreaterThan(5);
    expect(part[1]!.length).toBeGreaterThan(5);
    // An image that failed in one shard but was read by the other is no failure after the merge;
    // one that failed everywhere stays.
    const flaky: Failure = { path: part[1]![0]!.path, split: part[1]![0]!.split, reason: 'EIO', at: AT };
    await build(join(dir, 'full'), items, [bad]);
    await build(join(dir, 's0'), part[0]!, [bad, flaky]);
    await build(join(dir, 's1'), part[1]!, [bad], { twoSteps: true });

    const summary = await mergeCaches(join(dir, 'merged'), [join(dir, 's0'), join(dir, 's1')]);
    expect(summary.inputs).toEqual([join(dir, 's0'), join(dir, 's1')]);
    expect(summary.skipped).toEqual([]);
    const full = await snapshot(join(dir, 'full'));
    const merged = await snapshot(join(dir, 'merged'));
    expect(merged).toEqual(full);
    expect(merged.train.aug.length).toBe(30 * K * DIM);
    expect(merged.failures).toEqual([bad]);

    // Merging again, or into one of the inputs, changes nothing / gives the same.
    await mergeCaches(join(dir, 'merged'), [join(dir, 's1'), join(dir, 's0')]);
    expect(await snapshot(join(dir, 'merged'))).toEqual(full);
    const inPlace = await mergeCaches(join(dir, 's0'), [join(dir, 's0'), join(dir, 's1'), join(dir, 's1')]);
    expect(inPlace.skipped).toEqual([
      { dir: join(dir, 's0'), why: 'it is the output' },
      { dir: join(dir, 's1'), why: 'named twice' },
    ]);
    expect(await snapshot(join(dir, 's0'))).toEqual(full);
  });

  it('refuses caches of different fingerprints or classes, naming both and what differs', async () => {
    await build(join(dir, 'a'), items.slice(0, 5), []);
    await build(join(dir, 'b'), items.slice(5, 10), [], { fp: { ...FP, seed: 1 } });
    await build(join(dir, 'c'), items.slice(5, 10), [], { classes: ['x', 'y', 'z'] });
    await expect(mergeCaches(join(dir, 'o'), [join(dir, 'a'), join(dir, 'b')])).rejects.toThrow(
      `cannot merge ${join(dir, 'b')} with ${join(dir, 'a')}: they hold features made with other settings (seed: ${join(dir, 'a')} holds 0, ${join(dir, 'b')} holds 1)`,
    );
    await expect(mergeCaches(join(dir, 'o'), [join(dir, 'a'), join(dir, 'c')])).rejects.toThrow(/their classes differ/);
    // Into an existing cache of another fingerprint: the cache's own refusal.
    await expect(mergeCaches(join(dir, 'b'), [join(dir, 'a')])).rejects.toThrow(`cache ${join(dir, 'b')} holds features made with other settings: seed: this cache holds 1, you asked 0`);
    await expect(mergeCaches(join(dir, 'o'), [])).rejects.toThrow(UserError);
  });

  it('runCacheMerge prints a JSON summary', async () => {
    await build(join(dir, 'a'), items.slice(0, 10), []);
    await build(join(dir, 'b'), items.slice(10), [bad]);
    expect(await runCacheMerge(argsWith(cacheMergeBuilder, { out: join(dir, 'm'), inputs: [join(dir, 'a'), join(dir, 'b')], json: true }))).toBe(0);
    const s = JSON.parse(out[0]!);
    expect(s.info.counts.splits.train.images).toBe(30);
    expect(s.info.counts.splits.val.images).toBe(8);
    expect(s.info.counts.failures).toBe(1);
    expect(await runCacheMerge(argsWith(cacheMergeBuilder, { out: join(dir, 'm2'), inputs: [join(dir, 'a')], json: false }))).toBe(0);
    expect(out.join('')).toContain(`merged 1 cache(s) into ${join(dir, 'm2')}: train 10; 9 distinct images`);
    expect(err).toEqual([]); // the result goes to stdout, so `cache merge ... > log` captures it
  });
});
