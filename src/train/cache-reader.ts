// Read-only access to the feature cache for train and eval, with the user-facing errors for a cache
// that is missing, not a directory, or empty. The cache itself is src/cache/store.ts (FeatureCache).
import { stat } from 'node:fs/promises';
import { FeatureCache } from '../cache/store.js';
import type { Fingerprint, SplitFeatures } from '../cache/types.js';
import { UserError, errorMessage } from '../errors.js';

export interface CacheSummary {
  fingerprint: Fingerprint;
  fingerprintId: string;
  classes: string[];
  /** Test-time views stored for any image: a preset that has them (sweep warns when train's are missing). */
  counts?: { ttaViews: number };
}

export interface CacheReader {
  /** The manifest summary; throws a UserError when the cache holds nothing. */
  info(): Promise<CacheSummary>;
  /** A split's features (zero rows when the cache has none of that split). */
  readSplit(split: 'train' | 'val' | string): Promise<SplitFeatures>;
  close(): Promise<void>;
}

export async function openCacheForReading(dir: string): Promise<CacheReader> {
  const st = await stat(dir).catch(() => undefined);
  if (!st) throw new UserError(`cache ${dir} does not exist (run viewprobe extract --cache ${dir} first)`);
  if (!st.isDirectory()) throw new UserError(`cache ${dir} is not a directory`);
  let cache: FeatureCache;
  try {
    cache = await FeatureCache.open(dir, { readOnly: true });
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`cannot open cache ${dir}: ${errorMessage(e)}`);
  }
  let summary: CacheSummary | undefined;
  const info = async (): Promise<CacheSummary> => {
    summary ??= cache.info();
    if (!summary) throw new UserError(`cache ${dir} is empty (run viewprobe extract --cache ${dir} first)`);
    return summary;
  };
  return {
    info,
    async readSplit(split) {
      await info();
      return cache.readSplit(split);
    },
    async close() {
      await cache.close();
    },
  };
}

/**
 * What train and sweep read: the cache's summary and its train and val splits (the cache closed
 * again at once). A cache without training images is refused, naming the extract that fills it.
 */
export async function readTrainingSplits(dir: string, shown: string, open: (dir: string) => Promise<CacheReader> = openCacheForReading) {
  const cache = await open(dir);
  let train, val, info;
  try {
    info = await cache.info();
    train = await cache.readSplit('train');
    val = await cache.readSplit('val');
  } finally {
    await cache.close();
  }
  if (train.labels.length === 0) throw new UserError(`cache ${shown} has no training images (run viewprobe extract --train DATA --cache ${shown})`);
  return { info, train, val };
}
