// eval --data and predict run new images through the backbone a head was trained on. They must get
// the same features the cache holds: same architecture, same weights (by sha256), same preset.
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { isAbsolute, join, relative } from 'node:path';
import type { Fingerprint } from '../cache/types.js';
import { fingerprintFeatures } from '../cache/fingerprint.js';
import { featureDim, stageChannels, type FeatureSpec } from '../feature-spec.js';
import { UserError } from '../errors.js';
import { loadBackboneNet, openBackbone, type BackboneOptions, type LoadedNet, type OpenedBackbone } from '../backbone/index.js';
import type { ActivationRanges } from '../backbone/quantize.js';
import { cacheDir as weightsHome } from '../download.js';
import { makeNormLut, type NormLut } from '../image/normalize.js';
import { getPreset, type Preset } from '../image/presets.js';
import type { PrecisionArgs } from '../extract/calibrate.js';
import { planRunPrecision, type PrecisionPlan } from '../extract/precision.js';

export interface RunBackbone {
  bb: OpenedBackbone;
  preset: Preset;
  norm: NormLut;
  /** The fingerprint of the features this backbone makes (the run's, or the other precision's when asked). */
  fingerprint: Fingerprint;
  precision: PrecisionPlan;
}

const HINT = 'weights.json';

/** extract leaves the weights' path beside the cache, so that eval/predict find them without --weights. */
export async function writeWeightsHint(cacheDir: string, path: string, sha256: string): Promise<void> {
  await writeFile(join(cacheDir, HINT), JSON.stringify({ path, sha256 }, null, 1) + '\n').catch(() => {});
}

/**
 * The weights recorded beside the cache, when they are the ones the head was trained on. A recorded
 * file that is gone is an error rather than a reason to fetch the default ResNet18: only the default
 * download itself (in viewprobe's weights folder) can be fetched again.
 */
async function weightsFromHint(cacheDir: string | undefined, sha256: string): Promise<string | undefined> {
  if (!cacheDir) return undefined;
  let hint: { path?: unknown; sha256?: unknown };
  try {
    hint = JSON.parse(await readFile(join(cacheDir, HINT), 'utf8')) as typeof hint;
  } catch {
    return undefined; // no hint: the default weights resolution applies
  }
  if (typeof hint.path !== 'string' || hint.sha256 !== sha256) return undefined;
  if (existsSync(hint.path)) return hint.path;
  const rel = relative(join(weightsHome(), 'weights'), hint.path);
  if (rel !== '' && !rel.startsWith('..') && !isAbsolute(rel)) return undefined;
  throw new UserError(`the backbone weights this run was trained on are gone: ${hint.path} (recorded in ${join(cacheDir, HINT)}); ` +
    `pass that file, or one with sha256 ${sha256.slice(0, 12)}…, with --weights FILE`);
}

function runPreset(fp: Fingerprint | null, source: string): { fp: Fingerprint; preset: Preset } {
  if (!fp) throw new UserError(`${source} records no cache fingerprint, so the backbone it was trained on is unknown; retrain it with viewprobe train`);
  const preset = getPreset(fp.preset, fp.preset === 'seed' ? {} : { size: fp.inputSize });
  if (preset.inputSize !== fp.inputSize || preset.transformVersion !== fp.transformVersion) {
    throw new UserError(`${source} was trained on preset ${fp.preset} v${fp.transformVersion} at ${fp.inputSize}px; this viewprobe has v${preset.transformVersion} at ${preset.inputSize}px: re-extract and retrain`);
  }
  return { fp, preset };
}

/**
 * Finds the run's weights (--weights, else the file recorded beside its cache, else the default
 * resolution), loads them with `load` and checks them against the run.
 */
async function runWeights<T extends { weightsPath: string; weightsSha256: string; arch: string; dim: number }>(
  fp: Fingerprint, headDim: number, source: string, a: { weights?: string }, cacheDir: string | undefined,
  load: (weights: string | undefined) => Promise<T>, dispose: (t: T) => Promise<void>,
): Promise<T> {
  // A recorded file that is gone stops here (weightsFromHint): never a silent download of other weights.
  const recorded = a.weights === undefined ? await weightsFromHint(cacheDir, fp.weightsSha256) : undefined;
  const got = await load(a.weights ?? recorded);
  try {
    if (got.weightsSha256 !== fp.weightsSha256) {
      throw new UserError(`weights ${got.weightsPath} (sha256 ${got.weightsSha256.slice(0, 12)}…) are not the ones ${source} was trained on (sha256 ${fp.weightsSha256.slice(0, 12)}…); pass those with --weights FILE`);
    }
    if (got.dim !== headDim || got.arch !== fp.arch) {
      throw new UserError(`${source} expects ${fp.arch} features of dimension ${headDim}, the backbone gives ${got.arch} ${got.dim}-d`);
    }
  } catch (e) {
    await dispose(got);
    throw e;
  }
  return got;
}

/**
 * `cacheDir` is the cache the head was trained from: without --weights, the weights recorded there
 * are used when they are still in place.
 */
export async function openRunBackbone(fingerprint: Fingerprint | null, headDim: number, source: string, a: Pick<BackboneOptions, 'weights' | 'engine' | 'device' | 'threads'> & PrecisionArgs, cacheDir?: string): Promise<RunBackbone> {
  const { fp, preset } = runPreset(fingerprint, source);
  const precision = planRunPrecision(a, fp, cacheDir, preset);
  const bb = await runWeights(fp, headDim, source, a, cacheDir,
    (weights) => openBackbone({ weights, backbone: fp.arch, engine: a.engine, device: a.device, threads: a.threads, int8: precision.int8, features: fingerprintFeatures(fp) }),
    (bb) => bb.engine.dispose());
  return { bb, preset, norm: makeNormLut(bb.preprocess), fingerprint: precision.fingerprint(fp), precision };
}

export interface RunNet {
  loaded: LoadedNet;
  preset: Preset;
  /** The run's own fingerprint (the features its head was trained on). */
  fingerprint: Fingerprint;
  /** The pooled features the head reads, and their dimension. */
  features: FeatureSpec;
  dim: number;
  /** As predict's: the run's precision unless asked otherwise, int8 with the run's cache's calibration or --calibration. */
  precision: PrecisionPlan;
  /** int8: the calibration's activation ranges, checked against the weights and the preset. */
  int8?: ActivationRanges;
}

/**
 * The run's backbone as a folded network, without an engine, checked like openRunBackbone's, with
 * the same precision and calibration as predict would use (export builds its own graph).
 */
export async function loadRunNet(fingerprint: Fingerprint | null, headDim: number, source: string, a: { weights?: string } & PrecisionArgs, cacheDir?: string): Promise<RunNet> {
  const { fp, preset } = runPreset(fingerprint, source);
  const precision = planRunPrecision(a, fp, cacheDir, preset);
  const features = fingerprintFeatures(fp);
  const loaded = await runWeights(fp, headDim, source, a, cacheDir,
    async (weights) => {
      const l = await loadBackboneNet({ weights, backbone: fp.arch });
      return { ...l, arch: l.net.variant.arch, dim: featureDim(features, stageChannels(l.net.blocks)) };
    },
    async () => {});
  const int8 = precision.int8 ? await precision.int8(loaded.net, loaded.weightsSha256) : undefined;
  return { loaded, preset, fingerprint: fp, features, dim: loaded.dim, precision, ...(int8 ? { int8 } : {}) };
}
