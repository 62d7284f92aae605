// The LMDB feature cache: one folder, one fingerprint, features addressed by image content.
//
// Layout (named LMDB databases in one environment):
//   meta      'meta' -> CacheMeta (JSON): format, fingerprint, classes, times, next blob id
//   features  sha256 -> [augSegments, clean, ttaSegments?]: where each image's views live. An aug
//             segment is [firstView, views, blob, offsetInViews]; clean is [blob, offsetInViews] or
//             null; tta segments (the preset's extra test-time views, e.g. the flipped clean view)
//             are shaped like aug ones and absent in caches written before them.
//             So a feature is keyed by (image sha256, kind, first view), inside the one fingerprint.
//   blobs     uint32 -> raw little-endian float32 rows, all the views of one commit packed together
//   members   [split, path] -> [sha256, label, path]
//   failures  [split, path] -> [reason, at, path]
//
// Why blobs: LMDB stores any value over ~2 KB in its own run of 4 KB overflow pages, so one 2 KB view
// per value costs 4 KB (the 2x measured before), and even one value per image wastes up to a page
// (10 views = 20480 B + a 16 B page header = 6 pages = 1.2x). Packing a whole commit into one value
// wastes under one page per commit, so the file stays within a few percent of the float32 payload
// for any view count. Features are never deleted or rewritten, so blob space is never fragmented.
//
// Writes use transactionSync with putSync/removeSync, one LMDB transaction per commit: a process
// killed at any moment leaves either the whole commit or none of it. lmdb's asynchronous write paths
// are avoided on purpose: under Node 20.20 with lmdb 3.5.6 their completions never arrived here
// (transaction() never resolved and then blocked process.exit; a put() inside transactionSync left
// close() waiting forever).
//
// One cache holds one fingerprint: a different backbone, preset or seed is refused rather than kept
// in a second namespace, so a reader never has to guess which features it is reading.
import { join, resolve } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { UserError } from '../errors.js';
import { diffFingerprints, fingerprintId, normalizeFingerprint, settingsMismatch } from './fingerprint.js';
import { BlobPacker, contiguousViews, groupByBlob, planSplitRead, type AugSeg, type FeatureIndex, type FeatureKind } from './blobs.js';
import { rowKey, splitRange, type RowKey } from './keys.js';
import { checkCacheFolder, fileSize, lmdbReason, writeFailure } from './lmdb-file.js';
import { WriterLock, probeWritable } from './lock.js';
import { CallerError, checkFormat, describeClassDifference, validateBatch, validateClasses, validateFingerprint } from './validate.js';
import type { CacheInfo, CacheMeta, CommitBatch, Failure, FeatureRecord, Fingerprint, Member, OpenOptions, SplitCounts, SplitFeatures } from './types.js';

export type { CacheInfo, CacheMeta, CommitBatch, FeatureKind, FeatureRecord, OpenOptions, SplitCounts } from './types.js';
export { LOCK_FILE, WriterLock } from './lock.js';
export { CacheWriteError } from './lmdb-file.js';

/** Bumped when the layout above changes; a cache of a newer format is refused. */
export const CACHE_FORMAT = 1;

type MemberValue = [hash: string, label: number, path: string];
type FailureValue = [reason: string, at: string, path: string];

export class FeatureCache {
  private closed = false;
  /** Writes are refused until ensureFingerprint() has compared this writer's settings with the cache's. */
  private fingerprintChecked = false;

  private constructor(
    readonly dir: string,
    /** The folder as the user gave it, for messages. */
    readonly shown: string,
    private readonly env: RootDatabase,
    private readonly metaDb: Database<CacheMeta, string>,
    private readonly featuresDb: Database<FeatureIndex, string>,
    private readonly blobsDb: Database<Buffer, number>,
    private readonly membersDb: Database<MemberValue, RowKey>,
    private readonly failuresDb: Database<FailureValue, RowKey>,
    private readonly readOnly: boolean,
    private readonly lock: WriterLock | undefined,
  ) {}

