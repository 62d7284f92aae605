// train and eval end to end on a real LMDB feature cache, written here with the store's own API (no
// backbone, no images: `train` needs neither).
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { FeatureCache } from '../../src/cache/store.js';
import type { SplitFeatures } from '../../src/cache/types.js';
import { runEval } from '../../src/cli/eval.js';
import { openCacheForReading } from '../../src/train/cache-reader.js';
import { runTrain } from '../../src/cli/train.js';
import { fingerprint, separable } from './fixtures.js';
import { argsWith } from '../helpers/args.js';
import { evalBuilder, trainBuilder } from '../../src/cli/commands.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/** opts.clean false: no clean view for the training images (val keeps its one eval view). */
async function writeCache(dir: string, train: SplitFeatures, val: SplitFeatures, classes: string[], opts: { clean?: boolean } = {}): Promise<void> {
  const cache = await FeatureCache.open(dir);
  try {
    await cache.ensureFingerprint(fingerprint(train.dim), classes);
    const features = [];
    const members = [];
    for (const [s, split] of [[train, 'train'], [val, 'val']] as const) {
      const n = s.labels.length;
      for (let i = 0; i < n; i++) {
        const hash = sha(`${split}/${i}`);
        members.push({ hash, path: `/photos/${split}/${String(i).padStart(3, '0')}.jpg`, label: s.labels[i]!, split });
        if (s.views > 0) features.push({ hash, kind: 'aug' as const, start: 0, data: s.aug.slice(i * s.views * s.dim, (i + 1) * s.views * s.dim) });
        if (s.clean && (split === 'val' || opts.clean !== false)) features.push({ hash, kind: 'clean' as const, start: 0, data: s.clean.slice(i * s.dim, (i + 1) * s.dim) });
      }
    }
    await cache.commit({ features, members });
  } finally {
    await cache.close();
  }
}

function quiet() {
  const out: string[] = [];
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
  return out;
}

describe('train and eval on a real LMDB cache', () => {
  let dir: string;
  const s = separable({ classes: 3, dim: 12, perClass: 10, valPerClass: 5, views: 4 });
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'viewprobe-cache-reader-'));
    await writeCache(join(dir, 'cache'), s.train, s.val, s.classes);
    await writeCache(join(dir, 'noclean'), s.train, s.val, s.classes, { clean: false });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  afterEach(() => vi.restoreAllMocks());

  it('reads the splits the trainer needs', async () => {
    const c = await openCacheForReading(join(dir, 'cache'));
    try {
      const info = await c.info();
      expect(info.classes).toEqual(s.classes);
      const train = await c.readSplit('train');
      expect(train.labels.length).toBe(30);
      expect(train.views).toBe(4);
      expect(train.clean).not.toBeNull();
      const val = await c.readSplit('val');
      expect(val.labels.length).toBe(15);
      expect(val.views).toBe(0);
      expect(val.clean!.length).toBe(15 * 12);
    } finally {
      await c.close();
    }
  });

  it('train writes a run that eval reads back, with the cache fingerprint in the head', async () => {
    const out = quiet();
    const run = join(dir, 'run');
    await runTrain(argsWith(trainBuilder, { cache: join(dir, 'cache'), out: run, epochs: 10, lr: 1e-2, stepSize: 5, gamma: 0.5, batch: 8, seed: 0, views: 'aug', json: true }));
    const t = JSON.parse(out.pop()!);
    expect(t.best.valAcc).toBe(1);
    const head = JSON.parse(await readFile(join(run, 'head-best.json'), 'utf8'));
    const cache = await FeatureCache.open(join(dir, 'cache'), { readOnly: true });
    expect(head.fingerprintId).toBe(cache.info()!.fingerprintId);
    await cache.close();
    await runEval(argsWith(evalBuilder, { run, json: true }));
    const e = JSON.parse(out.pop()!);
    expect(e.eval.n).toBe(15);
    expect(e.eval.accuracy).toBe(1);
    expect(e.eval.confusion).toEqual([[5, 0, 0], [0, 5, 0], [0, 0, 5]]);
  });

  it('refuses --views clean on a cache without clean views, and an empty or foreign folder', async () => {
    quiet();
    const base = { out: join(dir, 'r2'), epochs: 2, lr: 1e-2, stepSize: 5, gamma: 0.5, batch: 8, seed: 0, json: false };
    await expect(runTrain(argsWith(trainBuilder, { ...base, cache: join(dir, 'noclean'), views: 'clean' }))).rejects.toThrow(/--views clean needs the clean view/);
    const empty = join(dir, 'empty');
    await (await FeatureCache.open(empty)).close();
    await expect(runTrain(argsWith(trainBuilder, { ...base, cache: empty, views: 'aug' }))).rejects.toThrow(/is empty/);
    await expect(runTrain(argsWith(trainBuilder, { ...base, cache: join(dir, 'run'), views: 'aug' }))).rejects.toThrow(/is not a viewprobe cache/);
  });
});
