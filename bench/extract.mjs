#!/usr/bin/env node
// `viewprobe extract` against the tutorial's own PyTorch stage one, in one run, on a fixed subset of
// ../shared/data/food101-10 (the first N lines of train.txt), resnet18-random weights, seed preset.
// The machine is shared and a busy neighbour moves every figure by 10-20 %, so the three contenders
// are measured in interleaved rounds (engine, pipeline, PyTorch; engine, pipeline, PyTorch; ...), each
// ratio is taken within its round, and the output gives every round plus the medians.
// Prints one JSON object on stdout:
//   - engine-only images/s at 244x244 (onnx, batches of real seed views, the same batch size, as many
//     in flight as the engine runs at once; the median of the timed runs of the round, after warm-up),
//     and the same for the direct-convolution graph the engine's Winograd one replaced
//   - full-pipeline views/s: the real CLI (`extract --json`) into a fresh cache, in a child process
//     whose peak RSS and CPU time are read back; the pipeline/engine ratio (goal >= 0.9, issue 11)
//   - cache file bytes / float32 payload bytes (goal <= 1.15)
//   - seed_pipeline_pytorch.py on the same list and K, with Debian's python3 (goal: ours >= 1.25x)
//
//   npx tsc -p tsconfig.json && node bench/extract.mjs [--images 200] [--views 5] [--batch 8]
//        [--threads 2] [--rounds 3] [--runs 4] [--warmup 1] [--concurrency N] [--clean] [--torch-batch 8]
//        [--python /usr/bin/python3] [--no-pytorch] [--keep]
//
// --clean also extracts each image's eval-transform view (the CLI's default); off by default so that
// both pipelines compute the same views: images x K augmented ones.

// Child mode: run the CLI in this process and report its peak RSS, so that the parent reads the
// pipeline's own memory (not the bench's). Kept before any heavy import.
if (process.argv[2] === '--child') {
  const { main } = await import(new URL('../dist/cli/main.js', import.meta.url).href);
  const code = await main(process.argv.slice(3));
  const ru = process.resourceUsage();
  process.stderr.write(`\nbench-child ${JSON.stringify({ maxRssKiB: ru.maxRSS, userCpuUs: ru.userCPUTime, systemCpuUs: ru.systemCPUTime, code })}\n`);
  process.exit(code);
}

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dist = (p) => join(here, '..', 'dist', p);
if (!existsSync(dist('cli/main.js'))) {
  console.error('bench: dist/ is missing; run `npx tsc -p tsconfig.json` first');
  process.exit(2);
}
const { sharedPath } = await import(dist('shared.js'));
const { openBackbone } = await import(dist('backbone/index.js'));
const { makeNormLut } = await import(dist('image/normalize.js'));
const { getPreset } = await import(dist('image/presets.js'));
const { decodeImage } = await import(dist('image/decode.js'));
const { FeatureCache } = await import(dist('cache/store.js'));
const { hashBytes } = await import(dist('data/hash.js'));
const { createOnnxEngine } = await import(dist('backbone/onnx.js'));
const { readSafetensors } = await import(dist('backbone/safetensors.js'));
const { buildResNet } = await import(dist('backbone/spec.js'));

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const flag = (name) => process.argv.includes(`--${name}`);
const intArg = (name, fallback, min) => {
  const v = Number(arg(name, fallback));
  if (!Number.isInteger(v) || v < min) {
    console.error(`bench: --${name} must be a whole number >= ${min}`);
    process.exit(2);
  }
  return v;
};
const nImages = intArg('images', 200, 1);
const views = intArg('views', 5, 1);
const batch = intArg('batch', 8, 1);
const threads = intArg('threads', 2, 1);
const rounds = intArg('rounds', 3, 1);
const runs = intArg('runs', 4, 1);
const warmup = intArg('warmup', 1, 0);
const torchBatch = intArg('torch-batch', 8, 1);
const concurrency = arg('concurrency', undefined);
const clean = flag('clean');
const python = arg('python', '/usr/bin/python3');
const withTorch = !flag('no-pytorch');

