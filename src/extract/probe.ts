// The "probe" preset: the views measured best for a frozen backbone under a linear head (issue 10;
// the measurements are in the README, "Best accuracy"). Training views are RandomResizedCrop with a
// narrower scale range than ImageNet training's 8-100 % (a frozen net's features of a tiny crop are
// far from those of the whole dish it is tested on) plus a horizontal flip; the eval view is the
// standard Resize + CenterCrop; the test-time view is that eval view mirrored, whose logits eval and
// predict average with the clean view's.
import type { FeatureSpec } from '../feature-spec.js';
import { normalizeFlipInto, rrcPreset, type Preset } from './presets.js';

/** What `--preset probe` means unless --size, --pool or --layers say otherwise. */
export const PROBE_DEFAULTS: { size: number; scale: readonly [number, number]; features: FeatureSpec } = {
  size: 224,
  scale: [0.35, 1],
  features: { pool: ['avg'], layers: [4] },
};

/** Bump when the pixels of a probe view change. */
const PROBE_TRANSFORM_VERSION = 1;

export function probePreset(size = PROBE_DEFAULTS.size): Preset {
  const base = rrcPreset('probe', size, PROBE_DEFAULTS.scale, PROBE_TRANSFORM_VERSION);
  return {
    ...base,
    testViews: 1,
    renderTestView(evalImg, t, norm, out, offset) {
      if (t !== 0) throw new RangeError(`the probe preset has 1 test-time view, not view ${t}`);
      if (evalImg.width !== size || evalImg.height !== size) {
        throw new RangeError(`eval view must be ${size}x${size}, got ${evalImg.width}x${evalImg.height}`);
      }
      normalizeFlipInto(evalImg, true, norm, out, offset);
    },
    features: PROBE_DEFAULTS.features,
  };
}
