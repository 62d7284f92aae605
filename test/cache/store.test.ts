import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { FeatureCache, LOCK_FILE, type FeatureRecord } from '../../src/cache/store.js';
import type { Fingerprint, Member } from '../../src/cache/types.js';
import { canMount, childScript, distModule, startChild } from '../helpers/child.js';

const DIM = 8;
const FP: Fingerprint = { arch: 'resnet18', weightsSha256: 'ab'.repeat(32), preset: 'seed', inputSize: 244, transformVersion: 1, seed: 0, dim: DIM };
const CLASSES = ['a', 'b', 'c'];

const hashOf = (name: string) => createHash('sha256').update(name).digest('hex');

/** Distinct, exactly representable values per (image, view, element): equality checks are exact. */
function viewData(hash: string, start: number, n: number, dim = DIM): Float32Array {
  const base = parseInt(hash.slice(0, 4), 16);
  const out = new Float32Array(n * dim);
  for (let v = 0; v < n; v++) for (let j = 0; j < dim; j++) out[v * dim + j] = base + (start + v) * 0.5 + j / 64;
  return out;
}
const cleanData = (hash: string, dim = DIM) => viewData(hash, 1000, 1, dim);

const aug = (hash: string, start: number, n: number, dim = DIM): FeatureRecord => ({ hash, kind: 'aug', start, data: viewData(hash, start, n, dim) });
const clean = (hash: string, dim = DIM): FeatureRecord => ({ hash, kind: 'clean', start: 0, data: cleanData(hash, dim) });
const member = (name: string, label: number, split = 'train', hash = hashOf(name)): Member => ({ hash, path: `/data/${name}.jpg`, label, split });

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vp-store-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function fresh(sub = 'cache'): Promise<FeatureCache> {
  const c = await FeatureCache.open(join(dir, sub));
  await c.ensureFingerprint(FP, CLASSES);
  return c;
}

/** The UserError a promise rejects with, or a function throws (the store's writes are synchronous). */
async function userError(p: Promise<unknown> | (() => unknown)): Promise<string> {
  const e = await (typeof p === 'function' ? Promise.resolve().then(p) : p).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(UserError);
  return (e as UserError).message;
}

describe('fingerprint', () => {
  it('records the first fingerprint and accepts the same one again', async () => {
    const c = await fresh();
    await c.ensureFingerprint({ ...FP }, [...CLASSES]);
    const info = c.info()!;
    expect(info.fingerprint).toEqual(FP);
    expect(info.classes).toEqual(CLASSES);
    expect(info.fingerprintId).toMatch(/^[0-9a-f]{16}$/);
    await c.close();
    const again = await FeatureCache.open(join(dir, 'cache'));
    await again.ensureFingerprint(FP, CLASSES);
    await again.close();
  });

  it('refuses another preset or seed, naming what differs', async () => {
    const c = await fresh();
    const msg = await userError(() => c.ensureFingerprint({ ...FP, preset: 'standard', seed: 3 }, CLASSES));
    expect(msg).toContain(`cache ${join(dir, 'cache')}`);
    expect(msg).toContain('preset: this cache holds seed, you asked standard');
    expect(msg).toContain('seed: this cache holds 0, you asked 3');
    expect(msg).toContain('use another --cache');
    expect(msg).not.toContain('arch');
    await c.close();
  });

  it('refuses writes before ensureFingerprint, even on a cache that has one', async () => {
    const c = await fresh();
    await c.close();
    const again = await FeatureCache.open(join(dir, 'cache'));
    expect(() => again.commit({ features: [aug(hashOf('a'), 0, 1)] })).toThrow(/ensureFingerprint\(\) must come before writing/);
    await again.close();
  });

  it('refuses other classes', async () => {
    const c = await fresh();
    expect(await userError(() => c.ensureFingerprint(FP, ['a', 'x', 'c']))).toContain('class 1 is "b" in this cache and "x" in the data');
    expect(await userError(() => c.ensureFingerprint(FP, ['a', 'b']))).toContain('this cache holds 3 classes');
    await c.close();
  });
});

