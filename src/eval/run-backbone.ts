// eval --data and predict run new images through the backbone a head was trained on. They must get
// the same features the cache holds: same architecture, same weights (by sha256), same preset.
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BackboneArgs } from '../cli.js';
import type { Fingerprint } from '../cache/types.js';
import { UserError } from '../errors.js';
import { openBackbone, type OpenedBackbone } from '../extract/backbone/index.js';
import { makeNormLut, type NormLut } from '../extract/normalize.js';
import { getPreset, type Preset } from '../extract/presets.js';
import { fingerprintFeatures } from '../cache/fingerprint.js';

export interface RunBackbone {
  bb: OpenedBackbone;
  preset: Preset;
  norm: NormLut;
}

const HINT = 'weights.json';

/** extract leaves the weights' path beside the cache, so that eval/predict find them without --weights. */
export async function writeWeightsHint(cacheDir: string, path: string, sha256: string): Promise<void> {
  await writeFile(join(cacheDir, HINT), JSON.stringify({ path, sha256 }, null, 1) + '\n').catch(() => {});
}

async function weightsFromHint(cacheDir: string | undefined, sha256: string): Promise<string | undefined> {
  if (!cacheDir) return undefined;
  try {
    const hint = JSON.parse(await readFile(join(cacheDir, HINT), 'utf8')) as { path?: unknown; sha256?: unknown };
    if (typeof hint.path === 'string' && hint.sha256 === sha256 && existsSync(hint.path)) return hint.path;
  } catch {
    // no hint: the default weights resolution applies
  }
  return undefined;
}

/**
 * `cacheDir` is the cache the head was trained from: without --weights, the weights recorded there
 * are used when they are still in place.
 */
export async function openRunBackbone(fp: Fingerprint | null, headDim: number, source: string, a: Partial<BackboneArgs>, cacheDir?: string): Promise<RunBackbone> {
  if (!fp) throw new UserError(`${source} records no cache fingerprint, so the backbone it was trained on is unknown; retrain it with viewprobe train`);
  const preset = getPreset(fp.preset, fp.preset === 'seed' ? {} : { size: fp.inputSize });
  if (preset.inputSize !== fp.inputSize || preset.transformVersion !== fp.transformVersion) {
    throw new UserError(`${source} was trained on preset ${fp.preset} v${fp.transformVersion} at ${fp.inputSize}px; this viewprobe has v${preset.transformVersion} at ${preset.inputSize}px: re-extract and retrain`);
  }
  const weights = a.weights ?? (await weightsFromHint(cacheDir, fp.weightsSha256));
  const bb = await openBackbone({ weights, backbone: fp.arch, engine: a.engine, device: a.device, threads: a.threads, features: fingerprintFeatures(fp) });
  try {
    if (bb.weightsSha256 !== fp.weightsSha256) {
      throw new UserError(`weights ${bb.weightsPath} (sha256 ${bb.weightsSha256.slice(0, 12)}…) are not the ones ${source} was trained on (sha256 ${fp.weightsSha256.slice(0, 12)}…); pass those with --weights FILE`);
    }
    if (bb.dim !== headDim || bb.arch !== fp.arch) {
      throw new UserError(`${source} expects ${fp.arch} features of dimension ${headDim}, the backbone gives ${bb.arch} ${bb.dim}-d`);
    }
  } catch (e) {
    await bb.engine.dispose();
    throw e;
  }
  return { bb, preset, norm: makeNormLut(bb.preprocess) };
}