  static async open(dir: string, opts: OpenOptions = {}): Promise<FeatureCache> {
    const readOnly = opts.readOnly ?? false;
    const exclusive = opts.exclusive ?? !readOnly;
    const abs = resolve(dir);
    const shown = dir;
    checkCacheFolder(abs, shown, readOnly);
    let lock: WriterLock | undefined;
    if (!readOnly) {
      if (exclusive) lock = WriterLock.acquire(abs, shown);
      else probeWritable(abs, shown);
    }
    try {
      let env: RootDatabase;
      try {
        // noSubdir must be explicit: lmdb-js treats a path with a dot in its name as a file otherwise.
        env = open({ path: abs, readOnly, noSubdir: false, maxDbs: 8 });
      } catch (e) {
        throw new UserError(`cannot open cache ${shown}: ${lmdbReason(e)}`);
      }
      let dbs;
      try {
        dbs = {
          meta: env.openDB<CacheMeta, string>({ name: 'meta', encoding: 'json' }),
          features: env.openDB<FeatureIndex, string>({ name: 'features' }),
          blobs: env.openDB<Buffer, number>({ name: 'blobs', encoding: 'binary', keyEncoding: 'uint32' }),
          members: env.openDB<MemberValue, RowKey>({ name: 'members' }),
          failures: env.openDB<FailureValue, RowKey>({ name: 'failures' }),
        };
      } catch (e) {
        await env.close();
        throw new UserError(`${shown} is not a viewprobe cache (${readOnly ? 'its LMDB lacks the viewprobe tables' : lmdbReason(e)})`);
      }
      const cache = new FeatureCache(abs, shown, env, dbs.meta, dbs.features, dbs.blobs, dbs.members, dbs.failures, readOnly, lock);
      try {
        checkFormat(cache.meta(), shown, CACHE_FORMAT);
      } catch (e) {
        await cache.close();
        throw e;
      }
      return cache;
    } catch (e) {
      lock?.release();
      throw e;
    }
  }

  private meta(): CacheMeta | undefined {
    return this.metaDb.get('meta');
  }

  private requireMeta(): CacheMeta {
    const meta = this.meta();
    if (!meta || !this.fingerprintChecked) throw new CallerError(`cache ${this.shown}: ensureFingerprint() must come before writing`);
    return meta;
  }

  private requireWritable(): void {
    if (this.closed) throw new CallerError(`cache ${this.shown} is closed`);
    if (this.readOnly) throw new CallerError(`cache ${this.shown} was opened read-only`);
  }

  /** The manifest summary, or undefined for a cache that has no fingerprint yet. */
  info(): CacheInfo | undefined {
    const meta = this.meta();
    if (!meta) return undefined;
    const splits: Record<string, SplitCounts> = {};
    for (const { key, value } of this.membersDb.getRange()) {
      const split = key[0];
      const s = (splits[split] ??= { images: 0, withFeatures: 0, augViewsMin: Infinity, augViewsMax: 0, clean: 0 });
      s.images++;
      const idx = this.featuresDb.get(value[0]);
      const views = idx ? contiguousViews(idx[0]) : 0;
      const hasClean = !!idx?.[1];
      if (views > 0 || hasClean) s.withFeatures++;
      s.augViewsMin = Math.min(s.augViewsMin, views);
      s.augViewsMax = Math.max(s.augViewsMax, views);
      if (hasClean) s.clean++;
    }
    for (const s of Object.values(splits)) if (s.augViewsMin === Infinity) s.augViewsMin = 0;
    let uniqueImages = 0;
    let augViews = 0;
    let cleanViews = 0;
    let ttaViews = 0;
    for (const { value } of this.featuresDb.getRange()) {
      uniqueImages++;
      for (const seg of value[0]) augViews += seg[1];
      if (value[1]) cleanViews++;
      for (const seg of value[2] ?? []) ttaViews += seg[1];
    }
    let failures = 0;
    for (const _ of this.failuresDb.getKeys()) failures++;
    return {
      dir: this.dir,
      format: meta.format,
      fingerprint: meta.fingerprint,
      fingerprintId: meta.fingerprintId,
      classes: meta.classes,
      createdAt: meta.createdAt,
      updatedAt: meta.updatedAt,
      counts: {
        splits,
        uniqueImages,
        augViews,
        cleanViews,
        ttaViews,
        failures,
        payloadBytes: (augViews + cleanViews + ttaViews) * meta.fingerprint.dim * 4,
        fileBytes: fileSize(join(this.dir, 'data.mdb')),
      },
    };
  }