describe('features', () => {
  it('adds only the new views when K is raised, and keeps the stored ones', async () => {
    const c = await fresh();
    const h = hashOf('x');
    expect(c.augViews(h)).toBe(0);
    await c.commit({ features: [aug(h, 0, 10)], members: [member('x', 1)] });
    expect(c.augViews(h)).toBe(10);
    // A rerun that recomputes views 0..19 with different numbers for 0..9 must not replace them.
    const rerun = viewData(h, 0, 20);
    rerun.fill(-1, 0, 10 * DIM);
    await c.commit({ features: [{ hash: h, kind: 'aug', start: 0, data: rerun }] });
    expect(c.augViews(h)).toBe(20);
    expect(c.info()!.counts.augViews).toBe(20);
    const s = c.readSplit('train');
    expect(s.views).toBe(20);
    expect(s.aug).toEqual(viewData(h, 0, 20));
    // And a commit of views already there is a no-op.
    await c.commit({ features: [aug(h, 5, 10)] });
    expect(c.info()!.counts.augViews).toBe(20);
    await c.close();
  });

  it('refuses a gap in the views, non-finite values and a wrong length (caller bugs)', async () => {
    const c = await fresh();
    const h = hashOf('g');
    expect(() => c.commit({ features: [aug(h, 3, 2)] })).toThrow(/no gaps/);
    const bad = viewData(h, 0, 1);
    bad[2] = NaN;
    expect(() => c.commit({ features: [{ hash: h, kind: 'aug', start: 0, data: bad }] })).toThrow(/non-finite/);
    expect(() => c.commit({ features: [{ hash: h, kind: 'aug', start: 0, data: new Float32Array(DIM + 1) }] })).toThrow(/n\*8 floats/);
    expect(() => c.commit({ features: [{ hash: 'nothex', kind: 'aug', start: 0, data: new Float32Array(DIM) }] })).toThrow(/sha256/);
    expect(c.augViews(h)).toBe(0);
    await c.close();
  });

  it('stores an image once, whatever paths and splits show it (dedupe by content)', async () => {
    const c = await fresh();
    const h = hashOf('dup');
    await c.commit({
      features: [aug(h, 0, 4), clean(h)],
      members: [member('p1', 0, 'train', h), member('p2', 2, 'train', h), member('v1', 0, 'val', h)],
    });
    // The second path arrives later, with its views already there: nothing new is stored.
    await c.commit({ features: [aug(h, 0, 4), clean(h)], members: [member('p3', 1, 'train', h)] });
    const info = c.info()!;
    expect(info.counts.uniqueImages).toBe(1);
    expect(info.counts.augViews).toBe(4);
    expect(info.counts.cleanViews).toBe(1);
    expect(info.counts.splits.train!.images).toBe(3);
    const s = c.readSplit('train');
    expect(s.paths).toEqual(['/data/p1.jpg', '/data/p2.jpg', '/data/p3.jpg']);
    expect(Array.from(s.labels)).toEqual([0, 2, 1]);
    for (let i = 0; i < 3; i++) expect(s.aug.subarray(i * 4 * DIM, (i + 1) * 4 * DIM)).toEqual(viewData(h, 0, 4));
    await c.close();
  });
});

