// A viewprobe classifier in the browser: model.json says how to turn a photo into the model's input
// (resize, crop, uint8 RGB), onnxruntime-web (WebAssembly) runs model.onnx, the page shows the top-5.
// Nothing leaves the page: the photos are read locally and no network is used beyond this site.
// When model.json has `testTimeViews` (probe-preset runs: the eval view and its mirror), the page
// runs those views in one batch and averages their logits, as `viewprobe predict` does (views.js).
//
// ?model=URL names the model.json (default: model/model.json); the .onnx file is the one it names,
// next to it; ?threads=N sets onnxruntime's threads (default: up to 4). ort/ must hold
// onnxruntime-web's dist files (serve.mjs serves them from node_modules).
import * as ort from './ort/ort.wasm.min.mjs';
import { MODEL_VERSION, averagedProbabilities, viewBatch, viewPlan } from './views.js';

const $ = (id) => document.getElementById(id);
const status = $('model-status');
const drop = $('drop');
const input = $('file');
const results = $('results');

ort.env.wasm.wasmPaths = new URL('./ort/', import.meta.url).href;
// Threads need SharedArrayBuffer, which browsers give only to cross-origin-isolated pages (serve.mjs sends the headers).
// ?threads=N asks for N (still 1 without isolation).
const params = new URLSearchParams(location.search);
const wantThreads = Number(params.get('threads')) || Math.min(4, navigator.hardwareConcurrency || 1);
ort.env.wasm.numThreads = globalThis.crossOriginIsolated ? wantThreads : 1;

const modelJsonUrl = new URL(params.get('model') ?? 'model/model.json', location.href);

/** Python's round(): halves to even (the crop offsets of torchvision's CenterCrop). */
function pyRound(x) {
  const f = Math.floor(x);
  const d = x - f;
  return d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
}

/** The resized size model.json asks for. */
function resizedSize(spec, w, h) {
  if (spec.kind === 'exact') return [spec.width, spec.height];
  if (spec.kind === 'shorter') {
    const long = Math.trunc((spec.size * Math.max(w, h)) / Math.min(w, h));
    return w <= h ? [spec.size, long] : [long, spec.size];
  }
  throw new Error(`model.json: unknown resize kind ${spec.kind}`);
}

/**
 * The photo as model input: uint8 RGB, NHWC, inputSize x inputSize. The browser decodes (EXIF
 * orientation applied) and resizes with the canvas's best filter, which is close to, not bit-equal
 * with, the Pillow bilinear that viewprobe uses: probabilities differ a little from `predict`'s.
 */
async function photoToInput(file, t) {
  const bitmap = await createImageBitmap(file, { imageOrientation: 'from-image', colorSpaceConversion: 'default' });
  const [w, h] = resizedSize(t.resize, bitmap.width, bitmap.height);
  const canvas = new OffscreenCanvas(w, h);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.fillStyle = '#000'; // alpha is flattened on black, as viewprobe's decoder does
  ctx.fillRect(0, 0, w, h);
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(bitmap, 0, 0, w, h);
  bitmap.close();
  const size = t.inputSize;
  const left = t.crop ? pyRound((w - size) / 2) : 0;
  const top = t.crop ? pyRound((h - size) / 2) : 0;
  if (w - left < size || h - top < size) throw new Error(`resized to ${w}x${h}, smaller than the ${size}x${size} input`);
  const rgba = ctx.getImageData(left, top, size, size).data;
  const rgb = new Uint8Array(size * size * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
    rgb[j] = rgba[i];
    rgb[j + 1] = rgba[i + 1];
    rgb[j + 2] = rgba[i + 2];
  }
  return rgb;
}

function topK(probs, classes, k) {
  return Array.from(probs.keys()).sort((a, b) => probs[b] - probs[a] || a - b).slice(0, k)
    .map((i) => ({ label: classes[i], prob: probs[i] }));
}

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'dataset') Object.assign(e.dataset, v);
    else e[k] = v;
  }
  e.append(...children);
  return e;
}

/** Which views this photo's probabilities come from, in words. */
function viewsLine(plan) {
  if (plan.problems.length > 0) return `Eval view only: not the ${plan.wanted}-view average that viewprobe predict gives (see the note above).`;
  return plan.names.length === 1 ? 'From the eval view.' : `Logits averaged over ${plan.names.length} views: ${plan.names.join(' + ')}.`;
}