const dataList = sharedPath('data/food101-10/train.txt');
const weights = sharedPath('weights/resnet18-random.safetensors');
const torchScript = sharedPath('reference/seed_pipeline_pytorch.py');
for (const f of [dataList, weights, ...(withTorch ? [torchScript] : [])]) {
  if (!existsSync(f)) {
    console.error(`bench: ${f} is missing (the bench needs ../shared)`);
    process.exit(2);
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const r = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
const load = () => loadavg().map((x) => r(x));
const loads = { start: load() };

// --- the subset: absolute paths, so the list needs only classes.txt beside it ---------------------
const tmp = mkdtempSync(join(tmpdir(), 'vp-bench-extract-'));
const base = dirname(dataList);
const lines = readFileSync(dataList, 'utf8').split('\n').filter((l) => l.trim()).slice(0, nImages);
const items = lines.map((l, i) => {
  const m = /^(\S+)\s+(\d+)\s*$/.exec(l);
  if (!m) throw new Error(`${dataList}:${i + 1}: expected "relative/path label"`);
  return { path: resolve(base, m[1]), label: Number(m[2]) };
});
const list = join(tmp, 'train.txt');
writeFileSync(list, items.map((it) => `${it.path} ${it.label}\n`).join(''));
copyFileSync(join(base, 'classes.txt'), join(tmp, 'classes.txt'));

function runChild(cmd, args, env = process.env) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (status) => resolvePromise({ status, stdout, stderr }));
  });
}

const result = {
  bench: 'extract',
  subset: { list: dataList, images: items.length, views, clean, preset: 'seed', weights: 'resnet18-random' },
  machine: { cpu: (await import('./machine.mjs')).cpuInfo(), node: process.version },
  threads, batch, rounds,
};

