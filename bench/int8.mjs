#!/usr/bin/env node
// --precision int8 against fp32, in one run, on the same photos. Prints one JSON object:
//   - cpu: model and the flags that decide whether int8 pays (avx512_vnni / avx_vnni / amx: VNNI dot
//     products; without them onnxruntime's u8s8 kernels are no faster than fp32: issue 11 measured
//     1.02-1.03x on a Zen 1)
//   - engine: views/s of the onnx engine as the CLI builds it (one single-threaded session per thread,
//     batches of `--batch` in flight), fp32 and int8 alive side by side and timed in interleaved rounds
//     (fp32, int8, int8, fp32, fp32, int8, ...: a busy neighbour hits both alike, and the order within
//     a pair alternates), over the eval views of `--images` photos of food101-10 val at `--size`
//     (the standard preset: Resize + CenterCrop; 224 by default); each round's ratio, their median and
//     spread
//     (and the CPU time per view, all threads: steadier than wall time when neighbours load the machine)
//   - cosine of int8 to fp32 features of those photos (median, 5th percentile, min)
//   - with --pipeline: the extract pipeline as the CLI runs it (pipeline.ts into a fresh cache, seed
//     preset, K views + clean of `--pipeline-images` train photos), fp32 and int8 interleaved, the
//     engine alone on the same views after each run, and the CPU time per view of both (where the
//     time goes: the difference is decoding, drawing views and the cache)
//   - with --accuracy: the seed recipe's clean-view head on fp32 vs int8 features of food101-10 (the
//     CLI: extract --views 0 of train + val, train --views clean --seed S for each seed, compare):
//     best val accuracy per seed, the deltas and their mean
//
//   npm run build && node bench/int8.mjs [--weights FILE] [--images 96] [--rounds 6] [--size 224]
//        [--batch 8] [--threads 2] [--pipeline [--pipeline-images 48] [--views 2]]
//        [--accuracy [--seeds 0,1,2,3,4] [--keep DIR]]
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dist = (p) => join(here, '..', 'dist', p);
if (!existsSync(dist('cli/main.js'))) {
  console.error('bench: dist/ is missing; run `npm run build` first');
  process.exit(2);
}
const { sharedPath } = await import(dist('shared.js'));
const { readSafetensors } = await import(dist('backbone/safetensors.js'));
const { buildResNet } = await import(dist('backbone/spec.js'));
const { createOnnxEngine } = await import(dist('backbone/onnx.js'));
const { buildQdqModel } = await import(dist('backbone/quantize.js'));
const { computeCalibration } = await import(dist('extract/calibrate.js'));
const { decodeImage } = await import(dist('image/decode.js'));
const { getPreset } = await import(dist('image/presets.js'));
const { makeNormLut } = await import(dist('image/normalize.js'));
const { loadDataset } = await import(dist('data/dataset.js'));

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const flag = (name) => process.argv.includes(`--${name}`);
const weights = resolve(arg('weights', sharedPath('weights/resnet50-keras.safetensors')));
const nImages = Number(arg('images', 96));
const rounds = Number(arg('rounds', 6));
const size = Number(arg('size', 224));
const batch = Number(arg('batch', 8));
const threads = Number(arg('threads', 2));
const pipelineImages = Number(arg('pipeline-images', 48));
const views = Number(arg('views', 2));
const seeds = arg('seeds', '0,1,2,3,4').split(',').map(Number);
const data = sharedPath('data/food101-10');
for (const f of [weights, join(data, 'train.txt'), join(data, 'val.txt')]) {
  if (!existsSync(f)) {
    console.error(`bench: ${f} is missing (the bench needs ../shared)`);
    process.exit(2);
  }
}