  /**
   * The first writer records the fingerprint and classes; later writers must ask for the same ones,
   * or get a UserError naming what differs.
   */
  ensureFingerprint(asked: Fingerprint, classes: string[]): void {
    this.requireWritable();
    validateFingerprint(asked);
    const fp = normalizeFingerprint(asked);
    validateClasses(classes);
    const meta = this.meta();
    if (meta) {
      const diffs = diffFingerprints(meta.fingerprint, fp);
      if (diffs.length > 0) throw settingsMismatch(this.shown, diffs);
      const classDiff = describeClassDifference(meta.classes, classes);
      if (classDiff) {
        throw new UserError(`cache ${this.shown} was made for other classes: ${classDiff}. Use another --cache for this data`);
      }
      this.fingerprintChecked = true;
      return;
    }
    const now = new Date().toISOString();
    const fresh: CacheMeta = {
      format: CACHE_FORMAT,
      fingerprint: fp,
      fingerprintId: fingerprintId(fp),
      classes: [...classes],
      createdAt: now,
      updatedAt: now,
      nextBlob: 0,
      byteOrder: 'LE',
    };
    this.writeTxn(() => this.metaDb.putSync('meta', fresh));
    this.fingerprintChecked = true;
  }

  /** The recorded fingerprint (cheap, unlike info()), or undefined for a cache nobody wrote yet. */
  fingerprint(): Fingerprint | undefined {
    return this.meta()?.fingerprint;
  }

  /** How many augmented views 0..n-1 are stored for this image. */
  augViews(hash: string): number {
    const idx = this.featuresDb.get(hash);
    return idx ? contiguousViews(idx[0]) : 0;
  }

  hasClean(hash: string): boolean {
    return !!this.featuresDb.get(hash)?.[1];
  }

  /** How many extra test-time views 0..n-1 are stored for this image. */
  ttaViews(hash: string): number {
    const idx = this.featuresDb.get(hash);
    return idx?.[2] ? contiguousViews(idx[2]) : 0;
  }

