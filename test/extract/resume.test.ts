// Interrupted extracts, in process with a stub engine (no backbone, so exact and quick): views are
// committed as they finish, a rerun draws only the missing ones and ends bit for bit where an
// uninterrupted run ends, the progress counts the views still to extract, and a failure keeps its
// reason whatever the file's name.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FeatureCache } from '../../src/cache/store.js';
import type { Fingerprint } from '../../src/cache/types.js';
import { hashBytes } from '../../src/data/hash.js';
import { IMAGENET_PREPROCESS, makeNormLut } from '../../src/image/normalize.js';
import { getPreset } from '../../src/image/presets.js';
import { extractFeatures, type ExtractOptions, type ExtractProgress, type SplitJob } from '../../src/extract/pipeline.js';
import { extractEta } from '../../src/extract/progress.js';
import { stubEngine, syntheticImages, type StubStats } from '../helpers/stub-engine.js';

const tmp = mkdtempSync(join(tmpdir(), 'vp-resume-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const FP: Fingerprint = { arch: 'resnet18', weightsSha256: 'a'.repeat(64), preset: 'seed', inputSize: 244, transformVersion: 1, seed: 0, dim: 2 };
const norm = makeNormLut(IMAGENET_PREPROCESS);

async function withCache<T>(name: string, fn: (c: FeatureCache) => Promise<T>): Promise<T> {
  const c = await FeatureCache.open(join(tmp, `cache-${name}`), { exclusive: true });
  try {
    c.ensureFingerprint(FP, ['a', 'b']);
    return await fn(c);
  } finally {
    await c.close();
  }
}

function run(cache: FeatureCache, jobs: SplitJob[], more: Partial<ExtractOptions> = {}) {
  return extractFeatures(jobs, { engine: stubEngine(2, (call) => [6, 1, 3][call % 3]!), norm, preset: getPreset('seed'), cache, seed: 0, batch: 4, commitViews: 8, ...more });
}

describe('an interrupted extract', () => {
  it('keeps the finished views of a partly done image; the rerun draws only the missing ones and equals an uninterrupted run bit for bit', async () => {
    const [img] = await syntheticImages(join(tmp, 'one'), 1);
    const hash = hashBytes(readFileSync(img!));
    const jobs: SplitJob[] = [{ split: 'train', items: [{ path: img!, label: 1 }], views: 60, clean: true }];
    const reference = await withCache('ref', async (c) => {
      const s = await run(c, jobs);
      expect(s.extracted).toBe(61);
      return c.readSplit('train');
    });
    await withCache('resumed', async (c) => {
      const stats: StubStats = { calls: 0, running: 0, maxRunning: 0, order: [] };
      const first = await run(c, jobs, { engine: stubEngine(2, () => 2, stats), shouldStop: () => stats.calls >= 4 });
      expect(first.interrupted).toBe(true);
      const stored = c.augViews(hash);
      // Before, an image's views were committed only once all 60 were done: an interrupt kept none.
      expect(stored).toBeGreaterThan(0);
      expect(stored).toBeLessThan(60);
      expect(first.extracted).toBe(stored + (c.hasClean(hash) ? 1 : 0)); // the summary counts what is stored
      expect(c.members('train')).toEqual([]); // the image is not complete, so not yet a member
      const again = await run(c, jobs);
      expect(again.extracted).toBe(61 - first.extracted);
      expect(again.alreadyCached).toBe(first.extracted);
      const resumed = c.readSplit('train');
      expect(resumed.views).toBe(60);
      expect(resumed.aug).toEqual(reference.aug);
      expect(resumed.clean).toEqual(reference.clean);
    });
  });

  it('an abort commits nothing more and leaves no batch inside the engine; the rerun completes', async () => {
    const paths = await syntheticImages(join(tmp, 'abort'), 3);
    const jobs: SplitJob[] = [{ split: 'train', items: paths.map((path) => ({ path, label: 0 })), views: 20, clean: false }];
    await withCache('abort', async (c) => {
      const abort = new AbortController();
      let commits = 0;
      const commit = c.commit.bind(c);
      c.commit = (b) => { commits++; commit(b); };
      const stats: StubStats = { calls: 0, running: 0, maxRunning: 0, order: [] };
      let atAbort = -1;
      const s = await run(c, jobs, {
        engine: stubEngine(2, () => 5, stats),
        shouldStop: () => {
          if (stats.calls >= 6 && !abort.signal.aborted) { atAbort = commits; abort.abort(); }
          return abort.signal.aborted;
        },
        abort: abort.signal,
      });
      expect(s.interrupted).toBe(true);
      expect(stats.running).toBe(0); // every batch came back before extractFeatures returned
      expect(commits).toBe(atAbort);
      const stored = c.info()!.counts.augViews;
      expect(s.extracted).toBe(stored);
      expect(stored).toBeLessThan(60);
      const again = await run(c, jobs);
      expect(again.extracted).toBe(60 - stored);
      expect(c.readSplit('train').views).toBe(20);
    });
  });

  it('the progress counts the views still to extract: a rerun whose first half is cached is not half done', async () => {
    const paths = await syntheticImages(join(tmp, 'half'), 6);
    const job = (n: number): SplitJob[] => [{ split: 'train', items: paths.slice(0, n).map((path) => ({ path, label: 0 })), views: 5, clean: true }];
    await withCache('half', async (c) => {
      await run(c, job(3), { concurrency: 1 });
      const seen: ExtractProgress[] = [];
      await run(c, job(6), { concurrency: 1, onProgress: (p) => seen.push(p) });
      const afterCached = seen.find((p) => p.imagesDone === 3)!;
      expect(afterCached.viewsCached).toBe(18);
      expect(afterCached.viewsExtracted).toBe(0);
      expect(afterCached.viewsLeft).toBe(18); // the image fraction (3/6) would say half done
      for (const p of seen) expect(p.viewsCached + p.viewsExtracted + p.viewsLeft).toBe(36);
      expect(seen.at(-1)!.viewsLeft).toBe(0);
      const mid = seen.find((p) => p.viewsExtracted > 0 && p.viewsLeft > 0)!;
      const { rate, eta } = extractEta(mid);
      expect(eta).toBeCloseTo(mid.viewsLeft / rate, 6);
      expect(rate).toBeCloseTo(mid.viewsExtracted / mid.extractSeconds, 6);
    });
  });

  it('a file whose name holds a newline keeps its reason in the ledger and the summary; an identical unreadable copy fails too', async () => {
    const dir = join(tmp, 'odd names');
    const names = ['line\nbreak.jpg', 'two\n\nlines\n.jpg', 'trailing\n'];
    const items = names.map((n) => ({ path: join(dir, n), label: 0 }));
    mkdirSync(dir, { recursive: true });
    for (const it of items.slice(0, 2)) writeFileSync(it.path, 'not an image\nat all\n');
    await withCache('ledger', async (c) => {
      const s = await run(c, [{ split: 'train', items, views: 1, clean: false }]);
      const byPath = new Map(s.failed.map((f) => [f.path, f.reason]));
      expect(byPath.get(items[0]!.path)).toMatch(/^.*line\nbreak\.jpg: (?!$)[^\n]+$/);
      expect(byPath.get(items[1]!.path)!.startsWith(`${items[1]!.path}: `)).toBe(true);
      expect(byPath.get(items[2]!.path)).toBe(`${items[2]!.path}: file not found`);
      const ledger = new Map(c.failures().map((f) => [f.path, f.reason]));
      expect(ledger).toEqual(byPath);
      for (const r of ledger.values()) expect(r.length).toBeGreaterThan(0);
    });
  });
});