const { cpuInfo } = await import('./machine.mjs');
const r = (x, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const spread = (xs) => ({ median: r(median(xs)), min: r(Math.min(...xs)), max: r(Math.max(...xs)) });
const load = () => loadavg().map((x) => r(x, 2));


function runChild(args) {
  return new Promise((res, rej) => {
    const c = spawn(process.execPath, [join(here, '..', 'bin', 'viewprobe.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    c.stdout.on('data', (d) => { stdout += d; });
    c.stderr.on('data', (d) => { stderr += d; });
    c.on('error', rej);
    c.on('close', (status) => (status === 0 ? res({ stdout, stderr }) : rej(new Error(`viewprobe ${args.join(' ')} exited ${status}:\n${stderr.slice(-3000)}`))));
  });
}

const out = { bench: 'int8 vs fp32', cpu: cpuInfo(), node: process.version, weights, threads, batch, load: { start: load() } };
const tmp = mkdtempSync(join(tmpdir(), 'vp-bench-int8-'));
try {
  // --- engine: fp32 and int8 side by side, interleaved rounds -------------------------------------
  const file = await readSafetensors(weights);
  const net = buildResNet(file);
  const sha = file.sha256;
  const preset = { ...getPreset('standard') };
  if (size !== preset.inputSize) throw new Error(`--size: the standard preset renders ${preset.inputSize}x${preset.inputSize}`);
  const norm = makeNormLut(net.variant.preprocess);
  const train = await loadDataset(join(data, 'train.txt'));
  const val = await loadDataset(join(data, 'val.txt'));
  const t0 = performance.now();
  const calib = await computeCalibration(net, train.items, { preset, norm, weightsSha256: sha, quiet: true });
  const calibSeconds = (performance.now() - t0) / 1000;
  const per = size * size * 3;
  const photos = val.items.slice(0, nImages);
  const engines = {
    fp32: await createOnnxEngine(net, { device: 'cpu', threads }),
    int8: await createOnnxEngine(net, { device: 'cpu', threads, model: buildQdqModel(net, calib.ranges) }),
  };
  // Shared memory, as the pipeline's batches: a plain typed array would be structured-cloned whole
  // (every view of it, not just the batch) on its way to a worker.
  const shared = (floats) => new Float32Array(new SharedArrayBuffer(floats * 4));
  const x = shared(photos.length * per);
  for (let i = 0; i < photos.length; i++) preset.renderEval(preset.evalImage(await decodeImage(photos[i].path)), norm, x, i * per);
  /** Views/s of one engine over n views packed in x (batches of `batch`, `parallel` in flight), and their features. */
  const timeViews = async (e, x, n, sz) => {
    const f = new Float32Array(n * net.dim);
    const px = sz * sz * 3;
    let next = 0;
    const t = performance.now();
    await Promise.all(Array.from({ length: e.parallel }, async () => {
      while (next < n) {
        const s = next;
        next += batch;
        const m = Math.min(batch, n - s);
        f.set(await e.embed(x.subarray(s * px, (s + m) * px), m, sz, sz), s * net.dim);
      }
    }));
    return { vps: n / ((performance.now() - t) / 1000), f };
  };
  const feats = {};
  const cpuMs = (c) => (c.user + c.system) / 1000;
  const pass = async (name) => {
    const c0 = process.cpuUsage();
    const { vps, f } = await timeViews(engines[name], x, photos.length, size);
    feats[name] = f;
    return { vps, cpuMsPerView: cpuMs(process.cpuUsage(c0)) / photos.length };
  };
  await pass('fp32');
  await pass('int8');
  const perRound = [];
  for (let k = 0; k < rounds; k++) {
    const order = k % 2 ? ['int8', 'fp32'] : ['fp32', 'int8'];
    const v = {};
    for (const name of order) v[name] = await pass(name);
    perRound.push({
      order: order.join(','), fp32: r(v.fp32.vps, 1), int8: r(v.int8.vps, 1), ratio: r(v.int8.vps / v.fp32.vps),
      cpu_ms_per_view_fp32: r(v.fp32.cpuMsPerView, 1), cpu_ms_per_view_int8: r(v.int8.cpuMsPerView, 1),
      cpu_ratio: r(v.fp32.cpuMsPerView / v.int8.cpuMsPerView),
    });
  }
  const cos = [];
  for (let i = 0; i < photos.length; i++) {
    let ab = 0, aa = 0, bb = 0;
    for (let j = i * net.dim; j < (i + 1) * net.dim; j++) {
      ab += feats.int8[j] * feats.fp32[j];
      aa += feats.int8[j] ** 2;
      bb += feats.fp32[j] ** 2;
    }
    cos.push(ab / Math.sqrt(aa * bb));
  }
  cos.sort((a, b) => a - b);
  out.engine = {
    arch: net.variant.arch, size, images: photos.length, rounds: perRound,
    fp32_views_per_s: spread(perRound.map((p) => p.fp32)), int8_views_per_s: spread(perRound.map((p) => p.int8)),
    ratio: spread(perRound.map((p) => p.ratio)), goal: 'ratio >= 1.6 on a CPU with VNNI',
    // CPU time (all threads) per view: steadier than wall time on a shared machine; fp32 / int8.
    cpu_ms_per_view_fp32: spread(perRound.map((p) => p.cpu_ms_per_view_fp32)), cpu_ms_per_view_int8: spread(perRound.map((p) => p.cpu_ms_per_view_int8)),
    cpu_ratio: spread(perRound.map((p) => p.cpu_ratio)),
  };
  await engines.fp32.dispose();
  await engines.int8.dispose();
  out.calibration = { method: calib.method, images: calib.images.length, seconds: r(calibSeconds, 1) };
  out.cosine = { images: cos.length, median: r(median(cos), 5), p05: r(cos[Math.floor(cos.length * 0.05)], 5), min: r(cos[0], 5), goal: 'median >= 0.995' };
  out.load.engine_done = load();

  // --- the whole extract, fp32 and int8 interleaved ------------------------------------------------
  if (flag('pipeline')) {
    const { extractFeatures } = await import(dist('extract/pipeline.js'));
    const { FeatureCache } = await import(dist('cache/store.js'));
    const { hashBytes } = await import(dist('data/hash.js'));
    const seed = getPreset('seed');
    // The calibration the CLI makes for the seed preset; made once, so the rounds time extraction only.
    const seedCalib = await computeCalibration(net, train.items, { preset: seed, norm, weightsSha256: sha, quiet: true });
    const pipeItems = train.items.slice(0, pipelineImages);
    // Engine-only on the very views the pipeline extracts (each photo's clean view and its K seed views).
    const seedPer = seed.inputSize * seed.inputSize * 3;
    const nViews = pipeItems.length * (views + 1);
    const sx = shared(nViews * seedPer);
    let v = 0;
    for (const it of pipeItems) {
      const bytes = readFileSync(it.path);
      const img = await decodeImage(bytes, { name: it.path });
      seed.renderEval(seed.evalImage(img), norm, sx, v++ * seedPer);
      const prepared = seed.prepareTrain(img);
      for (let k = 0; k < views; k++) seed.renderTrainView(prepared, seed.viewParams(0, hashBytes(bytes), k), norm, sx, v++ * seedPer);
    }
    const seedEngines = {
      fp32: await createOnnxEngine(net, { device: 'cpu', threads }),
      int8: await createOnnxEngine(net, { device: 'cpu', threads, model: buildQdqModel(net, seedCalib.ranges) }),
    };
    const engineOnly = async (name) => {
      const c0 = process.cpuUsage();
      const { vps } = await timeViews(seedEngines[name], sx, nViews, seed.inputSize);
      return { vps, cpuMsPerView: cpuMs(process.cpuUsage(c0)) / nViews };
    };
    // What `viewprobe extract` runs after loading the backbone (pipeline.ts), into a fresh cache.
    const pipeline = async (name, k) => {
      const dir = join(tmp, `cache-${k}-${name}`);
      const cache = await FeatureCache.open(dir);
      await cache.ensureFingerprint({ arch: net.variant.arch, weightsSha256: sha, preset: 'seed', inputSize: seed.inputSize, transformVersion: seed.transformVersion, seed: 0, dim: net.dim }, train.classes);
      const c0 = process.cpuUsage();
      const s = await extractFeatures([{ split: 'train', items: pipeItems, views, clean: true }], { engine: seedEngines[name], norm, preset: seed, cache, seed: 0, batch });
      const cpu = cpuMs(process.cpuUsage(c0));
      await cache.close();
      rmSync(dir, { recursive: true, force: true });
      if (s.extracted !== nViews) throw new Error(`extract did ${s.extracted} views, expected ${nViews}`);
      return { vps: s.viewsPerSecond, cpuMsPerView: cpu / nViews };
    };
    for (const name of ['fp32', 'int8']) await timeViews(seedEngines[name], sx, Math.min(nViews, 16), seed.inputSize);
    const runs = [];
    for (let k = 0; k < rounds; k++) {
      const order = k % 2 ? ['int8', 'fp32'] : ['fp32', 'int8'];
      const p = {}, e = {};
      for (const name of order) {
        p[name] = await pipeline(name, k);
        e[name] = await engineOnly(name);
      }
      runs.push({
        order: order.join(','), fp32: r(p.fp32.vps, 1), int8: r(p.int8.vps, 1), ratio: r(p.int8.vps / p.fp32.vps),
        engine_fp32: r(e.fp32.vps, 1), engine_int8: r(e.int8.vps, 1),
        fp32_pipeline_over_engine: r(p.fp32.vps / e.fp32.vps), int8_pipeline_over_engine: r(p.int8.vps / e.int8.vps),
        cpu_ms_per_view: { engine_fp32: r(e.fp32.cpuMsPerView, 1), pipeline_fp32: r(p.fp32.cpuMsPerView, 1), engine_int8: r(e.int8.cpuMsPerView, 1), pipeline_int8: r(p.int8.cpuMsPerView, 1) },
      });
    }
    for (const e of Object.values(seedEngines)) await e.dispose();
    const col = (f) => spread(runs.map(f));
    out.pipeline = {
      what: `the extract pipeline (pipeline.ts, as the CLI runs it after loading the backbone) into a fresh cache: ${pipeItems.length} train photos x (${views} seed views + clean) at 244, batch ${batch}; the engine alone on the same views after each run`,
      rounds: runs, fp32_views_per_s: col((x) => x.fp32), int8_views_per_s: col((x) => x.int8), ratio: col((x) => x.ratio),
      fp32_pipeline_over_engine: col((x) => x.fp32_pipeline_over_engine), int8_pipeline_over_engine: col((x) => x.int8_pipeline_over_engine),
      // CPU time (all threads) per view: the pipeline's minus the engine's is what decoding, drawing views and the cache cost.
      cpu_ms_per_view: {
        engine_fp32: col((x) => x.cpu_ms_per_view.engine_fp32), pipeline_fp32: col((x) => x.cpu_ms_per_view.pipeline_fp32),
        engine_int8: col((x) => x.cpu_ms_per_view.engine_int8), pipeline_int8: col((x) => x.cpu_ms_per_view.pipeline_int8),
      },
    };
    out.load.pipeline_done = load();
  }

  // --- the seed recipe's clean-view head on fp32 vs int8 features ---------------------------------
  if (flag('accuracy')) {
    const dir = arg('keep', join(tmp, 'accuracy'));
    const acc = { command: [], seeds: {} };
    for (const p of ['fp32', 'int8']) {
      const cache = join(dir, `cache-${p}`);
      const args = ['extract', '--train', join(data, 'train.txt'), '--val', join(data, 'val.txt'), '--weights', weights,
        '--views', '0', '--cache', cache, '--precision', p, '--threads', String(threads)];
      acc.command.push(`viewprobe ${args.join(' ')}`);
      await runChild(args);
      for (const s of seeds) await runChild(['train', '--cache', cache, '--out', join(dir, `run-${p}-${s}`), '--views', 'clean', '--seed', String(s)]);
    }
    const cmp = JSON.parse((await runChild(['compare', ...['fp32', 'int8'].flatMap((p) => seeds.map((s) => join(dir, `run-${p}-${s}`))), '--json'])).stdout);
    const best = (p, s) => cmp.rows.find((x) => resolve(x.run) === resolve(join(dir, `run-${p}-${s}`))).best;
    for (const s of seeds) acc.seeds[s] = { fp32: r(100 * best('fp32', s), 2), int8: r(100 * best('int8', s), 2), delta_points: r(100 * (best('int8', s) - best('fp32', s)), 2) };
    const deltas = seeds.map((s) => acc.seeds[s].delta_points);
    acc.mean_delta_points = r(deltas.reduce((a, b) => a + b, 0) / deltas.length, 2);
    acc.max_abs_delta_points = r(Math.max(...deltas.map(Math.abs)), 2);
    acc.goal = 'each seed within 1 point, the mean within 0.5';
    out.accuracy = acc;
    out.load.accuracy_done = load();
  }
  console.log(JSON.stringify(out, null, 2));
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
