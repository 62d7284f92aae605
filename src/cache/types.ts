// The shape of what the cache holds, shared by extract (writer), train/eval (readers) and cache tools.
import type { FeatureKind } from './blobs.js';

export type { FeatureKind } from './blobs.js';

/** Everything that changes a feature's value. Two caches mix only when these are all equal. */
export interface Fingerprint {
  arch: string;
  weightsSha256: string;
  preset: 'seed' | 'standard' | 'probe';
  /** Side of the square network input (seed 244, standard 224; --size may change it). */
  inputSize: number;
  /** Bumped whenever the transform code changes what pixels a view gets. */
  transformVersion: number;
  seed: number;
  /** Feature dimension (512 / 2048; more with several poolings or layers). */
  dim: number;
  /** Absent: fp32 (every cache made before int8 existed). */
  precision?: 'int8';
  /** int8 only: sha256 of the cache's calibration.json (cache/calibration.ts). */
  calibration?: string;
  /**
   * Poolings concatenated per layer (src/feature-spec.ts), e.g. ['gem3']. Absent = ['avg']
   * (every cache written before the field existed); written only when it differs from that.
   */
  pool?: string[];
  /** ResNet stages whose pooled outputs are concatenated, e.g. [4, 3]. Absent = [4]; written only when different. */
  layers?: number[];
}

/** `train`, `val`, or a named evaluation set (e.g. `eval:<list file name>`). */
export type Split = string;

export interface Member {
  /** sha256 (hex) of the image file's bytes. */
  hash: string;
  /** Path as given by the dataset (absolute). */
  path: string;
  label: number;
  split: Split;
}

export interface Failure {
  path: string;
  split: Split;
  reason: string;
  /** ISO time of the failed attempt. */
  at: string;
}

/** What one split of the cache gives a trainer: one row per member image, in membership order. */
export interface SplitFeatures {
  split: Split;
  dim: number;
  paths: string[];
  hashes: string[];
  labels: Int32Array;
  /** Augmented views per image present for EVERY image (min over images), K. */
  views: number;
  /** n * views * dim floats, image-major then view: row (i*views + v). Empty when views is 0. */
  aug: Float32Array;
  /** n * dim floats: the eval-transform ("clean") view, or null when some image lacks it. */
  clean: Float32Array | null;
  /**
   * Extra test-time views present for every image (min over images; only beside clean views), T.
   * Absent or 0: none. Evaluation averages the logits of the clean view and these.
   */
  ttaViews?: number;
  /** n * ttaViews * dim floats, image-major then view. */
  tta?: Float32Array;
}

// What the store takes and gives (src/cache/store.ts).

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

/** The manifest (the meta table's one record). */
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

/** What `cache info` shows: the manifest and counts of what is stored. */
export interface CacheInfo extends Omit<CacheMeta, 'nextBlob' | 'byteOrder'> {
  dir: string;
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
