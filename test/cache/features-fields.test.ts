// The cache fields added for the probe work: pooled-feature options in the fingerprint (absent = the
// old default, so caches written before them keep their id and stay usable) and test-time views as a
// third feature kind (absent in old records).
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { canonicalJson, diffFingerprints, fingerprintFeatures, fingerprintId, normalizeFingerprint } from '../../src/cache/fingerprint.js';
import { FeatureCache, type FeatureRecord } from '../../src/cache/store.js';
import type { Fingerprint } from '../../src/cache/types.js';

const DIM = 4;
const OLD: Fingerprint = { arch: 'resnet50', weightsSha256: 'cd'.repeat(32), preset: 'standard', inputSize: 224, transformVersion: 1, seed: 0, dim: DIM };
const CLASSES = ['a', 'b'];
const hashOf = (s: string) => createHash('sha256').update(s).digest('hex');
const rows = (base: number, n: number) => Float32Array.from({ length: n * DIM }, (_, i) => base + i / 8);

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vp-fields-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('fingerprint feature fields', () => {
  it('absent means avg of layer4, and writing the defaults explicitly changes nothing (same id, same record)', () => {
    // The id a cache written before the fields existed has: the hash of its canonical JSON.
    const oldId = createHash('sha256').update(canonicalJson(OLD)).digest('hex').slice(0, 16);
    expect(fingerprintId(OLD)).toBe(oldId);
    const explicit = { ...OLD, pool: ['avg'], layers: [4] };
    expect(fingerprintId(explicit)).toBe(oldId);
    expect(normalizeFingerprint(explicit)).toEqual(OLD);
    expect(fingerprintFeatures(OLD)).toEqual({ pool: ['avg'], layers: [4] });
    expect(diffFingerprints(OLD, explicit)).toEqual([]);
  });

  it('other settings get another id and a difference that names them', () => {
    const gem = { ...OLD, pool: ['gem3'] };
    const both = { ...OLD, layers: [4, 3], dim: 2 * DIM };
    expect(fingerprintId(gem)).not.toBe(fingerprintId(OLD));
    expect(fingerprintId(both)).not.toBe(fingerprintId(OLD));
    expect(diffFingerprints(OLD, gem)).toEqual([{ field: 'pool', cache: ['avg'], asked: ['gem3'] }]);
    expect(diffFingerprints(OLD, both).map((d) => d.field)).toEqual(['dim', 'layers']);
    // Order matters: [4, 3] and [3, 4] are different vectors.
    expect(fingerprintId({ ...OLD, layers: [3, 4] })).not.toBe(fingerprintId({ ...OLD, layers: [4, 3] }));
  });

  it('a cache written without the fields accepts a writer asking for the defaults, and refuses GeM naming the pool', async () => {
    const c = await FeatureCache.open(join(dir, 'c'));
    await c.ensureFingerprint(OLD, CLASSES);
    await c.close();
    const again = await FeatureCache.open(join(dir, 'c'));
    await again.ensureFingerprint({ ...OLD, pool: ['avg'], layers: [4] }, CLASSES);
    expect(again.info()!.fingerprint).toEqual(OLD); // stored without the default fields
    let e: unknown;
    try {
      again.ensureFingerprint({ ...OLD, pool: ['gem3'] }, CLASSES);
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(UserError);
    expect((e as Error).message).toMatch(/pool: this cache holds \["avg"\], you asked \["gem3"\]/);
    await again.close();
  });

  it('a cache with non-default features records them and reads back', async () => {
    const fp = { ...OLD, preset: 'probe' as const, pool: ['gem3'], layers: [4, 3] };
    const c = await FeatureCache.open(join(dir, 'c'));
    await c.ensureFingerprint(fp, CLASSES);
    expect(c.info()!.fingerprint).toEqual(fp);
    expect(c.info()!.fingerprintId).toBe(fingerprintId(fp));
    await c.close();
  });
});

describe('test-time views in the cache', () => {
  const h = hashOf('x');
  const member = { hash: h, path: '/d/x.jpg', label: 1, split: 'val' };
  const tta = (start: number, n: number): FeatureRecord => ({ hash: h, kind: 'tta', start, data: rows(100 + start, n) });

  it('are stored beside the clean view, read back image-major, resumed without gaps, counted, merged', async () => {
    const c = await FeatureCache.open(join(dir, 'c'));
    await c.ensureFingerprint(OLD, CLASSES);
    await c.commit({ features: [{ hash: h, kind: 'clean', start: 0, data: rows(1, 1) }, tta(0, 1)], members: [member] });
    expect(c.ttaViews(h)).toBe(1);
    await c.commit({ features: [tta(0, 2)] }); // overlaps view 0: only view 1 is new
    expect(c.ttaViews(h)).toBe(2);
    expect(() => c.commit({ features: [tta(3, 1)] })).toThrow(/tta views start at 3/);
    const s = c.readSplit('val');
    expect(s.ttaViews).toBe(2);
    expect(Array.from(s.tta!)).toEqual(Array.from(rows(100, 2)));
    expect(c.readSplit('val', { maxTtaViews: 1 }).ttaViews).toBe(1);
    expect(c.readSplit('val', { maxTtaViews: 0 }).tta).toBeUndefined();
    expect(c.info()!.counts.ttaViews).toBe(2);
    // A merge copies them.
    const out = await FeatureCache.open(join(dir, 'm'));
    await out.ensureFingerprint(OLD, CLASSES);
    for (const features of c.exportFeatures()) await out.commit({ features });
    await out.commit({ features: [], members: [member] });
    expect(Array.from(out.readSplit('val').tta!)).toEqual(Array.from(s.tta!));
    await out.close();
    await c.close();
  });

  it('a record written before the third slot existed reads as no test-time views', async () => {
    const c = await FeatureCache.open(join(dir, 'c'));
    await c.ensureFingerprint(OLD, CLASSES);
    await c.commit({ features: [{ hash: h, kind: 'clean', start: 0, data: rows(1, 1) }], members: [member] });
    await c.close();
    // The record as the old code wrote it: exactly [aug segments, clean location].
    const env = open({ path: join(dir, 'c'), noSubdir: false, maxDbs: 8 });
    const db = env.openDB<unknown[], string>({ name: 'features' });
    expect((db.get(h) as unknown[]).length).toBe(2);
    await env.close();
    const r = await FeatureCache.open(join(dir, 'c'), { readOnly: true });
    const s = r.readSplit('val');
    expect(s.ttaViews).toBeUndefined();
    expect(s.clean).not.toBeNull();
    expect(r.ttaViews(h)).toBe(0);
    await r.close();
  });

  it('count only when every image of the split has them (the minimum), and only beside clean views', async () => {
    const h2 = hashOf('y');
    const c = await FeatureCache.open(join(dir, 'c'));
    await c.ensureFingerprint(OLD, CLASSES);
    await c.commit({
      features: [{ hash: h, kind: 'clean', start: 0, data: rows(1, 1) }, tta(0, 1), { hash: h2, kind: 'clean', start: 0, data: rows(2, 1) }],
      members: [member, { ...member, hash: h2, path: '/d/y.jpg' }],
    });
    expect(c.readSplit('val').ttaViews).toBeUndefined();
    await c.close();
  });
});

describe('a writer at another input size', () => {
  it('is told the --size that matches the cache when that is the only difference', async () => {
    const { settingsMismatch } = await import('../../src/cache/fingerprint.js');
    const base: Fingerprint = { ...OLD, preset: 'probe', inputSize: 224 };
    const only = settingsMismatch('C', diffFingerprints(base, { ...base, inputSize: 288 }));
    expect(only.message).toMatch(/inputSize: this cache holds 224, you asked 288\. .*; to add to this cache, pass --size 224$/);
    const two = settingsMismatch('C', diffFingerprints(base, { ...base, inputSize: 288, seed: 1 }));
    expect(two.message).not.toMatch(/--size/);
  });
});