try {
  // --- engine only: batches of real seed views, the same batch size as the pipeline ---------------
  const bb = await openBackbone({ weights, engine: 'onnx', device: 'cpu', threads, quiet: true });
  const size = getPreset('seed').inputSize;
  // The engine runs `parallel` batches at once (onnx on CPU: one single-threaded session per thread),
  // so engine-only keeps that many in flight too, from buffers allocated as the pipeline's are.
  const parallel = bb.engine.parallel;
  const inputs = Array.from({ length: parallel }, () => bb.engine.allocInput(batch * size * size * 3));
  {
    const preset = getPreset('seed');
    const norm = makeNormLut(bb.preprocess);
    for (let i = 0; i < batch; i++) {
      const it = items[i % items.length];
      const bytes = readFileSync(it.path);
      const prepared = preset.prepareTrain(await decodeImage(bytes, { name: it.path }));
      preset.renderTrainView(prepared, preset.viewParams(0, hashBytes(bytes), 0), norm, inputs[0], i * size * size * 3);
    }
    for (const x of inputs.slice(1)) x.set(inputs[0]);
  }
  // One timed run: each of the `parallel` inputs goes through the engine twice, back to back.
  const perRun = 2;
  const imagesPerRun = parallel * perRun * batch;
  // The direct-convolution graph the engine's Winograd one replaced (src/backbone/winograd.ts), timed
  // the same way in every round, for their ratio.
  const direct = await createOnnxEngine(buildResNet(await readSafetensors(weights)), { device: 'cpu', threads, winograd: false });
  const oneRun = async (engine) => {
    const t0 = process.hrtime.bigint();
    await Promise.all(inputs.map(async (x) => {
      for (let k = 0; k < perRun; k++) await engine.embed(x, batch, size, size);
    }));
    return Number(process.hrtime.bigint() - t0) / 1e9;
  };
  const timeEngine = async (engine = bb.engine) => {
    for (let i = 0; i < warmup; i++) await oneRun(engine);
    const secs = [];
    for (let i = 0; i < runs; i++) secs.push(await oneRun(engine));
    return { images_per_s: r(imagesPerRun / median(secs)), images_per_s_best: r(imagesPerRun / Math.min(...secs)) };
  };

  // --- the full pipeline: the CLI in a child process, fresh cache --------------------------------
  const timePipeline = async (round) => {
    const cacheDir = join(tmp, `cache-${round}`);
    const cliArgs = [
      'extract', '--train', list, '--cache', cacheDir, '--views', String(views), '--preset', 'seed',
      '--weights', weights, '--engine', 'onnx', '--device', 'cpu', '--threads', String(threads),
      '--batch', String(batch), '--json', ...(clean ? [] : ['--no-clean-view']),
      ...(concurrency ? ['--concurrency', concurrency] : []),
    ];
    const t0 = performance.now();
    const out = await runChild(process.execPath, [fileURLToPath(import.meta.url), '--child', ...cliArgs]);
    const wall = (performance.now() - t0) / 1000;
    const childLine = out.stderr.split('\n').find((l) => l.startsWith('bench-child '));
    if (out.status !== 0 || !childLine) {
      throw new Error(`extract exited ${out.status}:\n${out.stderr.slice(-4000)}`);
    }
    const child = JSON.parse(childLine.slice('bench-child '.length));
    const s = JSON.parse(out.stdout.trim().split('\n').pop());
    const want = items.length * (views + (clean ? 1 : 0));
    if (s.extracted !== want || s.failed.length) {
      throw new Error(`extract did ${s.extracted} views (expected ${want}), ${s.failed.length} failures`);
    }
    const cache = await FeatureCache.open(cacheDir, { readOnly: true });
    const counts = cache.info().counts;
    await cache.close();
    rmSync(cacheDir, { recursive: true, force: true });
    return {
      pipeline: {
        views: s.extracted, seconds: s.seconds, views_per_s: r(s.viewsPerSecond),
        process_wall_s: r(wall, 2),
        cpu_s: r((child.userCpuUs + child.systemCpuUs) / 1e6, 2),
        peak_rss_mb: r(child.maxRssKiB / 1024, 1),
      },
      cache: { payload_bytes: counts.payloadBytes, file_bytes: counts.fileBytes, file_over_payload: r(counts.fileBytes / counts.payloadBytes, 3) },
    };
  };

  // --- the tutorial's pipeline in PyTorch, same list and K ----------------------------------------
  const timePytorch = async () => {
    // Debian's torch lives in the system python3's dist-packages; keep pyenv's variables out of it.
    const env = { ...process.env };
    for (const k of ['PYTHONPATH', 'PYTHONHOME', 'PYENV_VERSION']) delete env[k];
    const out = await runChild(python, [torchScript, 'speed', list, String(views), '--threads', String(threads), '--batch', String(torchBatch)], env);
    const last = out.stdout.trim().split('\n').pop() ?? '';
    if (out.status !== 0 || !last.startsWith('{')) {
      throw new Error(`${python} ${torchScript} exited ${out.status}:\n${out.stderr.slice(-4000)}`);
    }
    return JSON.parse(last);
  };

  const perRound = [];
  for (let round = 0; round < rounds; round++) {
    const entry = { round, loadavg_1_5_15_at_start: load() };
    entry.engine = await timeEngine();
    entry.engine_direct = await timeEngine(direct);
    entry.winograd_over_direct = r(entry.engine.images_per_s / entry.engine_direct.images_per_s, 3);
    Object.assign(entry, await timePipeline(round));
    if (withTorch) entry.pytorch_views_per_s = (await timePytorch()).views_per_s;
    entry.pipeline_over_engine = r(entry.pipeline.views_per_s / entry.engine.images_per_s, 3);
    if (withTorch) entry.ours_over_pytorch = r(entry.pipeline.views_per_s / entry.pytorch_views_per_s, 3);
    perRound.push(entry);
    console.error(`bench: round ${round + 1}/${rounds}: ${JSON.stringify(entry)}`);
  }
  await bb.engine.dispose();
  await direct.dispose();

  const med = (f) => r(median(perRound.map(f)), 3);
  result.engine = { engine: bb.engine.engine, backend: bb.engine.backend, inputSize: size, batch, parallel, images_per_run: imagesPerRun, runs_per_round: runs };
  result.rounds_detail = perRound;
  result.median = {
    engine_images_per_s: med((e) => e.engine.images_per_s),
    engine_direct_images_per_s: med((e) => e.engine_direct.images_per_s),
    winograd_over_direct: med((e) => e.winograd_over_direct),
    pipeline_views_per_s: med((e) => e.pipeline.views_per_s),
    ...(withTorch ? { pytorch_views_per_s: med((e) => e.pytorch_views_per_s) } : {}),
    pipeline_over_engine: med((e) => e.pipeline_over_engine),
    ...(withTorch ? { ours_over_pytorch: med((e) => e.ours_over_pytorch) } : {}),
    cache_file_over_payload: med((e) => e.cache.file_over_payload),
    peak_rss_mb: r(Math.max(...perRound.map((e) => e.pipeline.peak_rss_mb)), 1),
  };
  result.goals = {
    pipeline_over_engine_ge_0_9: result.median.pipeline_over_engine >= 0.9,
    cache_over_payload_le_1_15: result.median.cache_file_over_payload <= 1.15,
    peak_rss_le_1_5_gb: result.median.peak_rss_mb <= 1536,
    ...(withTorch ? { ours_over_pytorch_ge_1_25: result.median.ours_over_pytorch >= 1.25 } : {}),
  };
  result.loadavg_1_5_15 = { start: loads.start, end: load() };
  console.log(JSON.stringify(result, null, 1));
} finally {
  if (flag('keep')) console.error(`bench: kept ${tmp}`);
  else rmSync(tmp, { recursive: true, force: true });
}
