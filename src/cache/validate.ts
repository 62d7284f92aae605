// What the store checks before reading or writing: a malformed fingerprint, feature, member or failure
// is a bug in the caller (CallerError), never a user's mistake; a manifest it cannot read, or other
// classes, are the user's (UserError).
import { endianness } from 'node:os';
import { UserError } from '../errors.js';
import { isSha256Hex } from '../data/hash.js';
import type { CacheMeta, CommitBatch, FeatureRecord, Fingerprint } from './types.js';

/** A bug in the caller (not the user's doing): thrown as a plain Error, so the CLI calls it internal. */
export class CallerError extends Error {}

export function validateFingerprint(fp: Fingerprint): void {
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
    Number.isInteger(fp.dim) && fp.dim > 0 &&
    (fp.precision === undefined ? fp.calibration === undefined : fp.precision === 'int8' && typeof fp.calibration === 'string');
  if (!ok) throw new CallerError(`ensureFingerprint: malformed fingerprint ${JSON.stringify(fp)}`);
}

export function validateClasses(classes: string[]): void {
  if (!Array.isArray(classes) || classes.length === 0 || !classes.every((c) => typeof c === 'string')) {
    throw new CallerError('ensureFingerprint: classes must be a non-empty string array');
  }
}

/** Every record of a commit, before its transaction starts (so a bad one writes nothing). */
export function validateBatch(batch: CommitBatch, dim: number, nClasses: number): void {
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

export function describeClassDifference(have: string[], want: string[]): string | undefined {
  if (have.length === want.length && have.every((c, i) => c === want[i])) return undefined;
  if (have.length !== want.length) return `this cache holds ${have.length} classes (${preview(have)}), the data has ${want.length} (${preview(want)})`;
  const i = have.findIndex((c, k) => c !== want[k]);
  return `class ${i} is "${have[i]}" in this cache and "${want[i]}" in the data`;
}

function preview(names: string[]): string {
  return names.length <= 6 ? names.join(', ') : `${names.slice(0, 5).join(', ')}, ...`;
}

/** A cache this build can read: a manifest with a format number no newer than `supported`, little-endian. */
export function checkFormat(meta: CacheMeta | undefined, shown: string, supported: number): void {
  if (!meta) return;
  if (typeof meta.format !== 'number' || !Number.isInteger(meta.format)) {
    throw new UserError(`${shown} is not a viewprobe cache (its manifest has no format number)`);
  }
  if (meta.format > supported) {
    throw new UserError(`cache ${shown} was written by a newer viewprobe (cache format ${meta.format}; this version reads format ${supported}): upgrade viewprobe, or use another --cache`);
  }
  if (meta.byteOrder !== 'LE' || endianness() !== 'LE') {
    throw new UserError(`cache ${shown}: features are stored little-endian and this machine is ${endianness()}`);
  }
}
