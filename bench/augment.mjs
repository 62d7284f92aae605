// Per-image decode + prepare and per-view kernel times of the image side of `extract`.
// Run after `npx tsc -p tsconfig.json`:  node bench/augment.mjs [N_IMAGES] [VIEWS_PER_IMAGE]
// Prints one JSON object. Single-threaded figures (one decode at a time), so they are core-ms.
// Also the seed preset's Resize to 300x300 (best of 6 rounds).
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { decodeImage } from '../dist/image/decode.js';
import { getPreset } from '../dist/image/presets.js';
import { IMAGENET_PREPROCESS, makeNormLut } from '../dist/image/normalize.js';
import { sharedPath } from '../dist/shared.js';
import { resizeBilinear } from '../dist/image/resize.js';

const nImages = Number(process.argv[2] ?? 100);
const views = Number(process.argv[3] ?? 10);
const root = sharedPath('data/food101-10/train');
const files = readdirSync(root).sort().flatMap((c) => readdirSync(join(root, c)).sort().map((f) => join(root, c, f)));
const picked = files.filter((_, i) => i % Math.max(1, Math.floor(files.length / nImages)) === 0).slice(0, nImages);
const norm = makeNormLut(IMAGENET_PREPROCESS);
const ms = (t0) => performance.now() - t0;

const result = { images: picked.length, views_per_image: views, presets: {} };
const bytes = picked.map((p) => readFileSync(p));
for (const b of bytes.slice(0, 5)) await decodeImage(b); // warm up sharp and the JIT

for (const name of ['seed', 'standard', 'probe']) {
  const preset = getPreset(name);
  const batch = new Float32Array(32 * preset.inputSize ** 2 * 3);
  let tDecode = 0, tPrepare = 0, tEval = 0, tViews = 0, nViews = 0;
  for (let i = 0; i < bytes.length; i++) {
    let t0 = performance.now();
    const img = await decodeImage(bytes[i], { name: picked[i] });
    tDecode += ms(t0);
    t0 = performance.now();
    const prepared = preset.prepareTrain(img);
    tPrepare += ms(t0);
    t0 = performance.now();
    const ev = preset.evalImage(img);
    preset.renderEval(ev, norm, batch, 0);
    tEval += ms(t0);
    t0 = performance.now();
    for (let v = 0; v < views; v++) {
      preset.renderTrainView(prepared, preset.viewParams(0, `h${i}`, v), norm, batch, ((v % 31) + 1) * preset.inputSize ** 2 * 3);
    }
    tViews += ms(t0);
    nViews += views;
  }
  result.presets[name] = {
    decode_ms_per_image: +(tDecode / bytes.length).toFixed(3),
    prepare_train_ms_per_image: +(tPrepare / bytes.length).toFixed(3),
    eval_view_ms_per_image: +(tEval / bytes.length).toFixed(3),
    train_view_ms: +(tViews / nViews).toFixed(3),
    train_views_per_s_one_core: Math.round(nViews / (tViews / 1000)),
  };
}
const decoded = [];
for (const b of bytes) decoded.push(await decodeImage(b));
let best = Infinity;
for (let round = 0; round < 6; round++) {
  const t0 = performance.now();
  for (const img of decoded) resizeBilinear(img, 300, 300);
  best = Math.min(best, ms(t0) / decoded.length);
}
result.resize_300_ms_per_image = +best.toFixed(3);
console.log(JSON.stringify(result, null, 1));