  /**
   * Writes one batch in ONE transaction. Views already stored are skipped (content-addressed: the
   * same image, kind and view index always has the same features), so a commit may overlap what is
   * there; an augmented segment must not start past the views already stored (no gaps).
   * Committing a member clears that path's failure in its split; recording a failure drops that
   * path's member in its split (its file is no longer readable, so its old features must not be used).
   */
  commit(batch: CommitBatch): void {
    this.requireWritable();
    const meta = this.requireMeta();
    const dim = meta.fingerprint.dim;
    validateBatch(batch, dim, meta.classes.length);
    if (batch.features.length === 0 && !batch.members?.length && !batch.failures?.length && !batch.resolved?.length) return;

    this.writeTxn(() => {
      const current = this.requireMeta();
      const blobs = new BlobPacker(current.nextBlob, dim, (blob, bytes) => this.blobsDb.putSync(blob, bytes));
      const touched = new Map<string, FeatureIndex>();
      const changed = new Set<string>();
      for (const f of batch.features) {
        let idx = touched.get(f.hash);
        if (!idx) {
          const stored = this.featuresDb.get(f.hash);
          idx = stored ? [stored[0].map((s) => [...s] as AugSeg), stored[1]] : [[], null];
          if (stored?.[2]) idx[2] = stored[2].map((s) => [...s] as AugSeg);
          touched.set(f.hash, idx);
        }
        if (f.kind === 'clean') {
          if (!idx[1]) {
            idx[1] = blobs.place(f.data);
            changed.add(f.hash);
          }
        } else {
          // Only caches that hold test-time views get the third slot, so older readers see the same records.
          const segs = f.kind === 'aug' ? idx[0] : (idx[2] ??= []);
          const have = contiguousViews(segs);
          const views = f.data.length / dim;
          if (f.start > have) {
            throw new CallerError(`commit: ${f.hash} ${f.kind} views start at ${f.start} but only 0..${have - 1} are stored (no gaps)`);
          }
          const skip = have - f.start;
          if (skip < views) {
            const [b, o] = blobs.place(skip === 0 ? f.data : f.data.subarray(skip * dim));
            segs.push([have, views - skip, b, o]);
            changed.add(f.hash);
          }
        }
      }
      const nextBlob = blobs.finish();
      for (const hash of changed) this.featuresDb.putSync(hash, touched.get(hash)!);
      for (const m of batch.members ?? []) {
        const key = rowKey(m.split, m.path);
        this.membersDb.putSync(key, [m.hash, m.label, m.path]);
        this.failuresDb.removeSync(key);
      }
      for (const f of batch.failures ?? []) {
        const key = rowKey(f.split, f.path);
        this.failuresDb.putSync(key, [f.reason, f.at, f.path]);
        this.membersDb.removeSync(key);
      }
      if (batch.resolved?.length) {
        // By key, in each split that has failures: scanning the whole ledger on every commit would
        // cost commits x failures on a long run.
        for (const split of this.failureSplits()) for (const p of batch.resolved) this.failuresDb.removeSync(rowKey(split, p));
      }
      this.metaDb.putSync('meta', { ...current, nextBlob, updatedAt: new Date().toISOString() });
    });
  }

  /** The split names present in the failure ledger, one key lookup per split. */
  private failureSplits(): string[] {
    const splits: string[] = [];
    let start: RowKey | undefined;
    for (;;) {
      let next: string | undefined;
      for (const k of this.failuresDb.getKeys({ start, limit: 1 })) next = (k as RowKey)[0];
      if (next === undefined) return splits;
      splits.push(next);
      start = splitRange(next).end;
    }
  }

  /** Drops members of the split whose path is not in keepPaths (and their failures); returns how many members went. */
  pruneMembers(split: string, keepPaths: Set<string>): number {
    this.requireWritable();
    let dropped = 0;
    this.writeTxn(() => {
      // Collect first: removing under a live cursor is not something to rely on.
      const members = [...this.membersDb.getRange(splitRange(split))].filter((e) => !keepPaths.has(e.value[2]));
      const failures = [...this.failuresDb.getRange(splitRange(split))].filter((e) => !keepPaths.has(e.value[2]));
      for (const e of members) this.membersDb.removeSync(e.key);
      for (const e of failures) this.failuresDb.removeSync(e.key);
      dropped = members.length;
    });
    return dropped;
  }

  /** Members in membership order: by split, then by path (code-point order). */
  members(split?: string): Member[] {
    const range = split === undefined ? {} : splitRange(split);
    const out: Member[] = [];
    for (const { key, value } of this.membersDb.getRange(range)) {
      out.push({ hash: value[0], label: value[1], path: value[2], split: key[0] });
    }
    return out;
  }

  failures(): Failure[] {
    const out: Failure[] = [];
    for (const { key, value } of this.failuresDb.getRange()) out.push({ split: key[0], path: value[2], reason: value[0], at: value[1] });
    return out;
  }

