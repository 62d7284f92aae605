// Which pooled feature maps make up the feature vector the backbone hands out. The seed's is the
// global average pool of the last stage (layer4). Linear-probe protocols also use GeM pooling
// (generalised mean, Radenović et al.: (mean x^p)^(1/p), p = 3) and the concatenation of pooled
// features of several stages (DINOv2's linear eval concatenates layers). The feature vector is the
// concatenation, for each layer in order, of each pooling of that layer's output, in order.
import { UserError } from './errors.js';

/** 'avg', or 'gem<p>' (generalised mean with exponent p, e.g. 'gem3'). */
export type Pooling = string;

export interface FeatureSpec {
  /** Poolings applied to each layer, in order. */
  pool: Pooling[];
  /** ResNet stages (1..4) whose output is pooled, in order: [4] is the classic feature. */
  layers: number[];
}

export const DEFAULT_FEATURES: Readonly<FeatureSpec> = Object.freeze({ pool: ['avg'], layers: [4] });

/** GeM clamps its input to at least this before the power (as the reference implementations do). */
export const GEM_EPS = 1e-6;

const GEM_RE = /^gem(\d+(?:\.\d+)?)$/;

/** The exponent of a GeM pooling, undefined for 'avg'. */
export function gemExponent(pool: Pooling): number | undefined {
  const m = GEM_RE.exec(pool);
  return m ? Number(m[1]) : undefined;
}

function checkPool(p: string, label: string): Pooling {
  if (p === 'avg') return p;
  const e = gemExponent(p);
  if (e === undefined || !(e >= 1 && e <= 16)) throw new UserError(`${label}: unknown pooling "${p}" (expected avg, gem or gemP with 1 <= P <= 16, e.g. gem3)`);
  // One spelling per value, so equal settings give equal fingerprints.
  return `gem${e}`;
}

/** `--pool avg|gem|gem4|avg,gem`: 'gem' alone is GeM with p = 3. */
export function parsePool(text: string, label = '--pool'): Pooling[] {
  const parts = text.split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== '');
  if (parts.length === 0) throw new UserError(`${label}: name at least one pooling (avg, gem)`);
  const out = parts.map((p) => checkPool(p === 'gem' ? 'gem3' : p, label));
  if (new Set(out).size !== out.length) throw new UserError(`${label}: "${text}" names a pooling twice`);
  return out;
}

/** `--layers 4|3,4`: the stages whose pooled outputs are concatenated (layer 4 is the last). */
export function parseLayers(text: string, label = '--layers'): number[] {
  const parts = text.split(',').map((s) => s.trim().replace(/^layer/i, '')).filter((s) => s !== '');
  if (parts.length === 0) throw new UserError(`${label}: name at least one layer (1..4)`);
  const out = parts.map((p) => {
    const n = Number(p);
    if (!Number.isInteger(n) || n < 1 || n > 4) throw new UserError(`${label}: "${p}" is not a ResNet stage (1, 2, 3 or 4)`);
    return n;
  });
  if (new Set(out).size !== out.length) throw new UserError(`${label}: "${text}" names a layer twice`);
  return out;
}

export function isDefaultFeatures(f: FeatureSpec): boolean {
  return f.pool.length === 1 && f.pool[0] === 'avg' && f.layers.length === 1 && f.layers[0] === 4;
}

/** One pooled block of the feature vector. */
export interface FeatureTap {
  layer: number;
  pool: Pooling;
  channels: number;
  /** First float of this block in the feature vector. */
  offset: number;
}

/** The blocks of the feature vector, in order, for a net whose stage s ends with `stageChannels[s-1]` channels. */
export function featureTaps(spec: FeatureSpec, stageChannels: readonly number[]): FeatureTap[] {
  const taps: FeatureTap[] = [];
  let offset = 0;
  for (const layer of spec.layers) {
    const channels = stageChannels[layer - 1];
    if (channels === undefined) throw new UserError(`the backbone has no layer ${layer}`);
    for (const pool of spec.pool) {
      taps.push({ layer, pool, channels, offset });
      offset += channels;
    }
  }
  return taps;
}

export function featureDim(spec: FeatureSpec, stageChannels: readonly number[]): number {
  return featureTaps(spec, stageChannels).reduce((s, t) => s + t.channels, 0);
}

/** e.g. "avg of layer4", "gem3+avg of layer4 and layer3". */
export function describeFeatures(f: FeatureSpec): string {
  return `${f.pool.join('+')} of ${f.layers.map((l) => `layer${l}`).join(' and ')}`;
}

/** Output channels of each stage (layer1..layer4), from the blocks' names and their last convolutions. */
export function stageChannels(blocks: readonly { name: string; convs: readonly { outC: number }[] }[]): number[] {
  const out: number[] = [];
  for (const b of blocks) {
    const m = /^layer(\d+)\./.exec(b.name);
    if (m) out[Number(m[1]) - 1] = b.convs[b.convs.length - 1]!.outC;
  }
  return out;
}

/** The name of the last block of each stage: its output is that stage's feature map. */
export function stageEnds(blocks: readonly { name: string }[]): Map<number, string> {
  const ends = new Map<number, string>();
  for (const b of blocks) {
    const m = /^layer(\d+)\./.exec(b.name);
    if (m) ends.set(Number(m[1]), b.name);
  }
  return ends;
}
