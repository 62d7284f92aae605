// The browser page's test-time views (examples/browser/views.js) without a browser: it makes every
// extra view a preset's model.json describes, from the view's op and axis alone (so a new view in
// presets.ts fails here, not silently in the page; its words may change freely), its mirror is the
// probe preset's own test view pixel for pixel, it averages logits before the softmax, and it reports
// what it cannot make instead of dropping it.
import { describe, expect, it } from 'vitest';
import { MODEL_VERSION, testTimeViewsDoc } from '../../src/export/sidecar.js';
import { normalizeInto } from '../../src/image/augment.js';
import { IMAGENET_PREPROCESS, makeNormLut } from '../../src/image/normalize.js';
import { PRESET_NAMES, getPreset } from '../../src/image/presets.js';

interface Plan { names: string[]; problems: string[]; wanted: number }
/** examples/browser/views.js (plain JS: the page has no build step). */
interface ViewsModule {
  MODEL_VERSION: number;
  EVAL_VIEW: string;
  mirrorWidth(rgb: Uint8Array, size: number): Uint8Array;
  viewPlan(ttv: unknown): Plan;
  viewBatch(plan: Plan, rgb: Uint8Array, size: number): Uint8Array;
  averagedProbabilities(logits: ArrayLike<number>, views: number, classes: number): Float32Array;
}
const views = await import(new URL('../../examples/browser/views.js', import.meta.url).href) as ViewsModule;

describe('examples/browser/views.js', () => {
  it('makes every test-time view a preset\'s model.json describes (none: the eval view alone)', () => {
    for (const name of PRESET_NAMES) {
      const preset = getPreset(name);
      const plan = views.viewPlan(testTimeViewsDoc(preset));
      expect(plan.problems, name).toEqual([]);
      expect(plan.names, name).toHaveLength(1 + preset.testViews);
      expect(plan.names[0]).toBe(views.EVAL_VIEW);
    }
    expect(views.viewPlan(testTimeViewsDoc(getPreset('probe'))).names).toEqual([views.EVAL_VIEW, 'mirrored left-right']);
    // the words are for people: other words, same view
    const reworded = { views: 2, extra: [{ op: 'flip', axis: 2, what: 'mirror image' }], how: '' };
    expect(views.viewPlan(reworded)).toMatchObject({ names: [views.EVAL_VIEW, 'mirrored left-right'], problems: [] });
  });

  it('reads the model.json version export writes', () => {
    expect(views.MODEL_VERSION).toBe(MODEL_VERSION);
  });

  it('mirrors a hand-made 3x3 image column by column', () => {
    // pixel (y, x) = [10y + x, 100 + 10y + x, 200 + x]
    const img = (flip: boolean) => Uint8Array.from({ length: 27 }, (_, i) => {
      const c = i % 3, x0 = Math.floor(i / 3) % 3, y = Math.floor(i / 9);
      const x = flip ? 2 - x0 : x0;
      return [10 * y + x, 100 + 10 * y + x, 200 + x][c]!;
    });
    expect(Array.from(views.mirrorWidth(img(false), 3))).toEqual(Array.from(img(true)));
  });

  it('its mirror, normalised, is the probe preset\'s own test view bit for bit (odd and even sizes)', () => {
    const norm = makeNormLut(IMAGENET_PREPROCESS);
    for (const size of [64, 65]) {
      const preset = getPreset('probe', { size });
      let seed = size;
      const data = Uint8Array.from({ length: size * size * 3 }, () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24);
      const evalImg = { data, width: size, height: size };
      const want = new Float32Array(size * size * 3);
      preset.renderTestView(evalImg, 0, norm, want, 0);
      const plan = views.viewPlan(testTimeViewsDoc(preset));
      const batch = views.viewBatch(plan, data, size);
      expect(batch.length).toBe(2 * data.length);
      expect(Array.from(batch.subarray(0, data.length))).toEqual(Array.from(data));
      const got = new Float32Array(size * size * 3);
      normalizeInto({ data: batch.slice(data.length), width: size, height: size }, norm, got, 0);
      expect(got).toEqual(want);
    }
  });

  it('averages the logits, then takes the softmax (not the mean of the views\' probabilities)', () => {
    // mean logits [0, ln 2, 0] -> softmax [1/4, 1/2, 1/4]; the mean of the rows' softmaxes would differ
    const l = [Math.log(2) * -1, Math.log(2), 1, Math.log(2), Math.log(2), -1];
    const p = views.averagedProbabilities(Float32Array.from(l), 2, 3);
    [0.25, 0.5, 0.25].forEach((want, i) => expect(p[i]).toBeCloseTo(want, 6));
    expect(() => views.averagedProbabilities(new Float32Array(5), 2, 3)).toThrow(/5 values, not 2 views x 3 classes/);
  });

  it('says what it cannot make, and then runs the eval view alone', () => {
    const upsideDown = { op: 'flip', axis: 1, what: 'the eval view turned upside down' };
    const unknown = views.viewPlan({ views: 2, extra: [upsideDown], how: '' });
    expect(unknown.names).toEqual([views.EVAL_VIEW]);
    expect(unknown.wanted).toBe(2);
    expect(unknown.problems).toEqual(['this page does not know how to make the view {"op":"flip","axis":1} (“the eval view turned upside down”)']);
    // ops it has never heard of (one an Object.prototype name), a flip without an axis, and a
    // version-1 style view in words only, even the very words of the mirror
    const mirror = testTimeViewsDoc(getPreset('probe'))!.extra[0]!;
    const odd = views.viewPlan({ views: 5, extra: [{ op: 'rotate', axis: 2, what: 'turned' }, { op: 'constructor', axis: 2 }, { op: 'flip' }, mirror.what], how: '' });
    expect(odd.names).toEqual([views.EVAL_VIEW]);
    expect(odd.problems).toEqual([
      'this page does not know how to make the view {"op":"rotate","axis":2} (“turned”)',
      'this page does not know how to make the view {"op":"constructor","axis":2}',
      'this page does not know how to make the view {"op":"flip"}',
      `this page does not know how to make the view ${JSON.stringify(mirror.what)}`,
    ]);
    const inconsistent = views.viewPlan({ views: 3, extra: [mirror], how: '' });
    expect(inconsistent.names).toEqual([views.EVAL_VIEW]);
    expect(inconsistent.problems).toEqual(['it says views: 3 but describes 1 extra view']);
    expect(views.viewPlan(null)).toMatchObject({ names: [views.EVAL_VIEW], problems: [], wanted: 1 });
  });
});
