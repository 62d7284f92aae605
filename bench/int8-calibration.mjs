#!/usr/bin/env node
// How the int8 calibration method was chosen (src/extract/calibrate.ts), on food101-10 train only, so
// that val took no part: cosine of int8 to fp32 clean-view features (seed preset, 244) of the training
// images outside the calibration sample, and the seed recipe's clean-view head trained on 3/4 of train
// and scored on the other 1/4 (every 4th image by content hash), head seeds 0-4. With VAL=1 it also
// reports the val set. Features are kept under --out (default a temp folder) so reruns only add methods.
// Prints one JSON line per method.
//
//   npm run build && node bench/int8-calibration.mjs resnet50-keras minmax,mse,percentile:99.99,percentile:99.999 [32] [--out DIR]
import { readFileSync, writeFileSync, existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
const D = fileURLToPath(new URL('../dist/', import.meta.url));
const { sharedPath } = await import(D + 'shared.js');
const { readSafetensors } = await import(D + 'backbone/safetensors.js');
const { buildResNet } = await import(D + 'backbone/spec.js');
const { createOnnxEngine } = await import(D + 'backbone/onnx.js');
const Q = await import(D + 'backbone/quantize.js');
const { computeCalibration } = await import(D + 'extract/calibrate.js');
const { decodeImage, readImageFile } = await import(D + 'image/decode.js');
const { hashBytes } = await import(D + 'data/hash.js');
const { getPreset } = await import(D + 'image/presets.js');
const { makeNormLut } = await import(D + 'image/normalize.js');
const { loadDataset } = await import(D + 'data/dataset.js');
const { trainHead } = await import(D + 'train/loop.js');

const model = process.argv[2] ?? 'resnet50-keras';
const methods = (process.argv[3] ?? 'minmax').split(',');
const count = Number(process.argv[4] && !process.argv[4].startsWith('--') ? process.argv[4] : 32);
const wfile = sharedPath('weights', `${model}.safetensors`);
const net = buildResNet(await readSafetensors(wfile));
const sha = hashBytes(readFileSync(wfile));
const preset = getPreset('seed');
const norm = makeNormLut(net.variant.preprocess);
const S = preset.inputSize, per = S * S * 3, dim = net.dim;
const train = await loadDataset(sharedPath('data/food101-10/train.txt'));
const val = await loadDataset(sharedPath('data/food101-10/val.txt'));
const items = [...train.items.map((i) => ({ ...i, split: 'train' })), ...val.items.map((i) => ({ ...i, split: 'val' }))];
for (const it of items) it.hash = hashBytes(readImageFile(it.path));
const imgs = [];
for (const it of items) imgs.push(preset.evalImage(await decodeImage(it.path)));
const N = items.length, B = 8;
async function features(engine) {
  const out = new Float32Array(N * dim);
  const bufs = Array.from({ length: engine.parallel }, () => new Float32Array(B * per));
  let next = 0;
  const t0 = performance.now();
  await Promise.all(bufs.map(async (buf) => {
    while (next < N) {
      const s = next; next += B;
      const n = Math.min(B, N - s);
      for (let i = 0; i < n; i++) preset.renderEval(imgs[s + i], norm, buf, i * per);
      const f = await engine.embed(buf.subarray(0, n * per), n, S, S);
      out.set(f, s * dim);
    }
  }));
  return { out, vps: N / ((performance.now() - t0) / 1000) };
}
const outAt = process.argv.indexOf('--out');
const dir = outAt > 0 ? `${process.argv[outAt + 1]}/feats-${model}` : mkdtempSync(`${tmpdir()}/vp-int8-cal-`);
(await import('node:fs')).mkdirSync(dir, { recursive: true });
async function get(name, mk) {
  const f = `${dir}/${name}.f32`;
  if (existsSync(f)) { const b = readFileSync(f); return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4); }
  const e = await mk();
  const { out, vps } = await features(e);
  await e.dispose();
  writeFileSync(f, out);
  console.error(`${name}: ${vps.toFixed(1)} views/s`);
  return out;
}
const fp = await get('fp32', () => createOnnxEngine(net, { device: 'cpu', threads: 2 }));
const cos = (A, i) => { let ab = 0, aa = 0, bb = 0; for (let j = i * dim; j < (i + 1) * dim; j++) { ab += A[j] * fp[j]; aa += A[j] ** 2; bb += fp[j] ** 2; } return ab / Math.sqrt(aa * bb); };
const stats = (xs) => { const s = [...xs].sort((a, b) => a - b); return { median: +s[s.length >> 1].toFixed(5), min: +s[0].toFixed(5), p05: +s[Math.floor(s.length * 0.05)].toFixed(5) }; };
// holdout: train sorted by hash, every 4th
const trainIdx = items.map((it, i) => i).filter((i) => items[i].split === 'train').sort((a, b) => items[a].hash < items[b].hash ? -1 : 1);
const hold = trainIdx.filter((_, k) => k % 4 === 0), fit = trainIdx.filter((_, k) => k % 4 !== 0);
const valIdx = items.map((it, i) => i).filter((i) => items[i].split === 'val');
const split = (F, idx, name) => {
  const clean = new Float32Array(idx.length * dim);
  idx.forEach((i, r) => clean.set(F.subarray(i * dim, (i + 1) * dim), r * dim));
  return { split: name, dim, paths: idx.map((i) => items[i].path), hashes: idx.map((i) => items[i].hash), labels: Int32Array.from(idx.map((i) => items[i].label)), views: 0, aug: new Float32Array(0), clean };
};
async function heads(F, trainI, evalI) {
  const accs = [];
  for (let seed = 0; seed < 5; seed++) {
    const r = await trainHead(split(F, trainI, 'train'), split(F, evalI, 'val'), train.classes, { views: 'clean', seed });
    accs.push(r.best.valAcc);
  }
  return accs;
}
const fpHold = await heads(fp, fit, hold);
const fpVal = process.env.VAL ? await heads(fp, trainIdx, valIdx) : undefined;
const mean = (a) => a.reduce((s, x) => s + x, 0) / a.length;
const results = [];
for (const m of methods) {
  let calib;
  const F = await get(`int8-${m}-${count}`, async () => {
    calib = await computeCalibration(net, train.items, { preset, norm, weightsSha256: sha, method: m, count, quiet: true });
    writeFileSync(`${dir}/calib-${m}-${count}.json`, JSON.stringify(calib));
    return createOnnxEngine(net, { device: 'cpu', threads: 2, model: Q.buildQdqModel(net, calib.ranges) });
  });
  calib ??= JSON.parse(readFileSync(`${dir}/calib-${m}-${count}.json`, 'utf8'));
  const inCalib = new Set(calib.images);
  const selCos = trainIdx.filter((i) => !inCalib.has(items[i].hash)).map((i) => cos(F, i));
  const hAcc = await heads(F, fit, hold);
  const r = { method: m, count, cosTrainHeldOut: stats(selCos), holdoutAcc: { int8: hAcc, fp32: fpHold, meanDelta: +(100 * (mean(hAcc) - mean(fpHold))).toFixed(2) } };
  if (process.env.VAL) { const vAcc = await heads(F, trainIdx, valIdx); r.cosVal = stats(valIdx.map((i) => cos(F, i))); r.valAcc = { int8: vAcc, fp32: fpVal, meanDelta: +(100 * (mean(vAcc) - mean(fpVal))).toFixed(2), maxAbsDelta: +(100 * Math.max(...vAcc.map((a, k) => Math.abs(a - fpVal[k])))).toFixed(2) }; }
  results.push(r);
  console.log(JSON.stringify(r));
}