async function classify(model, file) {
  const card = el('article', { className: 'result', dataset: { file: file.name, state: 'busy' } });
  const thumb = el('img', { alt: file.name, src: URL.createObjectURL(file) });
  const body = el('div', {}, el('h2', { textContent: file.name }));
  card.append(thumb, body);
  results.prepend(card);
  try {
    const t0 = performance.now();
    const pixels = await photoToInput(file, model.meta.transform);
    const t1 = performance.now();
    const s = model.meta.transform.inputSize;
    const { plan } = model;
    const n = plan.names.length;
    const out = await model.session.run({ [model.meta.input.name]: new ort.Tensor('uint8', viewBatch(plan, pixels, s), [n, s, s, 3]) });
    // One view: the model's own softmax. Several: predict's way, the mean of their logits, then softmax.
    const probs = n === 1 ? out.probabilities.data : averagedProbabilities(out.logits.data, n, model.meta.classes.length);
    const t2 = performance.now();
    const top = topK(probs, model.meta.classes, 5);
    body.append(el('ol', { className: 'top5' }, ...top.map((t) => el('li', { dataset: { label: t.label, prob: String(t.prob) } },
      el('span', { className: 'label', textContent: t.label }),
      el('meter', { min: 0, max: 1, value: t.prob }),
      el('span', { className: 'prob', textContent: `${(t.prob * 100).toFixed(1)}%` })))));
    const ms = t2 - t0;
    body.append(el('p', { className: plan.problems.length > 0 ? 'views warning' : 'views', textContent: viewsLine(plan) }));
    body.append(el('p', { className: 'time', textContent: `${ms.toFixed(0)} ms for this photo (decode + resize ${(t1 - t0).toFixed(0)} ms, model ${(t2 - t1).toFixed(0)} ms)` }));
    Object.assign(card.dataset, { state: 'done', top1: top[0].label, top1Prob: String(top[0].prob), ms: ms.toFixed(1), modelMs: (t2 - t1).toFixed(1),
      views: JSON.stringify(plan.names), probs: JSON.stringify(Array.from(probs)) });
  } catch (e) {
    body.append(el('p', { className: 'error', textContent: `Could not classify this file: ${e.message ?? e}` }));
    card.dataset.state = 'error';
  }
}

async function loadModel() {
  const res = await fetch(modelJsonUrl);
  if (!res.ok) throw new Error(`${modelJsonUrl.pathname}: HTTP ${res.status} (export a model with viewprobe export --out …/model.onnx)`);
  const meta = await res.json();
  if (meta.format !== 'viewprobe-model') throw new Error(`${modelJsonUrl.pathname} is not a viewprobe model.json`);
  if (meta.version !== MODEL_VERSION) throw new Error(`${modelJsonUrl.pathname} is model.json version ${JSON.stringify(meta.version)}; this page reads version ${MODEL_VERSION} (export the run again with this viewprobe)`);
  const onnxUrl = new URL(meta.model.file, modelJsonUrl);
  const bytes = new Uint8Array(await (await fetch(onnxUrl)).arrayBuffer());
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  return { meta, session, plan: viewPlan(meta.testTimeViews) };
}

async function main() {
  let model;
  try {
    model = await loadModel();
  } catch (e) {
    status.dataset.state = 'error';
    status.textContent = `Could not load the model: ${e.message ?? e}`;
    return;
  }
  const { meta } = model;
  const acc = meta.accuracy?.valAcc;
  status.textContent = `${meta.backbone.arch} + linear head, ${meta.classes.length} classes` +
    (typeof acc === 'number' ? `, ${(acc * 100).toFixed(1)}% on its ${meta.accuracy.images ?? ''} val images` : '') +
    ` · onnxruntime-web ${ort.env.versions?.web ?? ''}, WebAssembly, ${ort.env.wasm.numThreads} thread${ort.env.wasm.numThreads === 1 ? '' : 's'}`;
  status.dataset.state = 'ready';
  drop.setAttribute('aria-disabled', 'false');
  const { plan } = model;
  const note = $('note');
  if (plan.problems.length > 0) {
    note.dataset.state = 'warning';
    note.textContent = `model.json asks for ${plan.wanted} test-time views per photo, as viewprobe predict and eval average them, ` +
      `but ${plan.problems.join('; and ')}. This page shows the eval view's probabilities alone, an approximation of predict's.`;
  } else if (plan.names.length > 1) {
    note.dataset.state = 'views';
    note.textContent = `As viewprobe predict does for this model, each photo runs as ${plan.names.length} views in one batch ` +
      `(${plan.names.join(', ')}), whose logits are averaged before the softmax.`;
  }

  // One photo at a time, in order: the times shown are per photo, not shared between photos.
  let queue = Promise.resolve();
  let pending = 0;
  const handle = (files) => {
    for (const f of files) {
      if (!f.type.startsWith('image/') && f.type !== '') continue;
      pending++;
      results.dataset.busy = 'true';
      queue = queue.then(() => classify(model, f)).finally(() => { if (--pending === 0) results.dataset.busy = 'false'; });
    }
  };
  input.addEventListener('change', () => { handle([...input.files]); input.value = ''; });
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    handle([...e.dataTransfer.files]);
  });
}

main();
