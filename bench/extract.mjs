#!/usr/bin/env node
// `viewprobe extract` against the tutorial's own PyTorch stage one, in one run, on a fixed subset of
// ../shared/data/food101-10 (the first N lines of train.txt), resnet18-random weights, seed preset.
// Prints one JSON object on stdout:
//   - engine-only images/s at 244x244 (onnx, one batch of real seed views, the same batch size; the
//     median of the timed runs after warm-up, half of them taken before the pipeline and half after,
//     so that a change of load during the run falls on both sides of the ratio)
//   - full-pipeline views/s: the real CLI (`extract --json`) into a fresh cache, in a child process
//     whose peak RSS is read back; the pipeline/engine ratio (goal >= 0.85)
//   - cache file bytes / float32 payload bytes (goal <= 1.15)
//   - seed_pipeline_pytorch.py on the same list and K, with Debian's python3 (goal: ours >= 1.25x)
// Our engine and pipeline are timed first, then PyTorch; the load average before each phase is in
// the output, because the machine is shared and a busy neighbour moves every figure.
//
//   npx tsc -p tsconfig.json && node bench/extract.mjs [--images 200] [--views 5] [--batch 32]
//        [--threads 2] [--runs 7] [--warmup 2] [--concurrency N] [--clean] [--torch-batch 8]
//        [--python /usr/bin/python3] [--no-pytorch] [--keep]
//
// --clean also extracts each image's eval-transform view (the CLI's default); off by default so that
// both pipelines compute the same views: images x K augmented ones.

// Child mode: run the CLI in this process and report its peak RSS, so that the parent reads the
// pipeline's own memory (not the bench's). Kept before any heavy import.
if (process.argv[2] === '--child') {
  const { main } = await import(new URL('../dist/cli.js', import.meta.url).href);
  const code = await main(process.argv.slice(3));
  const ru = process.resourceUsage();
  process.stderr.write(`\nbench-child ${JSON.stringify({ maxRssKiB: ru.maxRSS, userCpuUs: ru.userCPUTime, systemCpuUs: ru.systemCPUTime, code })}\n`);
  process.exit(code);
}

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { loadavg, tmpdir, cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dist = (p) => join(here, '..', 'dist', p);
if (!existsSync(dist('cli.js'))) {
  console.error('bench: dist/ is missing; run `npx tsc -p tsconfig.json` first');
  process.exit(2);
}
const { sharedPath } = await import(dist('shared.js'));
const { openBackbone } = await import(dist('extract/backbone/index.js'));
const { makeNormLut } = await import(dist('extract/normalize.js'));
const { getPreset } = await import(dist('extract/presets.js'));
const { decodeImage } = await import(dist('extract/decode.js'));
const { FeatureCache } = await import(dist('cache/store.js'));
const { hashBytes } = await import(dist('data/hash.js'));

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
const batch = intArg('batch', 32, 1);
const threads = intArg('threads', 2, 1);
const runs = Math.max(5, intArg('runs', 7, 1));
const warmup = intArg('warmup', 2, 1);
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
  machine: { cpus: cpus().length, node: process.version },
  threads, batch,
  engine: null, // filled in after the pipeline: half its runs are taken after it
};

