// The extract pipeline end to end through the CLI on ../shared/data/tiny (24 train, 12 val images)
// with the random ResNet18: counts, incremental reruns, and a SIGKILL in the middle.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { FeatureCache } from '../../src/cache/store.js';
import type { Fingerprint } from '../../src/cache/types.js';
import type { Engine } from '../../src/backbone/engine.js';
import { stubEngine, syntheticImages, type StubStats } from '../helpers/stub-engine.js';
import { IMAGENET_PREPROCESS, makeNormLut } from '../../src/image/normalize.js';
import { defaultConcurrency, extractFeatures } from '../../src/extract/pipeline.js';
import { getPreset } from '../../src/image/presets.js';
import { describeShared, sharedPath } from '../helpers/shared.js';
import { runCliJson, startCli, waitForCommittedViews } from '../helpers/cli.js';

interface Summary {
  images: number;
  views: number;
  extracted: number;
  alreadyCached: number;
  failed: unknown[];
  engine: string;
}

const tmp = mkdtempSync(join(tmpdir(), 'vp-extract-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describeShared('extract on tiny', ['data/tiny/train.txt', 'weights/resnet18-random.safetensors'], () => {
  const train = sharedPath('data/tiny/train.txt');
  const val = sharedPath('data/tiny/val.txt');
  const weights = sharedPath('weights/resnet18-random.safetensors');
  const base = ['extract', '--train', train, '--val', val, '--weights', weights, '--engine', 'onnx', '--threads', '2'];
  const full = join(tmp, 'full');

  async function readAll(dir: string, maxViews?: number) {
    const c = await FeatureCache.open(dir, { readOnly: true });
    try {
      return { train: c.readSplit('train', { maxViews }), val: c.readSplit('val') };
    } finally {
      await c.close();
    }
  }

  it('stores images x (views + clean) + val views, and a rerun does no backbone work', async () => {
    const s = runCliJson<Summary>([...base, '--cache', full, '--views', '2', '--batch', '16']);
    expect(s.failed).toEqual([]);
    expect(s.images).toBe(36);
    expect(s.extracted).toBe(24 * (2 + 1) + 12);
    const { train: tr, val: va } = await readAll(full);
    expect(tr.labels.length).toBe(24);
    expect(tr.views).toBe(2);
    expect(tr.dim).toBe(512);
    expect(tr.aug.length).toBe(24 * 2 * 512);
    expect(tr.clean?.length).toBe(24 * 512);
    expect(va.labels.length).toBe(12);
    expect(va.clean?.length).toBe(12 * 512);
    // augmented views differ from each other and from the clean view
    expect(tr.aug.subarray(0, 512)).not.toEqual(tr.aug.subarray(512, 1024));
    expect(tr.aug.subarray(0, 512)).not.toEqual(tr.clean!.subarray(0, 512));

    const again = runCliJson<Summary>([...base, '--cache', full, '--views', '2', '--batch', '16']);
    expect(again.extracted).toBe(0);
    expect(again.alreadyCached).toBe(24 * 3 + 12);
  });

  it('raising K extracts only the new views and keeps the old ones', async () => {
    const before = await readAll(full);
    const s = runCliJson<Summary>([...base, '--cache', full, '--views', '3', '--batch', '16']);
    expect(s.extracted).toBe(24);
    const after = await readAll(full);
    expect(after.train.views).toBe(3);
    for (let i = 0; i < 24; i++) {
      for (let v = 0; v < 2; v++) {
        const a = after.train.aug.subarray((i * 3 + v) * 512, (i * 3 + v + 1) * 512);
        const b = before.train.aug.subarray((i * 2 + v) * 512, (i * 2 + v + 1) * 512);
        expect(a).toEqual(b);
      }
    }
  });

  it('a SIGKILL after the first committed batch, then a rerun, gives the same features as an uninterrupted run', async () => {
    const killed = join(tmp, 'killed');
    const args = [...base, '--cache', killed, '--views', '2', '--batch', '4', '--commit-views', '4', '--concurrency', '2'];
    const child = startCli(args);
    let stderr = '';
    child.stderr!.on('data', (d) => { stderr += String(d); });
    const exited = new Promise<void>((r) => child.on('exit', () => r()));
    const committed = await waitForCommittedViews(killed, child, 120_000);
    expect(child.exitCode, stderr).toBeNull();
    child.kill('SIGKILL');
    await exited;
    expect(committed).toBeGreaterThan(0);

    const partial = await readAll(killed);
    expect(partial.train.labels.length + partial.val.labels.length).toBeLessThan(36);

    const s = runCliJson<Summary>(args);
    expect(s.extracted).toBeGreaterThan(0);
    expect(s.extracted).toBeLessThan(24 * 3 + 12);
    const resumed = await readAll(killed);
    const reference = await readAll(full, 2);
    expect(resumed.train.paths).toEqual(reference.train.paths);
    expect(resumed.train.views).toBe(2);
    expect(maxRelDiff(resumed.train.aug, reference.train.aug)).toBeLessThan(1e-6);
    expect(maxRelDiff(resumed.train.clean!, reference.train.clean!)).toBeLessThan(1e-6);
    expect(maxRelDiff(resumed.val.clean!, reference.val.clean!)).toBeLessThan(1e-6);
  });
});

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

