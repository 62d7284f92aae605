// `viewprobe cache info` and `viewprobe cache merge`: look into a cache, and join the caches of
// sharded extract runs (same fingerprint, disjoint or overlapping image sets) into one.
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { UserError } from '../errors.js';
import { log, printJson, printText } from '../log.js';
import type { cacheInfoBuilder, cacheMergeBuilder } from './commands.js';
import type { ArgsOf } from './options.js';
import { readCalibration, writeCalibration } from '../cache/calibration.js';
import { describeFeatures } from '../feature-spec.js';
import { describeDifferences, diffFingerprints, fingerprintFeatures } from '../cache/fingerprint.js';
import { FeatureCache, type CacheInfo } from '../cache/store.js';
import type { Failure, Fingerprint, Member } from '../cache/types.js';

export type CacheInfoOptions = ArgsOf<typeof cacheInfoBuilder>;

export interface CacheInfoReport extends CacheInfo {
  failureList: Failure[];
  /** fileBytes / payloadBytes (0 when nothing is stored). */
  bytesPerPayload: number;
}

export async function cacheInfo(dir: string): Promise<CacheInfoReport | undefined> {
  const cache = await FeatureCache.open(dir, { readOnly: true });
  try {
    const info = cache.info();
    if (!info) return undefined;
    const { payloadBytes, fileBytes } = info.counts;
    return { ...info, failureList: cache.failures(), bytesPerPayload: payloadBytes > 0 ? fileBytes / payloadBytes : 0 };
  } finally {
    await cache.close();
  }
}

export async function runCacheInfo(opts: CacheInfoOptions): Promise<number> {
  const report = await cacheInfo(opts.cache);
  if (!report) {
    if (opts.json) printJson({ dir: resolve(opts.cache), empty: true });
    else printText(`cache ${opts.cache} holds no features yet (no extract has written to it)`);
    return 0;
  }
  if (opts.json) {
    printJson(report);
    return 0;
  }
  printText(formatInfo(report));
  return 0;
}

function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = bytes / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}

function describeFingerprint(fp: Fingerprint): string {
  return `${fp.arch}, weights ${fp.weightsSha256.slice(0, 12)}, preset ${fp.preset}, input ${fp.inputSize}, transform v${fp.transformVersion}, seed ${fp.seed}, dim ${fp.dim}` +
    `${fp.pool || fp.layers ? `, features ${describeFeatures(fingerprintFeatures(fp))}` : ''}` +
    (fp.precision === 'int8' ? `, int8 (calibration ${fp.calibration!.slice(0, 12)})` : ', fp32');
}

export function formatInfo(r: CacheInfoReport): string[] {
  const c = r.counts;
  const lines = [
    `cache ${r.dir} (format ${r.format}), created ${r.createdAt}, updated ${r.updatedAt}`,
    `fingerprint ${r.fingerprintId}: ${describeFingerprint(r.fingerprint)}`,
    `classes (${r.classes.length}): ${r.classes.join(', ')}`,
  ];
  for (const [split, s] of Object.entries(c.splits)) {
    const views = s.augViewsMin === s.augViewsMax ? `${s.augViewsMin}` : `${s.augViewsMin}..${s.augViewsMax}`;
    lines.push(`split ${split}: ${s.images} images (${s.withFeatures} with features), augmented views per image ${views}, clean views ${s.clean}`);
  }
  if (Object.keys(c.splits).length === 0) lines.push('no members yet');
  lines.push(`stored: ${c.uniqueImages} distinct images, ${c.augViews} augmented + ${c.cleanViews} clean views${c.ttaViews ? ` + ${c.ttaViews} test-time views` : ''}`);
  lines.push(`bytes: payload ${size(c.payloadBytes)} (float32), file ${size(c.fileBytes)}${c.payloadBytes > 0 ? ` = ${r.bytesPerPayload.toFixed(3)}x payload` : ''}`);
  lines.push(`failures: ${c.failures}`);
  for (const f of r.failureList) lines.push(`  ${f.split} ${f.path}: ${f.reason}`);
  return lines;
}

// ---------------------------------------------------------------------------------------------------

export type CacheMergeOptions = ArgsOf<typeof cacheMergeBuilder>;

export interface MergeSummary {
  out: string;
  inputs: string[];
  /** Inputs left out: the output itself, repeats, or empty caches, with why. */
  skipped: { dir: string; why: string }[];
  info: CacheInfo;
}