try {
  // --- engine only: one batch of real seed views, the same batch size as the pipeline ---------------
  loads.engine = load();
  const bb = await openBackbone({ weights, engine: 'onnx', device: 'cpu', threads, quiet: true });
  const size = getPreset('seed').inputSize;
  const input = new Float32Array(batch * size * size * 3);
  {
    const preset = getPreset('seed');
    const norm = makeNormLut(bb.preprocess);
    for (let i = 0; i < batch; i++) {
      const it = items[i % items.length];
      const bytes = readFileSync(it.path);
      const prepared = preset.prepareTrain(await decodeImage(bytes, { name: it.path }));
      preset.renderTrainView(prepared, preset.viewParams(0, hashBytes(bytes), 0), norm, input, i * size * size * 3);
    }
    for (let i = 0; i < warmup; i++) await bb.engine.embed(input, batch, size, size);
  }
  const engineSecs = [];
  const timeEngine = async (n) => {
    const secs = [];
    for (let i = 0; i < n; i++) {
      const t0 = process.hrtime.bigint();
      await bb.engine.embed(input, batch, size, size);
      secs.push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
    engineSecs.push(...secs);
    return r(batch / median(secs));
  };
  const engineBefore = await timeEngine(Math.ceil(runs / 2));

  // --- the full pipeline: the CLI in a child process, fresh cache --------------------------------
  loads.pipeline = load();
  {
    const cacheDir = join(tmp, 'cache');
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
    result.pipeline = {
      views: s.extracted, seconds: s.seconds, views_per_s: r(s.viewsPerSecond),
      process_wall_s: r(wall, 2),
      cpu_s: r((child.userCpuUs + child.systemCpuUs) / 1e6, 2),
      peak_rss_mb: r(child.maxRssKiB / 1024, 1),
      engine: s.engine, backend: s.backend, concurrency: concurrency ? Number(concurrency) : 'default',
    };
    result.cache = {
      payload_bytes: counts.payloadBytes, file_bytes: counts.fileBytes,
      file_over_payload: r(counts.fileBytes / counts.payloadBytes, 3),
    };
  }

  loads.engine_after = load();
  {
    const engineAfter = await timeEngine(Math.ceil(runs / 2));
    await bb.engine.dispose();
    const med = median(engineSecs);
    result.engine = {
      engine: bb.engine.engine, backend: bb.engine.backend, inputSize: size, batch, runs: engineSecs.length,
      median_s: r(med, 4), min_s: r(Math.min(...engineSecs), 4), max_s: r(Math.max(...engineSecs), 4),
      images_per_s: r(batch / med), images_per_s_best: r(batch / Math.min(...engineSecs)),
      images_per_s_before_pipeline: engineBefore, images_per_s_after_pipeline: engineAfter,
    };
  }

  // --- the tutorial's pipeline in PyTorch, same list and K ----------------------------------------
  if (withTorch) {
    loads.pytorch = load();
    // Debian's torch lives in the system python3's dist-packages; keep pyenv's variables out of it.
    const env = { ...process.env };
    for (const k of ['PYTHONPATH', 'PYTHONHOME', 'PYENV_VERSION']) delete env[k];
    const out = await runChild(python, [torchScript, 'speed', list, String(views), '--threads', String(threads), '--batch', String(torchBatch)], env);
    const last = out.stdout.trim().split('\n').pop() ?? '';
    if (out.status !== 0 || !last.startsWith('{')) {
      throw new Error(`${python} ${torchScript} exited ${out.status}:\n${out.stderr.slice(-4000)}`);
    }
    result.pytorch = JSON.parse(last);
  }
  loads.end = load();

  const ratioEngine = result.pipeline.views_per_s / result.engine.images_per_s;
  result.ratios = {
    pipeline_over_engine: r(ratioEngine, 3),
    ...(result.pytorch ? { ours_over_pytorch: r(result.pipeline.views_per_s / result.pytorch.views_per_s, 2) } : {}),
  };
  result.goals = {
    pipeline_over_engine_ge_0_85: ratioEngine >= 0.85,
    cache_over_payload_le_1_15: result.cache.file_over_payload <= 1.15,
    peak_rss_le_1_5_gb: result.pipeline.peak_rss_mb <= 1536,
    ...(result.pytorch ? { ours_over_pytorch_ge_1_25: result.ratios.ours_over_pytorch >= 1.25 } : {}),
  };
  result.loadavg_1_5_15 = loads;
  console.log(JSON.stringify(result, null, 1));
} finally {
  if (flag('keep')) console.error(`bench: kept ${tmp}`);
  else rmSync(tmp, { recursive: true, force: true });
}
