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
import { endianness, hostname } from 'node:os';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, linkSync, openSync, readSync, mkdirSync, readFileSync, readdirSync, statSync, statfsSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { UserError, errorMessage } from '../errors.js';
import { isSha256Hex } from '../data/hash.js';
import { describeDifferences, diffFingerprints, fingerprintId, normalizeFingerprint } from './fingerprint.js';
import type { Failure, Fingerprint, Member, SplitFeatures } from './types.js';

/** Bumped when the layout above changes; a cache of a newer format is refused. */
export const CACHE_FORMAT = 1;
export const LOCK_FILE = 'writer.lock';
/** A commit's views are packed into values of about this size (bounded memory when reading one). */
const BLOB_TARGET_BYTES = 8 << 20;
/** LMDB keys are limited to ~1978 bytes; longer paths are keyed by a prefix plus their hash. */
const MAX_KEY_PATH_BYTES = 1500;

export interface CacheMeta {
  format: number;
  fingerprint: Fingerprint;
  fingerprintId: string;
  classes: string[];
  createdAt: string;
  updatedAt: string;
  nextBlob: number;
  byteOrder: 'LE';
}

export interface SplitCounts {
  /** Members of the split. */
  images: number;
  /** Members with at least one stored feature (aug or clean). */
  withFeatures: number;
  /** Min and max over members of the augmented views stored (0..n-1 present). */
  augViewsMin: number;
  augViewsMax: number;
  /** Members with a clean (eval-transform) view. */
  clean: number;
}

export interface CacheInfo {
  dir: string;
  format: number;
  fingerprint: Fingerprint;
  fingerprintId: string;
  classes: string[];
  createdAt: string;
  updatedAt: string;
  counts: {
    splits: Record<string, SplitCounts>;
    /** Distinct images (content hashes) with stored features. */
    uniqueImages: number;
    augViews: number;
    cleanViews: number;
    /** Extra test-time views (presets with test-time views store them for val and eval images). */
    ttaViews: number;
    failures: number;
    /** float32 bytes of all stored views: (augViews + cleanViews + ttaViews) * dim * 4. */
    payloadBytes: number;
    /** Size of the LMDB data file. */
    fileBytes: number;
  };
}

export interface FeatureRecord {
  hash: string;
  kind: FeatureKind;
  /** First view index (always 0 for clean). */
  start: number;
  /** views * dim floats. */
  data: Float32Array;
}

export interface CommitBatch {
  features: FeatureRecord[];
  members?: Member[];
  failures?: Failure[];
  /** Paths whose earlier failure is gone (in every split). */
  resolved?: string[];
}

export interface OpenOptions {
  readOnly?: boolean;
  /** Writers: take the writer lock (default: true unless readOnly). */
  exclusive?: boolean;
}

type AugSeg = [start: number, views: number, blob: number, offset: number];
type CleanLoc = [blob: number, offset: number];
type FeatureIndex = [aug: AugSeg[], clean: CleanLoc | null, tta?: AugSeg[]];
/** Augmented train views, the eval-transform view, the extra test-time views. */
export type FeatureKind = 'aug' | 'clean' | 'tta';
type MemberValue = [hash: string, label: number, path: string];
type FailureValue = [reason: string, at: string, path: string];

/** A bug in the caller (not the user's doing): thrown as a plain Error. */
class CallerError extends Error {}

export class FeatureCache {
  private closed = false;
  /** Writes are refused until ensureFingerprint() has compared this writer's settings with the cache's. */
  private fingerprintChecked = false;

  private constructor(
    readonly dir: string,
    private readonly shown: string,
    private readonly env: RootDatabase,
    private readonly metaDb: Database<CacheMeta, string>,
    private readonly featuresDb: Database<FeatureIndex, string>,
    private readonly blobsDb: Database<Buffer, number>,
    private readonly membersDb: Database<MemberValue, [string, string]>,
    private readonly failuresDb: Database<FailureValue, [string, string]>,
    private readonly readOnly: boolean,
    private readonly lock: WriterLock | undefined,
  ) {}

