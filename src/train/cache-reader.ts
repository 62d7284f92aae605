// Read-only access to the feature cache for train and eval, with the user-facing errors for a cache
// that is missing, not a directory, or empty. The cache itself is src/cache/store.ts (FeatureCache).
import { stat } from 'node:fs/promises';
import type { Fingerprint, SplitFeatures } from '../cache/types.js';
import { UserError, errorMessage } from '../errors.js';

export interface CacheSummary {
  fingerprint: Fingerprint;
  fingerprintId: string;
  classes: string[];
}

export interface CacheReader {
  /** The manifest summary; throws a UserError when the cache holds nothing. */
  info(): Promise<CacheSummary>;
  /** A split's features (zero rows when the cache has none of that split). */
  readSplit(split: 'train' | 'val' | string): Promise<SplitFeatures>;
  close(): Promise<void>;
}

/** What this module needs of FeatureCache (src/cache/store.ts). */
interface FeatureCacheLike {
  info(): CacheSummary | undefined | Promise<CacheSummary | undefined>;
  readSplit(split: string): SplitFeatures | Promise<SplitFeatures>;
  close(): void | Promise<void>;
}

interface StoreModule {
  FeatureCache: { open(dir: string, opts: { readOnly: boolean }): FeatureCacheLike | Promise<FeatureCacheLike> };
}

export async function openCacheForReading(dir: string): Promise<CacheReader> {
  const st = await stat(dir).catch(() => undefined);
  if (!st) throw new UserError(`cache ${dir} does not exist (run viewprobe extract --cache ${dir} first)`);
  if (!st.isDirectory()) throw new UserError(`cache ${dir} is not a directory`);
  // The store is loaded by a computed specifier so that this module (and `train`) builds and runs its
  // own tests independently of the store's development; it is the only place that touches LMDB here.
  const storePath = '../cache/store.js';
  let store: StoreModule;
  try {
    store = (await import(storePath)) as StoreModule;
  } catch (e) {
    throw new Error(`the feature cache module could not be loaded: ${errorMessage(e)}`);
  }
  let cache: FeatureCacheLike;
  try {
    cache = await store.FeatureCache.open(dir, { readOnly: true });
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`cannot open cache ${dir}: ${errorMessage(e)}`);
  }
  let summary: CacheSummary | undefined;
  const info = async (): Promise<CacheSummary> => {
    summary ??= await cache.info();
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