  /**
   * One split as arrays for training: rows in membership order; members without any feature are left
   * out; views = the augmented views present for every member (capped by maxViews); clean is null when
   * some member lacks its clean view.
   */
  readSplit(split: string, opts: { maxViews?: number; maxTtaViews?: number } = {}): SplitFeatures {
    const meta = this.meta();
    if (!meta) throw new UserError(`cache ${this.shown} is empty (no extract has written to it)`);
    const dim = meta.fingerprint.dim;
    const rows: { member: Member; idx: FeatureIndex }[] = [];
    for (const member of this.members(split)) {
      const idx = this.featuresDb.get(member.hash);
      if (idx && (contiguousViews(idx[0]) > 0 || idx[1])) rows.push({ member, idx });
    }
    if (opts.maxViews !== undefined && (!Number.isInteger(opts.maxViews) || opts.maxViews < 0)) {
      throw new CallerError(`readSplit: maxViews must be a non-negative integer, got ${opts.maxViews}`);
    }
    const { views, ttaViews, aug, clean, tta, parts } = planSplitRead(rows.map((r) => r.idx), dim, opts);
    for (const [blob, list] of groupByBlob(parts)) {
      const bytes = this.block(blob);
      for (const p of list) {
        const len = p.views * dim * 4;
        const from = p.srcView * dim * 4;
        if (from + len > bytes.length) throw new UserError(`cache ${this.shown} is damaged: feature block ${blob} is too short`);
        new Uint8Array(p.dst.buffer, p.dst.byteOffset + p.dstFloat * 4, len).set(bytes.subarray(from, from + len));
      }
    }
    return {
      split,
      dim,
      paths: rows.map((r) => r.member.path),
      hashes: rows.map((r) => r.member.hash),
      labels: Int32Array.from(rows.map((r) => r.member.label)),
      views,
      aug,
      clean,
      ...(tta ? { tta, ttaViews } : {}),
    };
  }

  /**
   * Every stored feature segment, grouped by the block it lives in (each block is read once): what a
   * merge copies. Yields arrays of records whose data together stay near one block's size.
   */
  *exportFeatures(): Generator<FeatureRecord[]> {
    const meta = this.meta();
    if (!meta) return;
    const dim = meta.fingerprint.dim;
    type Seg = { hash: string; kind: FeatureKind; start: number; offset: number; views: number };
    const segs: [number, Seg][] = [];
    for (const { key: hash, value } of this.featuresDb.getRange()) {
      for (const [start, views, blob, offset] of value[0]) segs.push([blob, { hash, kind: 'aug', start, offset, views }]);
      if (value[1]) segs.push([value[1][0], { hash, kind: 'clean', start: 0, offset: value[1][1], views: 1 }]);
      for (const [start, views, blob, offset] of value[2] ?? []) segs.push([blob, { hash, kind: 'tta', start, offset, views }]);
    }
    for (const [blob, recs] of groupByBlob(segs)) {
      const bytes = this.block(blob);
      recs.sort((a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : a.start - b.start));
      yield recs.map((r) => {
        const data = new Float32Array(r.views * dim);
        new Uint8Array(data.buffer).set(bytes.subarray(r.offset * dim * 4, (r.offset + r.views) * dim * 4));
        return { hash: r.hash, kind: r.kind, start: r.start, data };
      });
    }
  }

  /**
   * One feature block as a plain Uint8Array: copying out of a Buffer's subarray with set() takes a
   * slow path in V8 (measured 20x slower than from a Uint8Array).
   */
  private block(blob: number): Uint8Array {
    const buf = this.blobsDb.getBinary(blob);
    if (!buf) throw new UserError(`cache ${this.shown} is damaged: feature block ${blob} is missing`);
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.env.close();
    } finally {
      this.lock?.release();
    }
  }

  /** Runs fn in one synchronous LMDB write transaction; a failed write becomes a CacheWriteError (a UserError). */
  private writeTxn(fn: () => void): void {
    try {
      this.env.transactionSync(fn);
    } catch (e) {
      if (e instanceof CallerError || e instanceof UserError) throw e;
      // LMDB's C code may have printed "Write error: ..." to stderr without ending the line; the
      // message that reports this failure must not be glued to it.
      process.stderr.write('\n');
      throw writeFailure(e, this.shown, this.dir, join(this.dir, 'data.mdb'));
    }
  }
}