  static async open(dir: string, opts: OpenOptions = {}): Promise<FeatureCache> {
    const readOnly = opts.readOnly ?? false;
    const exclusive = opts.exclusive ?? !readOnly;
    const abs = resolve(dir);
    const shown = dir;
    let st;
    try {
      st = statSync(abs);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new UserError(`cache ${shown}: ${fsReason(e)}`);
    }
    if (st && !st.isDirectory()) throw new UserError(`cache ${shown} is a file, not a folder: give --cache a folder (new, or an existing cache)`);
    const dataFile = join(abs, 'data.mdb');
    if (readOnly) {
      if (!st) throw new UserError(`cache ${shown} does not exist (run extract first)`);
      if (!existsSync(dataFile)) throw new UserError(`${shown} is not a viewprobe cache (no data.mdb in it)`);
    } else {
      if (!st) {
        try {
          mkdirSync(abs, { recursive: true });
        } catch (e) {
          throw new UserError(`cannot create cache folder ${shown}: ${fsReason(e)}`);
        }
      } else if (!existsSync(dataFile)) {
        const other = readdirSync(abs).filter((n) => n !== LOCK_FILE && n !== 'lock.mdb' && !n.startsWith('.'));
        if (other.length > 0) {
          throw new UserError(`${shown} is not empty and holds no viewprobe cache (it has ${other.slice(0, 3).join(', ')}${other.length > 3 ? ', ...' : ''}): give --cache a new or empty folder`);
        }
      }
    }
    if (existsSync(dataFile)) checkDataFile(dataFile, shown, readOnly);
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
          members: env.openDB<MemberValue, [string, string]>({ name: 'members' }),
          failures: env.openDB<FailureValue, [string, string]>({ name: 'failures' }),
        };
      } catch (e) {
        await env.close();
        throw new UserError(`${shown} is not a viewprobe cache (${readOnly ? 'its LMDB lacks the viewprobe tables' : lmdbReason(e)})`);
      }
      const cache = new FeatureCache(abs, shown, env, dbs.meta, dbs.features, dbs.blobs, dbs.members, dbs.failures, readOnly, lock);
      try {
        cache.checkFormat();
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

  private checkFormat(): void {
    const meta = this.meta();
    if (!meta) return;
    if (typeof meta.format !== 'number' || !Number.isInteger(meta.format)) {
      throw new UserError(`${this.shown} is not a viewprobe cache (its manifest has no format number)`);
    }
    if (meta.format > CACHE_FORMAT) {
      throw new UserError(`cache ${this.shown} was written by a newer viewprobe (cache format ${meta.format}; this version reads format ${CACHE_FORMAT}): upgrade viewprobe, or use another --cache`);
    }
    if (meta.byteOrder !== 'LE' || endianness() !== 'LE') {
      throw new UserError(`cache ${this.shown}: features are stored little-endian and this machine is ${endianness()}`);
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
  async ensureFingerprint(asked: Fingerprint, classes: string[]): Promise<void> {
    this.requireWritable();
    validateFingerprint(asked);
    const fp = normalizeFingerprint(asked);
    if (!Array.isArray(classes) || classes.length === 0 || !classes.every((c) => typeof c === 'string')) {
      throw new CallerError('ensureFingerprint: classes must be a non-empty string array');
    }
    const meta = this.meta();
    if (meta) {
      const diffs = diffFingerprints(meta.fingerprint, fp);
      if (diffs.length > 0) {
        throw new UserError(`cache ${this.shown} holds features made with other settings: ${describeDifferences(diffs)}. One cache holds one fingerprint: use another --cache (or delete ${this.shown})`);
      }
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
  async commit(batch: CommitBatch): Promise<void> {
    this.requireWritable();
    const meta = this.requireMeta();
    const dim = meta.fingerprint.dim;
    const nClasses = meta.classes.length;
    for (const f of batch.features) validateFeature(f, dim);
    for (const m of batch.members ?? []) {
      if (!isSha256Hex(m.hash)) throw new CallerError(`commit: member ${m.path} has no sha256 hash`);
      if (!Number.isInteger(m.label) || m.label < 0 || m.label >= nClasses) {
        throw new CallerError(`commit: member ${m.path} has label ${m.label}, outside 0..${nClasses - 1}`);
      }
      if (typeof m.split !== 'string' || m.split === '' || typeof m.path !== 'string' || m.path === '') {
        throw new CallerError('commit: a member needs a split and a path');
      }
    }
    for (const f of batch.failures ?? []) {
      if (typeof f.path !== 'string' || typeof f.split !== 'string' || typeof f.reason !== 'string') {
        throw new CallerError('commit: a failure needs path, split and reason');
      }
    }
    if (batch.features.length === 0 && !batch.members?.length && !batch.failures?.length && !batch.resolved?.length) return;

    this.writeTxn(() => {
      const current = this.requireMeta();
      let blob = current.nextBlob;
      let parts: Uint8Array[] = [];
      let blobViews = 0;
      const flush = () => {
        if (parts.length === 0) return;
        this.blobsDb.putSync(blob, Buffer.concat(parts));
        blob++;
        parts = [];
        blobViews = 0;
      };
      const place = (data: Float32Array): [number, number] => {
        const views = data.length / dim;
        if (blobViews > 0 && (blobViews + views) * dim * 4 > BLOB_TARGET_BYTES) flush();
        const at: [number, number] = [blob, blobViews];
        parts.push(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
        blobViews += views;
        return at;
      };
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
            idx[1] = place(f.data);
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
            const [b, o] = place(skip === 0 ? f.data : f.data.subarray(skip * dim));
            segs.push([have, views - skip, b, o]);
            changed.add(f.hash);
          }
        }
      }
      flush();
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
      this.metaDb.putSync('meta', { ...current, nextBlob: blob, updatedAt: new Date().toISOString() });
    });
  }

  /** The split names present in the failure ledger, one key lookup per split. */
  private failureSplits(): string[] {
    const splits: string[] = [];
    let start: [string, string] | undefined;
    for (;;) {
      let next: string | undefined;
      for (const k of this.failuresDb.getKeys({ start, limit: 1 })) next = (k as [string, string])[0];
      if (next === undefined) return splits;
      splits.push(next);
      start = splitRange(next).end;
    }
  }

  /** Drops members of the split whose path is not in keepPaths (and their failures); returns how many members went. */
  async pruneMembers(split: string, keepPaths: Set<string>): Promise<number> {
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
    const n = rows.length;
    let views = n === 0 ? 0 : Infinity;
    for (const r of rows) views = Math.min(views, contiguousViews(r.idx[0]));
    if (opts.maxViews !== undefined) {
      if (!Number.isInteger(opts.maxViews) || opts.maxViews < 0) throw new CallerError(`readSplit: maxViews must be a non-negative integer, got ${opts.maxViews}`);
      views = Math.min(views, opts.maxViews);
    }
    const hasClean = n > 0 && rows.every((r) => r.idx[1]);
    // Test-time views count only beside a clean view (they are averaged with it); min over members.
    let ttaViews = hasClean ? Infinity : 0;
    for (const r of rows) ttaViews = Math.min(ttaViews, r.idx[2] ? contiguousViews(r.idx[2]) : 0);
    if (opts.maxTtaViews !== undefined) ttaViews = Math.min(ttaViews, opts.maxTtaViews);
    const aug = new Float32Array(n * views * dim);
    const clean = hasClean ? new Float32Array(n * dim) : null;
    const tta = ttaViews > 0 ? new Float32Array(n * ttaViews * dim) : undefined;
    // Fetch each blob once and scatter its rows, whatever order the members came in.
    const plan = new Map<number, { srcView: number; dst: Float32Array; dstFloat: number; views: number }[]>();
    const want = (blob: number, srcView: number, dst: Float32Array, dstFloat: number, nViews: number) => {
      let list = plan.get(blob);
      if (!list) plan.set(blob, (list = []));
      list.push({ srcView, dst, dstFloat, views: nViews });
    };
    rows.forEach((r, i) => {
      for (const [start, count, blob, offset] of r.idx[0]) {
        if (start >= views) continue;
        want(blob, offset, aug, (i * views + start) * dim, Math.min(count, views - start));
      }
      if (clean) want(r.idx[1]![0], r.idx[1]![1], clean, i * dim, 1);
      if (tta) {
        for (const [start, count, blob, offset] of r.idx[2]!) {
          if (start >= ttaViews) continue;
          want(blob, offset, tta, (i * ttaViews + start) * dim, Math.min(count, ttaViews - start));
        }
      }
    });
    for (const [blob, parts] of plan) {
      const bytes = this.block(blob);
      for (const p of parts) {
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
    const byBlob = new Map<number, { hash: string; kind: FeatureKind; start: number; offset: number; views: number }[]>();
    const add = (blob: number, rec: { hash: string; kind: FeatureKind; start: number; offset: number; views: number }) => {
      let list = byBlob.get(blob);
      if (!list) byBlob.set(blob, (list = []));
      list.push(rec);
    };
    for (const { key: hash, value } of this.featuresDb.getRange()) {
      for (const [start, views, blob, offset] of value[0]) add(blob, { hash, kind: 'aug', start, offset, views });
      if (value[1]) add(value[1][0], { hash, kind: 'clean', start: 0, offset: value[1][1], views: 1 });
      for (const [start, views, blob, offset] of value[2] ?? []) add(blob, { hash, kind: 'tta', start, offset, views });
    }
    for (const blob of [...byBlob.keys()].sort((a, b) => a - b)) {
      const bytes = this.block(blob);
      const recs = byBlob.get(blob)!.sort((a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : a.start - b.start));
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

  /** Runs fn in one synchronous LMDB write transaction; a failed write becomes a clear UserError. */
  private writeTxn(fn: () => void): void {
    try {
      this.env.transactionSync(fn);
    } catch (e) {
      if (e instanceof CallerError || e instanceof UserError) throw e;
      throw new UserError(`cache ${this.shown}: writing a batch failed (${lmdbReason(e)}${freeSpaceNote(this.dir)}). That batch was not kept; everything committed before it is intact — free some space and rerun to resume`);
    }
  }
}

// ---------------------------------------------------------------------------------------------------

function contiguousViews(segs: AugSeg[]): number {
  let have = 0;
  for (const [start, views] of [...segs].sort((a, b) => a[0] - b[0])) {
    if (start > have) break;
    have = Math.max(have, start + views);
  }
  return have;
}

function rowKey(split: string, path: string): [string, string] {
  if (Buffer.byteLength(split) + Buffer.byteLength(path) <= MAX_KEY_PATH_BYTES) return [split, path];
  if (Buffer.byteLength(split) > 200) throw new CallerError(`split name too long: ${split.slice(0, 50)}...`);
  // A byte-bounded prefix keeps the order roughly by path; the digest keeps the key unique.
  const prefix = Buffer.from(path, 'utf8').subarray(0, 600).toString('utf8');
  return [split, `${prefix}\u2026${createHash('sha256').update(path).digest('hex')}`];
}

function splitRange(split: string) {
  // Array keys compare element by element and a string element ends with a 0 byte, so
  // [split] < [split, any path] < [split + U+0001] < [split + any printable suffix].
  return { start: [split] as unknown as [string, string], end: [`${split}\u0001`] as unknown as [string, string] };
}

function validateFingerprint(fp: Fingerprint): void {
  const ok =
    fp &&
    typeof fp.arch === 'string' &&
    typeof fp.weightsSha256 === 'string' &&
    (fp.preset === 'seed' || fp.preset === 'standard' || fp.preset === 'probe') &&
    (fp.pool === undefined || (Array.isArray(fp.pool) && fp.pool.length > 0 && fp.pool.every((p) => typeof p === 'string'))) &&
    (fp.layers === undefined || (Array.isArray(fp.layers) && fp.layers.length > 0 && fp.layers.every((l) => Number.isInteger(l)))) &&
    Number.isInteger(fp.inputSize) && fp.inputSize > 0 &&
    Number.isInteger(fp.transformVersion) &&
    Number.isInteger(fp.seed) &&
    Number.isInteger(fp.dim) && fp.dim > 0;
  if (!ok) throw new CallerError(`ensureFingerprint: malformed fingerprint ${JSON.stringify(fp)}`);
}

function validateFeature(f: FeatureRecord, dim: number): void {
  if (!isSha256Hex(f.hash)) throw new CallerError(`commit: feature hash "${f.hash}" is not a sha256 hex digest`);
  if (f.kind !== 'aug' && f.kind !== 'clean' && f.kind !== 'tta') throw new CallerError(`commit: feature kind must be aug, clean or tta, got ${String(f.kind)}`);
  if (!Number.isInteger(f.start) || f.start < 0) throw new CallerError(`commit: feature start must be a non-negative integer, got ${f.start}`);
  if (!(f.data instanceof Float32Array) || f.data.length === 0 || f.data.length % dim !== 0) {
    throw new CallerError(`commit: features of ${f.hash} must be a non-empty Float32Array of n*${dim} floats`);
  }
  if (f.kind === 'clean' && (f.start !== 0 || f.data.length !== dim)) throw new CallerError(`commit: a clean view is one view at start 0 (${f.hash})`);
  for (let i = 0; i < f.data.length; i++) {
    if (!Number.isFinite(f.data[i]!)) throw new CallerError(`commit: non-finite feature value for ${f.hash} (view ${f.start + Math.floor(i / dim)}): the backbone produced NaN/Inf`);
  }
}

function describeClassDifference(have: string[], want: string[]): string | undefined {
  if (have.length === want.length && have.every((c, i) => c === want[i])) return undefined;
  if (have.length !== want.length) return `this cache holds ${have.length} classes (${preview(have)}), the data has ${want.length} (${preview(want)})`;
  const i = have.findIndex((c, k) => c !== want[k]);
  return `class ${i} is "${have[i]}" in this cache and "${want[i]}" in the data`;
}

function preview(names: string[]): string {
  return names.length <= 6 ? names.join(', ') : `${names.slice(0, 5).join(', ')}, ...`;
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

function fsReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code === 'EROFS') return 'read-only file system';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'ENOSPC') return 'no space left on the device';
  if (code === 'ENOTDIR') return 'a parent of it is a file';
  return errorMessage(e);
}

function lmdbReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (typeof code === 'string' && code.startsWith('E')) return fsReason(e);
  return errorMessage(e).replace(/^Error:\s*/, '');
}

function freeSpaceNote(dir: string): string {
  try {
    const s = statfsSync(dir);
    const free = s.bavail * s.bsize;
    const mb = (free / 2 ** 20).toFixed(1);
    return free < 64 * 2 ** 20 ? `; the disk looks full: ${mb} MB free` : `; ${mb} MB free on that disk`;
  } catch {
    return '';
  }
}

/**
 * LMDB trusts its data file: a foreign, empty or truncated data.mdb crashes the process (SIGSEGV or
 * SIGBUS from the memory map) instead of failing. So the header is checked here first: both meta
 * pages carry LMDB's magic and data version, and the file reaches the last page the newest one names.
 */
function checkDataFile(file: string, shown: string, readOnly: boolean): void {
  const size = statSync(file).size;
  if (size === 0) {
    // A writer may start over on an empty file (LMDB initialises it); a reader has nothing to read.
    if (readOnly) throw new UserError(`cache ${shown} is empty (its data.mdb has 0 bytes)`);
    return;
  }
  const damaged = (why: string) =>
    new UserError(`cache ${shown} is damaged or not a viewprobe cache: data.mdb ${why}. Move it away (or delete ${shown}) and rerun extract`);
  const META = 24; // page header size in this LMDB build (8-byte page numbers plus a txn id)
  const readAt = (pos: number, len: number): Buffer => {
    const buf = Buffer.alloc(len);
    const fd = openSync(file, 'r');
    try {
      readSync(fd, buf, 0, len, pos);
    } finally {
      closeSync(fd);
    }
    return buf;
  };
  if (size < 256) throw damaged(`has only ${size} bytes`);
  const p0 = readAt(0, 256);
  if (p0.readUInt32LE(META) !== 0xbeefc0de) throw damaged('is not an LMDB file');
  const version = p0.readUInt32LE(META + 4);
  if (version !== 2) throw damaged(`has LMDB data version ${version} (this build reads 2)`);
  const psize = p0.readUInt32LE(META + 24);
  if (psize < 512 || psize > 65536 || (psize & (psize - 1)) !== 0) throw damaged(`names an impossible page size ${psize}`);
  if (size < 2 * psize) throw damaged(`is truncated (${size} bytes)`);
  const p1 = readAt(psize, 256);
  if (p1.readUInt32LE(META) !== 0xbeefc0de) throw damaged('has a damaged second meta page');
  const newest = p1.readBigUInt64LE(META + 128) > p0.readBigUInt64LE(META + 128) ? p1 : p0;
  const lastPage = newest.readBigUInt64LE(META + 120);
  const needed = (lastPage + 1n) * BigInt(psize);
  if (needed > BigInt(size)) throw damaged(`is truncated (${size} bytes; its last commit needs ${needed})`);
}

function probeWritable(abs: string, shown: string): void {
  const probe = join(abs, `.write-probe-${process.pid}`);
  try {
    writeFileSync(probe, '');
    unlinkSync(probe);
  } catch (e) {
    throw new UserError(`cache folder ${shown} is not writable (${fsReason(e)}): a writer needs a folder it can write to (readers can still open it)`);
  }
}

// ---------------------------------------------------------------------------------------------------
// The writer lock: a file holding the writer's pid, host and process start time. A second writer
// refuses at once (it would only duplicate work; LMDB itself keeps the data consistent regardless).
// A lock left by a dead process (pid gone, or the pid reused by a process that started later) is
// stale and taken over. Locks from another host cannot be checked and are respected.

interface LockHolder {
  pid: number;
  host: string;
  since: string;
  procStart?: string;
}

function procStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: count fields after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function holderAlive(h: LockHolder): boolean {
  if (h.host !== hostname()) return true;
  try {
    process.kill(h.pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  const started = procStartTime(h.pid);
  return !(h.procStart && started && started !== h.procStart);
}

export class WriterLock {
  private released = false;
  private readonly onExit = () => this.release();

  private constructor(readonly file: string, private readonly content: string) {
    process.once('exit', this.onExit);
  }

  static acquire(abs: string, shown: string): WriterLock {
    const file = join(abs, LOCK_FILE);
    const content = JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString(), procStart: procStartTime(process.pid) } satisfies LockHolder);
    const tmp = join(abs, `.${LOCK_FILE}.${process.pid}.${Date.now()}`);
    try {
      writeFileSync(tmp, content);
    } catch (e) {
      throw new UserError(`cache folder ${shown} is not writable (${fsReason(e)}): a writer needs a folder it can write to (readers can still open it)`);
    }
    try {
      for (let attempt = 0; attempt < 5; attempt++) {
        try {
          // link() creates the lock with its full content at once, or fails if one exists.
          linkSync(tmp, file);
          return new WriterLock(file, content);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new UserError(`cannot lock cache ${shown}: ${fsReason(e)}`);
        }
        let text: string;
        try {
          text = readFileSync(file, 'utf8');
        } catch {
          continue;
        }
        let holder: LockHolder | undefined;
        try {
          holder = JSON.parse(text) as LockHolder;
        } catch {
          holder = undefined;
        }
        if (holder && typeof holder.pid === 'number' && holderAlive(holder)) {
          const who = holder.pid === process.pid && holder.host === hostname() ? 'this same process' : `pid ${holder.pid}`;
          throw new UserError(`cache ${shown} is in use by another writer (${who} on ${holder.host}, since ${holder.since}): wait for it to finish or use another --cache (if no such process runs, delete ${file})`);
        }
        // Stale: remove it only if it is still the lock we judged, then try again.
        try {
          if (readFileSync(file, 'utf8') === text) unlinkSync(file);
        } catch {
          /* someone else removed it first */
        }
      }
      throw new UserError(`cannot lock cache ${shown}: the lock file ${file} keeps changing`);
    } finally {
      try {
        unlinkSync(tmp);
      } catch {
        /* already gone */
      }
    }
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    process.removeListener('exit', this.onExit);
    try {
      if (readFileSync(this.file, 'utf8') === this.content) unlinkSync(this.file);
    } catch {
      /* already gone */
    }
  }
}
