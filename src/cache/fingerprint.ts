// A fingerprint names everything that changes a feature's value. Its id is a hash of its canonical
// JSON, so the same settings give the same id on every machine (shards of one run can be merged), and
// a refusal message can say which setting differs instead of showing two opaque ids.
import { createHash } from 'node:crypto';
import { DEFAULT_FEATURES, type FeatureSpec } from '../feature-spec.js';
import { UserError } from '../errors.js';
import type { Fingerprint } from './types.js';

/** JSON with object keys sorted at every level and no whitespace: one text per value. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) out[k] = sortKeys(x);
    }
    return out;
  }
  return v;
}

/**
 * One spelling per setting: optional fields that hold their default (the value every cache written
 * before them implies) are dropped, so old caches and new ones with default settings have the same id.
 */
export function normalizeFingerprint(fp: Fingerprint): Fingerprint {
  const out: Fingerprint = { ...fp };
  const same = (a: unknown[] | undefined, b: readonly unknown[]) => a !== undefined && a.length === b.length && a.every((v, i) => v === b[i]);
  if (out.pool === undefined || same(out.pool, DEFAULT_FEATURES.pool)) delete out.pool;
  if (out.layers === undefined || same(out.layers, DEFAULT_FEATURES.layers)) delete out.layers;
  return out;
}

/** The pooled features a fingerprint names (absent fields are the defaults). */
export function fingerprintFeatures(fp: Fingerprint): FeatureSpec {
  return { pool: fp.pool ?? [...DEFAULT_FEATURES.pool], layers: fp.layers ?? [...DEFAULT_FEATURES.layers] };
}

/** Short stable id: the first 16 hex digits of sha256(canonical JSON of the normalised fingerprint). */
export function fingerprintId(fp: Fingerprint): string {
  return createHash('sha256').update(canonicalJson(normalizeFingerprint(fp))).digest('hex').slice(0, 16);
}

export interface FingerprintDifference {
  field: string;
  /** Value recorded in the cache (undefined when the field is absent there). */
  cache: unknown;
  /** Value asked for now. */
  asked: unknown;
}

/** Fields that differ, in a fixed order (the Fingerprint's own order first, then any extra fields). */
export function diffFingerprints(cache: Fingerprint, asked: Fingerprint): FingerprintDifference[] {
  const order: string[] = ['arch', 'weightsSha256', 'preset', 'inputSize', 'transformVersion', 'seed', 'dim', 'pool', 'layers', 'precision', 'calibration'];
  for (const k of [...Object.keys(cache), ...Object.keys(asked)].sort()) if (!order.includes(k)) order.push(k);
  // Compared as settings, not spellings: an absent pool and ['avg'] are the same features.
  const a = withDefaults(cache);
  const b = withDefaults(asked);
  return order
    .filter((k) => canonicalJson(a[k]) !== canonicalJson(b[k]))
    .map((k) => ({ field: k, cache: a[k] ?? ABSENT_MEANS[k], asked: b[k] ?? ABSENT_MEANS[k] }));
}

/** What an absent optional field means, for messages ("precision: this cache holds fp32, you asked int8"). */
const ABSENT_MEANS: Record<string, unknown> = { precision: 'fp32' };

function withDefaults(fp: Fingerprint): Record<string, unknown> {
  return { ...fp, ...fingerprintFeatures(fp) };
}

function show(v: unknown): string {
  if (v === undefined) return '(none)';
  const s = typeof v === 'string' ? v : canonicalJson(v);
  // Full sha256 digests make the message unreadable; 12 digits identify one well enough.
  return /^[0-9a-f]{40,}$/.test(s) ? `${s.slice(0, 12)}…` : s;
}

/** e.g. `preset: this cache holds seed, you asked standard; seed: this cache holds 0, you asked 1`. */
export function describeDifferences(diffs: FingerprintDifference[]): string {
  return diffs.map((d) => `${d.field}: this cache holds ${show(d.cache)}, you asked ${show(d.asked)}`).join('; ');
}

/** The refusal of a writer whose settings differ from the cache's, naming each difference. */
export function settingsMismatch(shown: string, diffs: FingerprintDifference[]): UserError {
  // A preset's default size can change between versions (probe: 224, then 288): name the option that matches the cache.
  const size = diffs.length === 1 ? diffs.find((d) => d.field === 'inputSize') : undefined;
  const hint = size && typeof size.cache === 'number' ? `; to add to this cache, pass --size ${size.cache}` : '';
  return new UserError(`cache ${shown} holds features made with other settings: ${describeDifferences(diffs)}. One cache holds one fingerprint: use another --cache (or delete ${shown})${hint}`);
}
