// The test-time views of model.json's `testTimeViews`, made in the page: which views to run, each
// made from the eval view's uint8 pixels, and how their logits become probabilities (averaged, then
// softmax), as `viewprobe predict` and `eval` do. Plain ES module without DOM or onnxruntime, so that
// Node tests can import it too (test/export/browser-views.test.ts).

/** The model.json version this page reads (src/export/sidecar.ts MODEL_VERSION; the tests check they agree). */
export const MODEL_VERSION = 2;

/**
 * The ops of model.json's `testTimeViews.extra` this page can make, each from the eval view's uint8
 * NHWC pixels (src/image/presets.ts TestViewSpec): `flip` reverses the NHWC axis `axis` (2: width).
 * Each takes the view's entry and returns its name and maker, or null for a variant it does not make
 * (flip of another axis). An op or axis not here is reported as unknown rather than guessed at, so a
 * new view shows up in the page (and in the tests that cross-check every preset's views) instead of
 * being dropped; the page never reads the entry's `what` words to decide.
 */
export const KNOWN_OPS = {
  flip: (view) => (view.axis === 2 ? { name: 'mirrored left-right', make: mirrorWidth } : null),
};

export const EVAL_VIEW = 'eval view';

/** The eval view (uint8 RGB, NHWC, size x size) mirrored left-right: column x becomes size - 1 - x. */
export function mirrorWidth(rgb, size) {
  const out = new Uint8Array(rgb.length);
  const row = size * 3;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const from = y * row + x * 3;
      const to = y * row + (size - 1 - x) * 3;
      out[to] = rgb[from];
      out[to + 1] = rgb[from + 1];
      out[to + 2] = rgb[from + 2];
    }
  }
  return out;
}

/**
 * What the page runs per photo, from model.json's `testTimeViews` (null: the eval view alone).
 * `names`: the views run, eval view first; `problems`: why this page cannot make the views asked for,
 * one reason each (then only the eval view runs, an approximation of predict's result that the page
 * must say it shows); `wanted`: the views model.json asks for.
 */
export function viewPlan(testTimeViews) {
  const plan = { names: [EVAL_VIEW], makers: [], problems: [], wanted: 1 };
  if (testTimeViews === null || testTimeViews === undefined) return plan;
  const extra = Array.isArray(testTimeViews.extra) ? testTimeViews.extra : [];
  plan.wanted = Number.isInteger(testTimeViews.views) ? testTimeViews.views : 1 + extra.length;
  if (plan.wanted !== 1 + extra.length) {
    plan.problems.push(`it says views: ${JSON.stringify(testTimeViews.views)} but describes ${extra.length} extra view${extra.length === 1 ? '' : 's'}`);
    return plan;
  }
  const known = extra.map((view) => {
    const op = view !== null && typeof view === 'object' && Object.hasOwn(KNOWN_OPS, view.op) ? KNOWN_OPS[view.op] : undefined;
    return op ? op(view) : null;
  });
  extra.forEach((view, i) => { if (!known[i]) plan.problems.push(`this page does not know how to make ${describeView(view)}`); });
  if (plan.problems.length > 0) return plan;
  for (const v of known) {
    plan.names.push(v.name);
    plan.makers.push(v.make);
  }
  return plan;
}

/** An extra view as the page's warning names it: its op and axis, and model.json's words for it. */
function describeView(view) {
  if (view === null || typeof view !== 'object') return `the view ${JSON.stringify(view)}`;
  const what = typeof view.what === 'string' ? ` (“${view.what}”)` : '';
  return `the view ${JSON.stringify({ op: view.op, axis: view.axis })}${what}`;
}

/** The plan's views of one photo, as one uint8 batch [views, size, size, 3] (eval view first). */
export function viewBatch(plan, rgb, size) {
  const per = size * size * 3;
  if (rgb.length !== per) throw new Error(`eval view has ${rgb.length} bytes, not ${size}x${size}x3`);
  const batch = new Uint8Array(per * plan.names.length);
  batch.set(rgb, 0);
  plan.makers.forEach((make, i) => batch.set(make(rgb, size), (i + 1) * per));
  return batch;
}

/** The mean of the `views` logits rows of C classes, then the softmax (in float64): one row of C probabilities. */
export function averagedProbabilities(logits, views, classes) {
  if (logits.length !== views * classes) throw new Error(`logits has ${logits.length} values, not ${views} views x ${classes} classes`);
  const mean = new Float64Array(classes);
  for (let v = 0; v < views; v++) for (let c = 0; c < classes; c++) mean[c] += logits[v * classes + c];
  let max = -Infinity;
  for (let c = 0; c < classes; c++) max = Math.max(max, (mean[c] /= views));
  let sum = 0;
  for (let c = 0; c < classes; c++) sum += (mean[c] = Math.exp(mean[c] - max));
  return Float32Array.from(mean, (e) => e / sum);
}