describe('readSplit', () => {
  it('gives rows in path order, min views, maxViews, clean only when every member has it', async () => {
    const c = await fresh();
    const names = ['m', 'c', 'x', 'a', 'k'];
    // Commits in a scrambled order and across several blocks.
    await c.commit({ features: [aug(hashOf('m'), 0, 6), clean(hashOf('m'))], members: [member('m', 2)] });
    await c.commit({ features: [aug(hashOf('x'), 0, 3), aug(hashOf('c'), 0, 5), clean(hashOf('x')), clean(hashOf('c'))], members: [member('x', 0), member('c', 1)] });
    await c.commit({ features: [aug(hashOf('a'), 0, 5), clean(hashOf('a'))], members: [member('a', 1)] });
    await c.commit({ features: [aug(hashOf('x'), 3, 2)] });
    // k has no features at all: left out.
    await c.commit({ features: [], members: [member('k', 0)] });
    expect(c.members('train').map((m) => m.path)).toEqual(['a', 'c', 'k', 'm', 'x'].map((n) => `/data/${n}.jpg`));

    const s = c.readSplit('train');
    const order = ['a', 'c', 'm', 'x'];
    expect(s.split).toBe('train');
    expect(s.dim).toBe(DIM);
    expect(s.paths).toEqual(order.map((n) => `/data/${n}.jpg`));
    expect(s.hashes).toEqual(order.map(hashOf));
    expect(Array.from(s.labels)).toEqual([1, 1, 2, 0]);
    expect(s.views).toBe(5);
    expect(s.aug.length).toBe(4 * 5 * DIM);
    order.forEach((n, i) => {
      expect(s.aug.subarray(i * 5 * DIM, (i + 1) * 5 * DIM)).toEqual(viewData(hashOf(n), 0, 5));
      expect(s.clean!.subarray(i * DIM, (i + 1) * DIM)).toEqual(cleanData(hashOf(n)));
    });

    const capped = c.readSplit('train', { maxViews: 2 });
    expect(capped.views).toBe(2);
    expect(capped.aug.subarray(3 * 2 * DIM, 4 * 2 * DIM)).toEqual(viewData(hashOf('x'), 0, 2));

    // One member without a clean view: clean is null for the split.
    await c.commit({ features: [aug(hashOf('k'), 0, 7)] });
    const withK = c.readSplit('train');
    expect(withK.paths.length).toBe(5);
    expect(withK.clean).toBeNull();
    expect(names.length).toBe(5);

    // A split of clean views only (val) and an unknown split.
    await c.commit({ features: [clean(hashOf('v'))], members: [member('v', 2, 'val')] });
    const val = c.readSplit('val');
    expect(val.views).toBe(0);
    expect(val.aug.length).toBe(0);
    expect(val.clean).toEqual(cleanData(hashOf('v')));
    const none = c.readSplit('nope');
    expect(none.paths).toEqual([]);
    expect(none.clean).toBeNull();
    await c.close();
  });
});

describe('members and failures', () => {
  it('records failures with reasons, clears them when the image is read later or resolved', async () => {
    const c = await fresh();
    const at = new Date().toISOString();
    await c.commit({ features: [], failures: [{ path: '/data/bad.jpg', split: 'train', reason: 'truncated JPEG', at }, { path: '/data/gone.jpg', split: 'val', reason: 'no such file', at }] });
    expect(c.failures()).toEqual([
      { path: '/data/bad.jpg', split: 'train', reason: 'truncated JPEG', at },
      { path: '/data/gone.jpg', split: 'val', reason: 'no such file', at },
    ]);
    expect(c.info()!.counts.failures).toBe(2);
    const h = hashOf('bad');
    await c.commit({ features: [aug(h, 0, 1)], members: [{ hash: h, path: '/data/bad.jpg', split: 'train', label: 0 }] });
    expect(c.failures().map((f) => f.path)).toEqual(['/data/gone.jpg']);
    await c.commit({ features: [], resolved: ['/data/gone.jpg'] });
    expect(c.failures()).toEqual([]);
    // A member whose file has become unreadable is dropped: its old features must not be trained on.
    await c.commit({ features: [], failures: [{ path: '/data/bad.jpg', split: 'train', reason: 'zero bytes', at }] });
    expect(c.members()).toEqual([]);
    await c.close();
  });

  it('prunes members that left the dataset, and only in that split', async () => {
    const c = await fresh();
    await c.commit({ features: [], members: [member('a', 0), member('b', 1), member('c', 2), member('a', 0, 'val')] });
    const n = await c.pruneMembers('train', new Set(['/data/b.jpg']));
    expect(n).toBe(2);
    expect(c.members().map((m) => `${m.split}:${m.path}`)).toEqual(['train:/data/b.jpg', 'val:/data/a.jpg']);
    await c.close();
  });

  it('keys very long paths safely, and keeps splits with a common prefix apart', async () => {
    const c = await fresh();
    const long = `/data/${'d'.repeat(250)}/`.repeat(12);
    const wide = `/data/${'\u{1F355}'.repeat(600)}/`;
    const paths = [`${long}x.jpg`, `${long}y.jpg`, `${wide}a.jpg`, `${wide}b.jpg`];
    await c.commit({ features: [], members: paths.map((path, i) => ({ hash: hashOf(path), path, split: 'train', label: i % 3 })) });
    await c.commit({ features: [], members: [member('t2', 0, 'train2'), member('tA', 0, 'trainA'), member('tr', 0, 'trai')] });
    expect(c.members('train').map((m) => m.path).sort()).toEqual([...paths].sort());
    expect(c.members().length).toBe(7);
    expect(c.members('train2').map((m) => m.path)).toEqual(['/data/t2.jpg']);
    expect(await c.pruneMembers('train', new Set([paths[1]!]))).toBe(3);
    expect(c.members().map((m) => `${m.split}:${m.path}`).sort()).toEqual([`train:${paths[1]}`, 'trai:/data/tr.jpg', 'train2:/data/t2.jpg', 'trainA:/data/tA.jpg'].sort());
    await c.close();
  });
});