// In process, with a stub engine: no backbone, so these run in well under a second.
describe('extractFeatures with a stub engine', () => {
  const stubFingerprint: Fingerprint = { arch: 'resnet18', weightsSha256: 'a'.repeat(64), preset: 'seed', inputSize: 244, transformVersion: 1, seed: 0, dim: 2 };

  it('with several batches in flight finishing out of order, every view lands where one batch at a time puts it', async () => {
    const paths = await syntheticImages(join(tmp, 'parallel-imgs'), 7);
    const items = paths.map((path, i) => ({ path, label: i % 2 }));
    const run = async (name: string, engine: Engine) => {
      const cache = await FeatureCache.open(join(tmp, name), { exclusive: true });
      try {
        await cache.ensureFingerprint(stubFingerprint, ['a', 'b']);
        const s = await extractFeatures([{ split: 'train', items, views: 3, clean: true }], {
          engine, norm: makeNormLut(IMAGENET_PREPROCESS), preset: getPreset('seed'), cache, seed: 0, batch: 3,
        });
        expect(s.extracted).toBe(7 * 4);
        return cache.readSplit('train');
      } finally {
        await cache.close();
      }
    };
    const stats: StubStats = { calls: 0, running: 0, maxRunning: 0, order: [] };
    const serial = await run('serial-cache', stubEngine());
    const parallel = await run('parallel-cache', stubEngine(3, (call) => [30, 5, 15][call % 3]!, stats));
    // `parallel` batches with the engine, plus one waiting in line for the first session to free up
    expect(stats.maxRunning).toBe(3 + 1);
    expect(stats.order).not.toEqual([...stats.order].sort((a, b) => a - b));
    expect(parallel.labels).toEqual(serial.labels);
    expect(parallel.aug).toEqual(serial.aug);
    expect(parallel.clean).toEqual(serial.clean);
    // every view was really rendered (no view left as zeros in a reused buffer)
    for (let i = 0; i < parallel.aug.length; i += 2) expect(parallel.aug[i]).not.toBe(0);
  });

  it('gathers finished views into transactions of at least --commit-views, and commits the rest at the end', async () => {
    const paths = await syntheticImages(join(tmp, 'commit-imgs'), 7);
    const cache = await FeatureCache.open(join(tmp, 'commit-cache'), { exclusive: true });
    try {
      await cache.ensureFingerprint(stubFingerprint, ['a']);
      const commits: number[] = [];
      const commit = cache.commit.bind(cache);
      cache.commit = (b) => {
        commits.push(b.features.reduce((s, f) => s + f.data.length / 2, 0));
        return commit(b);
      };
      const s = await extractFeatures([{ split: 'train', items: paths.map((path) => ({ path, label: 0 })), views: 3, clean: false }], {
        engine: stubEngine(2), norm: makeNormLut(IMAGENET_PREPROCESS), preset: getPreset('seed'), cache, seed: 0, batch: 2, commitViews: 6,
      });
      expect(s.extracted).toBe(21);
      expect(commits.reduce((a, b) => a + b, 0)).toBe(21);
      // 11 engine batches, but only ceil(21 / 6) = 4 transactions at most: 6+ views each but the last
      expect(commits.length).toBeLessThanOrEqual(4);
      for (const c of commits.slice(0, -1)) expect(c).toBeGreaterThanOrEqual(6);
      expect(cache.readSplit('train').labels.length).toBe(7);
    } finally {
      await cache.close();
    }
  });

  it('records a FIFO, a directory and a missing file as failures instead of waiting on them', async () => {
    const dir = join(tmp, 'odd-files');
    mkdirSync(join(dir, 'folder.jpg'), { recursive: true });
    const good = join(dir, 'good.jpg');
    const px = Buffer.alloc(64 * 48 * 3);
    for (let i = 0; i < px.length; i++) px[i] = (i * 7 + (i % 192)) & 255; // no symmetry: views differ
    await sharp(px, { raw: { width: 64, height: 48, channels: 3 } }).jpeg().toFile(good);
    const fifo = join(dir, 'fifo.jpg');
    execFileSync('mkfifo', [fifo]); // an open() without O_NONBLOCK would wait for a writer forever
    const paths = [good, fifo, join(dir, 'folder.jpg'), join(dir, 'gone.jpg')];
    const cache = await FeatureCache.open(join(tmp, 'odd-cache'), { exclusive: true });
    try {
      await cache.ensureFingerprint(stubFingerprint, ['a']);
      const s = await extractFeatures([{ split: 'train', items: paths.map((path) => ({ path, label: 0 })), views: 2, clean: true }], {
        engine: stubEngine(), norm: makeNormLut(IMAGENET_PREPROCESS), preset: getPreset('seed'), cache, seed: 0, batch: 4,
      });
      expect(s.extracted).toBe(3);
      const reasons = Object.fromEntries(s.failed.map((f) => [f.path, f.reason]));
      expect(Object.keys(reasons).sort()).toEqual(paths.slice(1).sort());
      expect(reasons[fifo]).toBe(`${fifo}: not a regular file`);
      expect(reasons[paths[2]!]).toBe(`${paths[2]}: is a directory, not an image file`);
      expect(reasons[paths[3]!]).toBe(`${paths[3]}: file not found`);
      const tr = cache.readSplit('train');
      expect(tr.labels.length).toBe(1);
      expect(tr.aug.length).toBe(2 * 2);
      expect([tr.aug[0], tr.aug[1]]).not.toEqual([tr.aug[2], tr.aug[3]]);
    } finally {
      await cache.close();
    }
  });

  it('keeps two batches of views in flight by default, and never fewer images than 2 x cores', () => {
    expect(defaultConcurrency(32, 5)).toBeGreaterThanOrEqual(Math.ceil(64 / 5));
    expect(defaultConcurrency(32, 1)).toBeGreaterThanOrEqual(64);
    expect(defaultConcurrency(32, 0)).toBeGreaterThanOrEqual(64);
    expect(defaultConcurrency(1, 100)).toBe(Math.max(2 * availableParallelism(), 3));
  });
});