/** Members are committed in chunks so that one transaction never holds a whole huge dataset. */
const MEMBER_CHUNK = 5000;

function realOrResolved(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return resolve(p);
  }
}

/** Joins caches with one fingerprint into `out` (created if needed, or an existing cache of that fingerprint). */
export async function mergeCaches(out: string, inputs: string[]): Promise<MergeSummary> {
  if (inputs.length === 0) throw new UserError('cache merge: name at least one input cache');
  const outReal = realOrResolved(out);
  const skipped: { dir: string; why: string }[] = [];
  const seen = new Set<string>();
  const sources: { dir: string; cache: FeatureCache; fp: Fingerprint; classes: string[] }[] = [];
  try {
    for (const dir of inputs) {
      const real = realOrResolved(dir);
      if (real === outReal) {
        skipped.push({ dir, why: 'it is the output' });
        continue;
      }
      if (seen.has(real)) {
        skipped.push({ dir, why: 'named twice' });
        continue;
      }
      seen.add(real);
      const cache = await FeatureCache.open(dir, { readOnly: true });
      const info = cache.info();
      if (!info) {
        await cache.close();
        skipped.push({ dir, why: 'it holds no features' });
        continue;
      }
      const first = sources[0];
      if (first) {
        const diffs = diffFingerprints(first.fp, info.fingerprint);
        if (diffs.length > 0) {
          await cache.close();
          throw new UserError(`cannot merge ${dir} with ${first.dir}: they hold features made with other settings (${describeDifferences(diffs).replace(/this cache holds/g, `${first.dir} holds`).replace(/you asked/g, `${dir} holds`)})`);
        }
        if (first.classes.join('\n') !== info.classes.join('\n')) {
          await cache.close();
          throw new UserError(`cannot merge ${dir} with ${first.dir}: their classes differ (${info.classes.length} vs ${first.classes.length}: ${info.classes.slice(0, 5).join(', ')} / ${first.classes.slice(0, 5).join(', ')})`);
        }
      }
      sources.push({ dir, cache, fp: info.fingerprint, classes: info.classes });
    }
    if (sources.length === 0) throw new UserError(`cache merge: nothing to merge into ${out} (${skipped.map((s) => `${s.dir}: ${s.why}`).join('; ')})`);

    // Equal fingerprints name one calibration: the first input's file (checked against it) goes along.
    const fp = sources[0]!.fp;
    const calibration = fp.precision === 'int8' ? readCalibration(sources[0]!.dir, fp.calibration) : undefined;
    const target = await FeatureCache.open(out, { exclusive: true });
    try {
      await target.ensureFingerprint(fp, sources[0]!.classes);
      if (calibration) writeCalibration(target.dir, calibration);
      for (const src of sources) {
        for (const features of src.cache.exportFeatures()) await target.commit({ features });
        const members: Member[] = src.cache.members();
        for (let i = 0; i < members.length; i += MEMBER_CHUNK) {
          await target.commit({ features: [], members: members.slice(i, i + MEMBER_CHUNK) });
        }
      }
      // A failure in one shard that another shard (or an earlier run) got through is no failure.
      const rowKey = (r: { split: string; path: string }) => `${r.split}\u0000${r.path}`;
      const memberKeys = new Set(target.members().map(rowKey));
      const open = sources.flatMap((s) => s.cache.failures()).filter((f) => !memberKeys.has(rowKey(f)));
      if (open.length > 0) await target.commit({ features: [], failures: open });
      return { out, inputs: sources.map((s) => s.dir), skipped, info: target.info()! };
    } finally {
      await target.close();
    }
  } finally {
    for (const s of sources) await s.cache.close();
  }
}

export async function runCacheMerge(opts: CacheMergeOptions): Promise<number> {
  const summary = await mergeCaches(opts.out, opts.inputs);
  if (opts.json) {
    printJson(summary);
    return 0;
  }
  for (const s of summary.skipped) log(`skipped ${s.dir}: ${s.why}`);
  const c = summary.info.counts;
  const splits = Object.entries(c.splits).map(([k, s]) => `${k} ${s.images}`).join(', ');
  printText(`merged ${summary.inputs.length} cache(s) into ${summary.out}: ${splits || 'no members'}; ${c.uniqueImages} distinct images, ${c.augViews} augmented + ${c.cleanViews} clean views, ${c.failures} failures`);
  return 0;
}
