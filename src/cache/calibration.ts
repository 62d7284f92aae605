// The int8 calibration of a cache: the activation ranges its QDQ graph was built with, and what they
// were made from. It lives beside the features as `calibration.json`, and the sha256 of its canonical
// JSON is the fingerprint's `calibration` field, so features of two calibrations never mix, a
// resumed extract reuses the stored one (it never recalibrates), `cache merge` copies it, and
// eval/predict rebuild the very graph the cache's features came from.
import { randomBytes, createHash } from 'node:crypto';
import { readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError, UserError, errorMessage } from '../errors.js';
import { canonicalJson } from './fingerprint.js';
import type { Fingerprint } from './types.js';

export const CALIBRATION_FILE = 'calibration.json';
export const CALIBRATION_FORMAT = 'viewprobe-calibration';

export interface CalibrationFile {
  format: typeof CALIBRATION_FORMAT;
  version: 1;
  /** The network and views it was measured on: a calibration only fits these. */
  arch: string;
  weightsSha256: string;
  preset: 'seed' | 'standard' | 'probe';
  inputSize: number;
  transformVersion: number;
  /** How the ranges were chosen from the activations, e.g. "minmax", "percentile:99.99", "mse". */
  method: string;
  /** Content hashes of the calibration images (their clean views), in hash order. */
  images: string[];
  /** [low, high] per activation tensor of the fp32 graph (quantize.ts activationPoints). */
  ranges: Record<string, [number, number]>;
}

/** The id a fingerprint records: sha256 (hex) of the canonical JSON, so formatting never matters. */
export function calibrationHash(c: CalibrationFile): string {
  return createHash('sha256').update(canonicalJson(c)).digest('hex');
}

/** The fingerprint of features made with this calibration. */
export function int8Fingerprint(fp: Fingerprint, c: CalibrationFile): Fingerprint {
  return { ...fp, precision: 'int8', calibration: calibrationHash(c) };
}

/**
 * Reads a calibration from a calibration file or from a cache folder that holds one. `expectHash`
 * (a fingerprint's `calibration`) refuses a file that is not the one the features were made with.
 */
export function readCalibration(path: string, expectHash?: string): CalibrationFile {
  let file = path;
  try {
    if (statSync(path).isDirectory()) file = join(path, CALIBRATION_FILE);
  } catch (e) {
    throw new UserError(`calibration ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or folder' : errorMessage(e)}`);
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    throw new UserError(missing
      ? `${path} holds no ${CALIBRATION_FILE} (an int8 cache keeps its calibration there; pass --calibration FILE)`
      : `cannot read calibration ${file}: ${errorMessage(e)}`);
  }
  let c: CalibrationFile;
  try {
    c = JSON.parse(text) as CalibrationFile;
  } catch (e) {
    throw new InputError(file, undefined, `not JSON (${errorMessage(e)})`);
  }
  checkShape(c, file);
  if (expectHash !== undefined && calibrationHash(c) !== expectHash) {
    throw new UserError(`${file} is not the calibration these features were made with (sha256 ${calibrationHash(c).slice(0, 12)}…, the fingerprint records ${expectHash.slice(0, 12)}…): restore it, or pass the right one with --calibration FILE`);
  }
  return c;
}

function checkShape(c: CalibrationFile, file: string): void {
  const bad = (why: string): never => {
    throw new InputError(file, undefined, `not a viewprobe calibration (${why})`);
  };
  if (typeof c !== 'object' || c === null || c.format !== CALIBRATION_FORMAT) bad(`"format" must be "${CALIBRATION_FORMAT}"`);
  if (c.version !== 1) bad(`version ${String(c.version)}; this viewprobe reads version 1`);
  for (const k of ['arch', 'weightsSha256', 'preset', 'method'] as const) if (typeof c[k] !== 'string') bad(`"${k}" must be a string`);
  if (!Number.isInteger(c.inputSize) || !Number.isInteger(c.transformVersion)) bad('"inputSize" and "transformVersion" must be integers');
  if (!Array.isArray(c.images) || !c.images.every((h) => typeof h === 'string')) bad('"images" must be a list of hashes');
  if (typeof c.ranges !== 'object' || c.ranges === null) bad('"ranges" must be an object');
  for (const [k, r] of Object.entries(c.ranges)) {
    if (!Array.isArray(r) || r.length !== 2 || !r.every(Number.isFinite) || r[0] > r[1]) bad(`range "${k}" must be [low, high]`);
  }
}

/** Writes `dir/calibration.json` atomically (a killed run leaves the old file or the new one, never half). */
export function writeCalibration(dir: string, c: CalibrationFile): string {
  const file = join(dir, CALIBRATION_FILE);
  const tmp = join(dir, `.${CALIBRATION_FILE}.${process.pid}.${randomBytes(4).toString('hex')}`);
  try {
    writeFileSync(tmp, JSON.stringify(c, null, 1) + '\n');
    renameSync(tmp, file);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      /* never written */
    }
    throw new UserError(`cannot write ${file}: ${errorMessage(e)}`);
  }
  return file;
}

/**
 * Refuses a calibration made for other weights or other views than the features it would make,
 * naming what differs.
 */
export function checkCalibrationFits(c: CalibrationFile, want: Pick<CalibrationFile, 'arch' | 'weightsSha256' | 'preset' | 'inputSize' | 'transformVersion'>, source: string): void {
  const diffs: string[] = [];
  const short = (v: string | number) => (typeof v === 'string' && /^[0-9a-f]{40,}$/.test(v) ? `${v.slice(0, 12)}…` : String(v));
  for (const k of ['arch', 'weightsSha256', 'preset', 'inputSize', 'transformVersion'] as const) {
    if (c[k] !== want[k]) diffs.push(`${k}: the calibration has ${short(c[k])}, here ${short(want[k])}`);
  }
  if (diffs.length > 0) throw new UserError(`calibration ${source} was made for another network or transform (${diffs.join('; ')})`);
}
