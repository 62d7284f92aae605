import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CALIBRATION_FILE, calibrationHash, checkCalibrationFits, int8Fingerprint, readCalibration, writeCalibration, type CalibrationFile,
} from '../../src/cache/calibration.js';
import { describeDifferences, diffFingerprints, fingerprintId } from '../../src/cache/fingerprint.js';
import { FeatureCache } from '../../src/cache/store.js';
import type { Fingerprint } from '../../src/cache/types.js';

const FP: Fingerprint = { arch: 'resnet18', weightsSha256: 'ab'.repeat(32), preset: 'seed', inputSize: 244, transformVersion: 1, seed: 0, dim: 8 };
const CAL: CalibrationFile = {
  format: 'viewprobe-calibration', version: 1, arch: 'resnet18', weightsSha256: 'ab'.repeat(32), preset: 'seed', inputSize: 244,
  transformVersion: 1, method: 'minmax', images: ['01'.repeat(32)], ranges: { nchw: [-2.1, 2.6], 'conv1.relu': [0, 7.5] },
};

let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'vp-cal-')); });
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('calibration file', () => {
  it('round-trips through a file or the cache folder that holds it; the hash ignores formatting', () => {
    writeCalibration(dir, CAL);
    expect(readCalibration(dir)).toEqual(CAL);
    expect(readCalibration(join(dir, CALIBRATION_FILE), calibrationHash(CAL))).toEqual(CAL);
    const reformatted = join(dir, 'other.json');
    writeFileSync(reformatted, JSON.stringify(Object.fromEntries(Object.entries(CAL).reverse())));
    expect(calibrationHash(readCalibration(reformatted))).toBe(calibrationHash(CAL));
  });

  it('refuses a file that is not the one the fingerprint names, a missing one, and a malformed one', () => {
    writeCalibration(dir, { ...CAL, ranges: { ...CAL.ranges, nchw: [-2, 2.6] } });
    expect(() => readCalibration(dir, calibrationHash(CAL))).toThrow(/is not the calibration these features were made with/);
    expect(() => readCalibration(join(dir, 'nope'))).toThrow(/no such file or folder/);
    const empty = mkdtempSync(join(tmpdir(), 'vp-cal-empty-'));
    try {
      expect(() => readCalibration(empty)).toThrow(/holds no calibration.json.*--calibration FILE/);
    } finally {
      rmSync(empty, { recursive: true });
    }
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ ...CAL, ranges: { nchw: [3, 1] } }));
    expect(() => readCalibration(bad)).toThrow(/range "nchw" must be \[low, high\]/);
    writeFileSync(bad, '{"format":"something"}');
    expect(() => readCalibration(bad)).toThrow(/not a viewprobe calibration/);
  });

  it('a calibration fits only the network and views it was made on, and the refusal names the difference', () => {
    const want = { arch: 'resnet18', weightsSha256: 'ab'.repeat(32), preset: 'seed' as const, inputSize: 244, transformVersion: 1 };
    expect(() => checkCalibrationFits(CAL, want, 'x.json')).not.toThrow();
    expect(() => checkCalibrationFits(CAL, { ...want, preset: 'standard', inputSize: 224 }, 'x.json'))
      .toThrow('calibration x.json was made for another network or transform (preset: the calibration has seed, here standard; inputSize: the calibration has 244, here 224)');
    expect(() => checkCalibrationFits(CAL, { ...want, weightsSha256: 'cd'.repeat(32) }, 'x.json')).toThrow(/weightsSha256: the calibration has abababababab…, here cdcdcdcdcdcd…/);
  });
});

describe('precision in the fingerprint', () => {
  it('fp32 fingerprints are unchanged (old caches keep their id); int8 ones carry the calibration hash', () => {
    expect(fingerprintId(FP)).toBe(fingerprintId({ ...FP, precision: undefined, calibration: undefined }));
    const i8 = int8Fingerprint(FP, CAL);
    expect(i8).toEqual({ ...FP, precision: 'int8', calibration: calibrationHash(CAL) });
    expect(fingerprintId(i8)).not.toBe(fingerprintId(FP));
  });

  it('differences name the precision both ways (an absent field reads as fp32) and the calibration', () => {
    const i8 = int8Fingerprint(FP, CAL);
    expect(describeDifferences(diffFingerprints(FP, i8))).toBe(`precision: this cache holds fp32, you asked int8; calibration: this cache holds (none), you asked ${calibrationHash(CAL).slice(0, 12)}…`);
    expect(describeDifferences(diffFingerprints(i8, FP))).toMatch(/^precision: this cache holds int8, you asked fp32; /);
    const other = int8Fingerprint(FP, { ...CAL, method: 'mse' });
    expect(diffFingerprints(i8, other).map((d) => d.field)).toEqual(['calibration']);
  });

  it('a cache records an int8 fingerprint and refuses an fp32 writer, naming the precision', async () => {
    const c = await FeatureCache.open(dir);
    try {
      c.ensureFingerprint(int8Fingerprint(FP, CAL), ['a', 'b']);
      expect(c.fingerprint()?.precision).toBe('int8');
      expect(() => c.ensureFingerprint(FP, ['a', 'b'])).toThrow(/precision: this cache holds int8, you asked fp32/);
      expect(() => c.ensureFingerprint({ ...FP, precision: 'int8' } as Fingerprint, ['a', 'b'])).toThrow(/malformed fingerprint/);
    } finally {
      await c.close();
    }
    expect(readFileSync(join(dir, 'data.mdb')).length).toBeGreaterThan(0);
  });
});
