// `--precision fp32|int8` and `--calibration` for the commands that run the backbone: which
// calibration an int8 graph gets, and the fingerprint of the features it makes.
//   extract:        the cache's stored calibration (a rerun or resume never recalibrates), else
//                   --calibration, else a fresh one on the training images, stored beside the features.
//   eval, predict:  the run's precision by default, with the calibration of the run's cache.
//   embed:          int8 needs --calibration (the cache whose features the output should match).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CALIBRATION_FILE, calibrationHash, int8Fingerprint, readCalibration, writeCalibration, type CalibrationFile } from '../cache/calibration.js';
import { FeatureCache } from '../cache/store.js';
import { diffFingerprints, settingsMismatch } from '../cache/fingerprint.js';
import type { Fingerprint } from '../cache/types.js';
import type { DatasetItem } from '../data/dataset.js';
import { UserError } from '../errors.js';
import { log } from '../log.js';
import type { BackboneOptions } from '../backbone/index.js';
import { int8Backbone, parseMethod, type PrecisionArgs } from './calibrate.js';
import type { Preset } from '../image/presets.js';

export interface PrecisionPlan {
  precision: 'fp32' | 'int8';
  /** openBackbone's `int8` option (undefined for fp32). */
  int8?: BackboneOptions['int8'];
  /** The fingerprint of the features this makes, from the fp32 one. Call after openBackbone. */
  fingerprint(fp: Fingerprint): Fingerprint;
  /** The calibration used (after openBackbone), for int8. */
  calibration(): CalibrationFile | undefined;
  /**
   * Keeps the calibration beside features about to be written into `cache` (int8), before its
   * fingerprint is checked or recorded, so that an int8 cache never lacks its file. Never over a
   * different one: the fingerprint check that follows refuses that writer, naming the difference.
   */
  store(cache: FeatureCache): void;
}

function plan(precision: 'fp32' | 'int8', o: Parameters<typeof int8Backbone>[0] | undefined): PrecisionPlan {
  let used: CalibrationFile | undefined;
  return {
    precision,
    ...(o ? { int8: int8Backbone({ ...o, onCalibration: (c) => { used = c; } }) } : {}),
    fingerprint: (fp) => {
      const { precision: _p, calibration: _c, ...fp32 } = fp;
      if (precision === 'fp32') return fp32;
      if (!used) throw new Error('PrecisionPlan.fingerprint() before the backbone was opened');
      return int8Fingerprint(fp32, used);
    },
    calibration: () => used,
    store: (cache) => {
      if (!used) return;
      const have = cache.fingerprint();
      if (!have || have.calibration === calibrationHash(used)) writeCalibration(cache.dir, used);
    },
  };
}

async function storedFingerprint(dir: string): Promise<Fingerprint | undefined> {
  if (!existsSync(join(dir, 'data.mdb'))) return undefined;
  const cache = await FeatureCache.open(dir, { readOnly: true });
  try {
    return cache.fingerprint();
  } finally {
    await cache.close();
  }
}

export interface ExtractPrecisionArgs extends PrecisionArgs {
  calibrationMethod?: string;
  calibrationImages?: number;
}

/**
 * extract: refuses a cache of the other precision before anything loads (naming it), and picks the
 * calibration. Call `store` once the cache is open, before its fingerprint is checked or recorded.
 */
