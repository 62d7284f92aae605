// The pooled-feature options of extract and embed (--pool, --layers), resolved against a preset's
// defaults. They change every feature, so they are part of the cache fingerprint (absent = avg of layer4).
import { DEFAULT_FEATURES, parseLayers, parsePool, type FeatureSpec } from '../feature-spec.js';
import type { Preset } from '../image/presets.js';

export function featureSpecFor(preset: Preset, a: { pool?: string; layers?: string }): FeatureSpec {
  const base = preset.features ?? DEFAULT_FEATURES;
  return {
    pool: a.pool !== undefined ? parsePool(a.pool) : [...base.pool],
    layers: a.layers !== undefined ? parseLayers(a.layers) : [...base.layers],
  };
}