describe('opening', () => {
  it('refuses a cache path that is a file', async () => {
    const f = join(dir, 'file');
    writeFileSync(f, 'x');
    expect(await userError(FeatureCache.open(f))).toBe(`cache ${f} is a file, not a folder: give --cache a folder (new, or an existing cache)`);
    expect(await userError(FeatureCache.open(f, { readOnly: true }))).toContain('is a file');
  });

  it('refuses a missing cache for reading, and a folder of other things for writing', async () => {
    expect(await userError(FeatureCache.open(join(dir, 'nope'), { readOnly: true }))).toContain('does not exist');
    expect(existsSync(join(dir, 'nope'))).toBe(false);
    mkdirSync(join(dir, 'photos'));
    writeFileSync(join(dir, 'photos', 'cat.jpg'), 'x');
    expect(await userError(FeatureCache.open(join(dir, 'photos')))).toContain('is not empty and holds no viewprobe cache (it has cat.jpg)');
  });

  it('refuses a data.mdb that is not LMDB, is empty or truncated (LMDB itself would crash the process)', async () => {
    mkdirSync(join(dir, 'junk'));
    writeFileSync(join(dir, 'junk', 'data.mdb'), Buffer.alloc(8192, 7));
    for (const readOnly of [true, false]) {
      expect(await userError(FeatureCache.open(join(dir, 'junk'), { readOnly }))).toBe(
        `cache ${join(dir, 'junk')} is damaged or not a viewprobe cache: data.mdb is not an LMDB file. Move it away (or delete ${join(dir, 'junk')}) and rerun extract`,
      );
    }
    expect(existsSync(join(dir, 'junk', LOCK_FILE))).toBe(false);
    writeFileSync(join(dir, 'junk', 'data.mdb'), '');
    expect(await userError(FeatureCache.open(join(dir, 'junk'), { readOnly: true }))).toContain('is empty (its data.mdb has 0 bytes)');

    const c = await fresh();
    for (let i = 0; i < 5; i++) await c.commit({ features: [aug(hashOf(`t${i}`), 0, 200)], members: [member(`t${i}`, 0)] });
    await c.close();
    const file = join(dir, 'cache', 'data.mdb');
    truncateSync(file, Math.floor(statSync(file).size / 2));
    const msg = await userError(FeatureCache.open(join(dir, 'cache'), { readOnly: true }));
    expect(msg).toMatch(/is damaged or not a viewprobe cache: data.mdb is truncated \(\d+ bytes; its last commit needs \d+\)/);
  });

  it('refuses a cache written by a newer format', async () => {
    const c = await fresh();
    await c.close();
    const env = open({ path: join(dir, 'cache'), noSubdir: false, maxDbs: 8 });
    const meta = env.openDB<Record<string, unknown>, string>({ name: 'meta', encoding: 'json' });
    env.transactionSync(() => meta.putSync('meta', { ...meta.get('meta'), format: 99 }));
    await env.close();
    const msg = await userError(FeatureCache.open(join(dir, 'cache'), { readOnly: true }));
    expect(msg).toContain('was written by a newer viewprobe (cache format 99; this version reads format 1)');
    expect(await userError(FeatureCache.open(join(dir, 'cache')))).toContain('newer viewprobe');
    expect(existsSync(join(dir, 'cache', LOCK_FILE))).toBe(false);
  });

  it('opens a folder whose name has a dot as a folder', async () => {
    const c = await fresh('cache.v1');
    await c.commit({ features: [aug(hashOf('a'), 0, 1)], members: [member('a', 0)] });
    await c.close();
    expect(existsSync(join(dir, 'cache.v1', 'data.mdb'))).toBe(true);
  });
});

