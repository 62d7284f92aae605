// The shape of what the cache holds, shared by extract (writer), train/eval (readers) and cache tools.

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
  /**
   * Poolings concatenated per layer (src/extract/backbone/features.ts), e.g. ['gem3']. Absent = ['avg']
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
