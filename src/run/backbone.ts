// eval --data and predict run new images through the backbone a head was trained on. They must get
// the same features the cache holds: same architecture, same weights (by sha256), same preset.
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Fingerprint } from '../cache/types.js';
import { UserError } from '../errors.js';
import { loadBackboneNet, openBackbone, type BackboneOptions, type LoadedNet, type OpenedBackbone } from '../backbone/index.js';
import { makeNormLut, type NormLut } from '../image/normalize.js';
import { getPreset, type Preset } from '../image/presets.js';

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

/** The weights recorded beside the cache when they are the run's; `missing` when that file is gone. */
async function weightsFromHint(cacheDir: string | undefined, sha256: string): Promise<{ path?: string; missing?: string }> {
  if (!cacheDir) return {};
  try {
    const hint = JSON.parse(await readFile(join(cacheDir, HINT), 'utf8')) as { path?: unknown; sha256?: unknown };
    if (typeof hint.path === 'string' && hint.sha256 === sha256) return existsSync(hint.path) ? { path: hint.path } : { missing: hint.path };
  } catch {
    // no hint: the default weights resolution applies
  }
  return {};
}

function runPreset(fp: Fingerprint | null, source: string): { fp: Fingerprint; preset: Preset } {
  if (!fp) throw new UserError(`${source} records no cache fingerprint, so the backbone it was trained on is unknown; retrain it with viewprobe train`);
  const preset = getPreset(fp.preset);
  if (preset.inputSize !== fp.inputSize || preset.transformVersion !== fp.transformVersion) {
    throw new UserError(`${source} was trained on preset ${fp.preset} v${fp.transformVersion} at ${fp.inputSize}px; this viewprobe has v${preset.transformVersion} at ${preset.inputSize}px: re-extract and retrain`);
  }
  return { fp, preset };
}

/**
 * Finds the run's weights (--weights, else the file recorded beside its cache, else the default
 * resolution), loads them with `load` and checks them against the run. When the recorded file is
 * gone, any failure says so.
 */
async function runWeights<T extends { weightsPath: string; weightsSha256: string; arch: string; dim: number }>(
  fp: Fingerprint, headDim: number, source: string, a: { weights?: string }, cacheDir: string | undefined,
  load: (weights: string | undefined) => Promise<T>, dispose: (t: T) => Promise<void>,
): Promise<T> {
  const hint = a.weights === undefined ? await weightsFromHint(cacheDir, fp.weightsSha256) : {};
  const gone = hint.missing !== undefined
    ? `its backbone weights ${hint.missing} (sha256 ${fp.weightsSha256.slice(0, 12)}…, recorded in ${join(cacheDir!, HINT)}) are missing`
    : undefined;
  let got: T;
  try {
    got = await load(a.weights ?? hint.path);
  } catch (e) {
    if (gone && e instanceof UserError) throw new UserError(`${source}: ${gone}; put them back or pass --weights FILE (${e.message})`);
    throw e;
  }
  try {
    if (got.weightsSha256 !== fp.weightsSha256) {
      throw new UserError(`weights ${got.weightsPath} (sha256 ${got.weightsSha256.slice(0, 12)}…) are not the ones ${source} was trained on (sha256 ${fp.weightsSha256.slice(0, 12)}…)` +
        `${gone ? ` and ${gone}` : ''}; pass those with --weights FILE`);
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
export async function openRunBackbone(fingerprint: Fingerprint | null, headDim: number, source: string, a: Pick<BackboneOptions, 'weights' | 'engine' | 'device' | 'threads'>, cacheDir?: string): Promise<RunBackbone> {
  const { fp, preset } = runPreset(fingerprint, source);
  const bb = await runWeights(fp, headDim, source, a, cacheDir,
    (weights) => openBackbone({ weights, backbone: fp.arch, engine: a.engine, device: a.device, threads: a.threads }),
    (bb) => bb.engine.dispose());
  return { bb, preset, norm: makeNormLut(bb.preprocess) };
}

export interface RunNet {
  loaded: LoadedNet;
  preset: Preset;
  fingerprint: Fingerprint;
}

/** The run's backbone as a folded network, without an engine, checked like openRunBackbone's (export builds its own graph). */
export async function loadRunNet(fingerprint: Fingerprint | null, headDim: number, source: string, a: { weights?: string }, cacheDir?: string): Promise<RunNet> {
  const { fp, preset } = runPreset(fingerprint, source);
  const loaded = await runWeights(fp, headDim, source, a, cacheDir,
    async (weights) => {
      const l = await loadBackboneNet({ weights, backbone: fp.arch });
      return { ...l, arch: l.net.variant.arch, dim: l.net.dim };
    },
    async () => {});
  return { loaded, preset, fingerprint: fp };
}