export async function planExtractPrecision(
  a: ExtractPrecisionArgs, cacheDir: string, shown: string, train: DatasetItem[] | undefined, preset: Preset,
): Promise<PrecisionPlan> {
  const precision = a.precision ?? 'fp32';
  if (precision === 'fp32' && (a.calibration !== undefined || a.calibrationMethod !== undefined || a.calibrationImages !== undefined)) {
    throw new UserError('--calibration, --calibration-method and --calibration-images go with --precision int8');
  }
  if (a.calibrationImages !== undefined && !(Number.isInteger(a.calibrationImages) && a.calibrationImages >= 1)) {
    throw new UserError(`--calibration-images must be a whole number >= 1 (got ${a.calibrationImages})`);
  }
  const stored = await storedFingerprint(cacheDir);
  if (stored && (stored.precision ?? 'fp32') !== precision) {
    const asked: Fingerprint = { ...stored, precision: precision === 'int8' ? 'int8' : undefined, calibration: undefined };
    throw settingsMismatch(shown, diffFingerprints(stored, asked).filter((d) => d.field === 'precision'));
  }
  if (precision === 'fp32') return plan('fp32', undefined);

  const fresh = a.calibrationMethod !== undefined || a.calibrationImages !== undefined;
  const method = a.calibrationMethod !== undefined ? parseMethod(a.calibrationMethod) : undefined;
  if (fresh && a.calibration !== undefined) throw new UserError('--calibration-method and --calibration-images make a new calibration: they do not go with --calibration');
  let calibration: CalibrationFile | undefined;
  let source: string | undefined;
  if (a.calibration !== undefined) {
    calibration = readCalibration(a.calibration);
    source = a.calibration;
  } else if (stored) {
    calibration = readCalibration(cacheDir, stored.calibration);
    source = `${shown} (stored)`;
    const differs = (method !== undefined && method !== calibration.method) || (a.calibrationImages !== undefined && a.calibrationImages !== calibration.images.length);
    if (differs) {
      throw new UserError(`cache ${shown} was calibrated with ${calibration.method} on ${calibration.images.length} images, and one cache holds one calibration: drop --calibration-method/--calibration-images to reuse it, or use another --cache`);
    }
    log(`int8: reusing the calibration stored in ${shown}`);
  }
  return plan('int8', {
    preset, train, ...(calibration ? { calibration } : {}), ...(source ? { source } : {}),
    ...(method !== undefined ? { method } : {}),
    ...(a.calibrationImages !== undefined ? { count: a.calibrationImages } : {}),
  });
}

/**
 * eval --data and predict: the run's precision unless asked otherwise. int8 uses the calibration of
 * the run's cache (checked against the head's fingerprint), or --calibration.
 */
export function planRunPrecision(a: PrecisionArgs, fp: Fingerprint, runCache: string | undefined, preset: Preset): PrecisionPlan {
  const precision = a.precision ?? fp.precision ?? 'fp32';
  if (precision === 'fp32') {
    if (a.calibration !== undefined) throw new UserError('--calibration goes with --precision int8');
    return plan('fp32', undefined);
  }
  let calibration: CalibrationFile;
  let source: string;
  if (a.calibration !== undefined) {
    calibration = readCalibration(a.calibration);
    source = a.calibration;
  } else if (fp.precision === 'int8' && runCache) {
    if (!existsSync(runCache)) {
      throw new UserError(`the run's head was trained on int8 features whose calibration is kept in its cache ${runCache}, which is gone: ` +
        `pass --calibration FILE (that cache's ${CALIBRATION_FILE}, sha256 ${fp.calibration?.slice(0, 12) ?? '?'}…), or --precision fp32`);
    }
    calibration = readCalibration(runCache, fp.calibration);
    source = runCache;
  } else {
    throw new UserError(`the run's head was trained on fp32 features, so it has no int8 calibration: pass --calibration FILE|CACHE (e.g. an int8 cache of the same weights), or drop --precision int8`);
  }
  return plan('int8', { calibration, source, preset });
}

/** embed: int8 needs a calibration from elsewhere (a cache), since one image says nothing about ranges. */
export function planEmbedPrecision(a: PrecisionArgs, preset: Preset): PrecisionPlan {
  if ((a.precision ?? 'fp32') === 'fp32') {
    if (a.calibration !== undefined) throw new UserError('--calibration goes with --precision int8');
    return plan('fp32', undefined);
  }
  if (a.calibration === undefined) throw new UserError('embed --precision int8 needs --calibration FILE|CACHE: the calibration of the int8 cache whose features these should match');
  return plan('int8', { calibration: readCalibration(a.calibration), source: a.calibration, preset });
}