describe('writer lock', () => {
  it('refuses a second writer in the same process, allows readers, and frees the lock on close', async () => {
    const c = await fresh();
    const msg = await userError(FeatureCache.open(join(dir, 'cache')));
    expect(msg).toContain(`is in use by another writer (this same process on `);
    const r = await FeatureCache.open(join(dir, 'cache'), { readOnly: true });
    expect(r.info()!.fingerprint).toEqual(FP);
    await r.close();
    await c.close();
    expect(existsSync(join(dir, 'cache', LOCK_FILE))).toBe(false);
    const again = await FeatureCache.open(join(dir, 'cache'));
    await again.close();
  });

  it('takes over a lock left by a dead process', async () => {
    const c = await fresh();
    await c.close();
    const dead = execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).toString();
    writeFileSync(join(dir, 'cache', LOCK_FILE), JSON.stringify({ pid: Number(dead), host: (await import('node:os')).hostname(), since: 'earlier' }));
    const w = await FeatureCache.open(join(dir, 'cache'));
    expect(JSON.parse(readFileSync(join(dir, 'cache', LOCK_FILE), 'utf8')).pid).toBe(process.pid);
    await w.close();
  });
});

// ---------------------------------------------------------------------------------------------------
// Real processes: a writer killed with SIGKILL, two writers at once, a file-size limit.

const CHILD_WRITER = `
import { createHash } from 'node:crypto';
import { FeatureCache } from '${distModule('cache/store.js')}';
const [dir, mode, dimArg, perBatchArg] = process.argv.slice(2);
const dim = Number(dimArg), perBatch = Number(perBatchArg);
const fp = { arch: 'resnet18', weightsSha256: 'ab'.repeat(32), preset: 'seed', inputSize: 244, transformVersion: 1, seed: 0, dim };
const hashOf = (s) => createHash('sha256').update(s).digest('hex');
const cache = await FeatureCache.open(dir);
await cache.ensureFingerprint(fp, ['a', 'b', 'c']);
// Safety nets: a child that a failed test never kills must not run (or write) for ever.
setTimeout(() => process.exit(3), 60000).unref();
if (mode === 'hold') { console.log('ready'); setInterval(() => {}, 1000); await new Promise(() => {}); }
process.on('SIGXFSZ', () => {});
for (let b = 0; b < 50; b++) {
  const features = [], members = [];
  for (let k = 0; k < perBatch; k++) {
    const h = hashOf('b' + b + 'i' + k);
    const data = new Float32Array(4 * dim);
    for (let i = 0; i < data.length; i++) data[i] = b * 1000 + k + i / 4096;
    features.push({ hash: h, kind: 'aug', start: 0, data });
    members.push({ hash: h, path: '/d/b' + b + 'i' + k + '.jpg', label: b % 3, split: 'train' });
  }
  console.log('begin ' + b);
  try {
    await cache.commit({ features, members });
  } catch (e) {
    console.log('error ' + b + ' ' + e.constructor.name + ': ' + e.message);
    const s = cache.readSplit('train');
    console.log('readable ' + s.paths.length);
    await cache.close();
    process.exit(0);
  }
  console.log('committed ' + b);
}
`;

/** Checks that the cache holds batches 0..n-1 complete (features equal to what the writer made) and nothing else. */
async function expectWholeBatches(cacheDir: string, perBatch: number, dim: number): Promise<number> {
  const c = await FeatureCache.open(cacheDir, { readOnly: true });
  const s = c.readSplit('train');
  const members = c.members('train');
  await c.close();
  expect(s.paths.length).toBe(members.length);
  expect(s.paths.length % perBatch).toBe(0);
  const batches = s.paths.length / perBatch;
  const seen = new Set(s.paths);
  for (let b = 0; b < batches; b++) {
    for (let k = 0; k < perBatch; k++) {
      const path = `/d/b${b}i${k}.jpg`;
      expect(seen.has(path)).toBe(true);
      const row = s.paths.indexOf(path);
      const got = s.aug.subarray(row * 4 * dim, (row + 1) * 4 * dim);
      expect(got[0]).toBe(Math.fround(b * 1000 + k));
      expect(got[got.length - 1]).toBe(Math.fround(b * 1000 + k + (4 * dim - 1) / 4096));
    }
  }
  expect(s.views).toBe(batches > 0 ? 4 : 0);
  return batches;
}

describe('processes', () => {

  it('a writer killed with SIGKILL between or inside commits leaves whole batches only, and the next writer resumes', async () => {
    const script = childScript(dir, 'writer.mjs', CHILD_WRITER);
    const cacheDir = join(dir, 'killed');
    // Large batches (4 MB) so that a kill right after "begin" often lands inside the transaction.
    const perBatch = 128;
    const dim = 2048;
    let prev = 0;
    for (const trigger of [/^committed 1$/, /^begin 4$/, /^begin 6$/]) {
      const child = startChild(script, [cacheDir, 'write', String(dim), String(perBatch)]);
      await child.waitFor(trigger);
      child.proc.kill('SIGKILL');
      const { signal } = await child.exited;
      expect(signal).toBe('SIGKILL');
      const committed = child.stdout().match(/^committed \d+$/gm)?.length ?? 0;
      const batches = await expectWholeBatches(cacheDir, perBatch, dim);
      // Each run starts again at batch 0 (already stored batches are no-ops): every batch reported
      // committed is there, plus at most the one in flight.
      expect(batches).toBeGreaterThanOrEqual(Math.max(prev, committed));
      expect(batches).toBeLessThanOrEqual(Math.max(prev, committed + 1));
      // No duplicates from the reruns.
      const c = await FeatureCache.open(cacheDir, { readOnly: true });
      expect(c.info()!.counts.augViews).toBe(batches * perBatch * 4);
      await c.close();
      prev = batches;
    }
    // The dead writer's lock is stale: a new writer takes it.
    const w = await FeatureCache.open(cacheDir);
    await w.close();
  });

  it('a second writer process refuses at once naming the pid; readers need no lock; the lock of a killed writer is taken over', async () => {
    const script = childScript(dir, 'writer.mjs', CHILD_WRITER);
    const cacheDir = join(dir, 'shared');
    const child = startChild(script, [cacheDir, 'hold', String(DIM), '1']);
    await child.waitFor(/^ready$/);
    const msg = await userError(FeatureCache.open(cacheDir));
    expect(msg).toMatch(new RegExp(`^cache ${cacheDir} is in use by another writer \\(pid ${child.proc.pid} on `));
    const reader = await FeatureCache.open(cacheDir, { readOnly: true });
    expect(reader.info()!.fingerprint.dim).toBe(DIM);
    await reader.close();
    child.proc.kill('SIGKILL');
    await child.exited;
    const w = await FeatureCache.open(cacheDir);
    await w.ensureFingerprint({ ...FP }, CLASSES);
    await w.close();
  });

  it('a file-size limit (ulimit -f): a clear error naming the limit, the committed batches intact and readable', async () => {
    const script = childScript(dir, 'writer.mjs', CHILD_WRITER);
    const cacheDir = join(dir, 'full');
    // RLIMIT_FSIZE (ulimit -f: 1.5 MiB in dash, 3 MiB in bash) makes the kernel refuse writes past it,
    // as a full disk would; no root needed.
    const child = startChild(script, [], { shell: `ulimit -f 3072 && exec "${process.execPath}" "${script}" "${cacheDir}" write 512 64` });
    await child.exited;
    const out = child.stdout();
    const err = /^error (\d+) (\w+): (.*)$/m.exec(out);
    expect(err, out + child.stderr()).not.toBeNull();
    const [, failedAt, cls, message] = err!;
    expect(cls).toBe('CacheWriteError');
    // LMDB reports the short write as EIO; the store finds the limit in /proc/self/limits.
    expect(message).toMatch(new RegExp(`^cache ${cacheDir}: the file-size limit \\(ulimit -f: \\d+ KiB\\) reached: that batch was not kept; everything committed before it is intact`));
    const committed = out.match(/^committed \d+$/gm)!.length;
    expect(Number(failedAt)).toBe(committed);
    expect(out).toContain(`readable ${committed * 64}`);
    expect(await expectWholeBatches(cacheDir, 64, 512)).toBe(committed);
  });

  it('disk full on a real tiny file system (tmpfs; root only)', async (ctx) => {
    if (!canMount()) ctx.skip();
    const script = childScript(dir, 'writer.mjs', CHILD_WRITER);
    const mnt = join(dir, 'mnt');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt]);
    try {
      const child = startChild(script, [join(mnt, 'c'), 'write', '512', '64']);
      await child.exited;
      const out = child.stdout();
      expect(out, child.stderr()).toMatch(/^error \d+ CacheWriteError: cache \S+: no space left on device \([\d.]+ MB free\): that batch was not kept; everything committed before it is intact/m);
      const committed = out.match(/^committed \d+$/gm)?.length ?? 0;
      expect(committed).toBeGreaterThan(0);
      expect(await expectWholeBatches(join(mnt, 'c'), 64, 512)).toBe(committed);
    } finally {
      execFileSync('umount', [mnt]);
    }
  });
});

describe('read-only cache folder', () => {
  it('a writer gets a clear error, a reader still reads', async (ctx) => {
    const c = await fresh();
    await c.commit({ features: [aug(hashOf('a'), 0, 2)], members: [member('a', 0)] });
    await c.close();
    const src = join(dir, 'cache');
    let target = src;
    let undo = () => {};
    // chmod does not stop root, so as root the folder is shown through a read-only bind mount: the
    // kernel then refuses writes (EROFS) to root as to anyone. Without root, chmod is the real thing.
    if (process.getuid?.() === 0) {
      if (!canMount()) ctx.skip();
      target = join(dir, 'ro');
      mkdirSync(target);
      execFileSync('mount', ['--bind', src, target]);
      execFileSync('mount', ['-o', 'remount,ro,bind', target]);
      // lmdb keeps a reader's data.mdb open after close() on a read-only file system (it runs
      // without lock.mdb there), so a plain umount can find the mount busy: detach it lazily.
      undo = () => execFileSync('umount', ['-l', target]);
    } else {
      chmodSync(src, 0o555);
      undo = () => chmodSync(src, 0o755);
    }
    try {
      const msg = await userError(FeatureCache.open(target));
      expect(msg).toMatch(new RegExp(`^cache folder ${target} is not writable \\((read-only file system|permission denied)\\)`));
      expect(await userError(FeatureCache.open(target, { exclusive: false }))).toContain('is not writable');
      const r = await FeatureCache.open(target, { readOnly: true });
      expect(r.readSplit('train').aug).toEqual(viewData(hashOf('a'), 0, 2));
      await r.close();
    } finally {
      undo();
    }
  });
});

describe('compact storage', () => {
  // A property of the layout, not a timing: the LMDB file stays close to the float32 payload.
  const cases: [string, { images: number; views: number[]; clean: boolean; batch: number }][] = [
    ['300 images x (10 aug + 1 clean) x 512, batches of 32', { images: 300, views: [10], clean: true, batch: 32 }],
    ['300 images x 10 aug x 512 (even view count), batches of 32', { images: 300, views: [10], clean: false, batch: 32 }],
    ['300 images, 5 then raised to 11 views, batches of 16', { images: 300, views: [5, 11], clean: true, batch: 16 }],
  ];
  for (const [name, cfg] of cases) {
    it(`file bytes <= 1.15 x payload: ${name}`, async () => {
      const dim = 512;
      const c = await FeatureCache.open(join(dir, 'compact'));
      await c.ensureFingerprint({ ...FP, dim }, CLASSES);
      let from = 0;
      for (const k of cfg.views) {
        for (let i = 0; i < cfg.images; i += cfg.batch) {
          const features: FeatureRecord[] = [];
          const members: Member[] = [];
          for (let j = i; j < Math.min(cfg.images, i + cfg.batch); j++) {
            const h = hashOf(`img${j}`);
            features.push(aug(h, from, k - from, dim));
            if (cfg.clean && from === 0) features.push(clean(h, dim));
            members.push({ hash: h, path: `/d/${j}.jpg`, label: j % 3, split: 'train' });
          }
          await c.commit({ features, members });
        }
        from = k;
      }
      const info = c.info()!;
      const k = cfg.views[cfg.views.length - 1]!;
      expect(info.counts.augViews).toBe(cfg.images * k);
      expect(info.counts.payloadBytes).toBe(cfg.images * (k + (cfg.clean ? 1 : 0)) * dim * 4);
      const ratio = info.counts.fileBytes / info.counts.payloadBytes;
      console.log(`compact storage, ${name}: file ${info.counts.fileBytes} B / payload ${info.counts.payloadBytes} B = ${ratio.toFixed(4)}`);
      expect(ratio).toBeLessThanOrEqual(1.15);
      expect(c.readSplit('train').views).toBe(k);
      await c.close();
    });
  }
});
