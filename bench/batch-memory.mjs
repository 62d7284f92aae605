#!/usr/bin/env node
// Peak memory of the CPU engine per view in flight: the figure behind CPU_BYTES_PER_INPUT_BYTE in
// src/cli/extract.ts (checkBatchMemory). For each weights file and batch size, a fresh child process
// opens the onnx engine, runs `engine.parallel` batches at once (as extract does) and reports its
// peak RSS (VmHWM); the growth from the smallest to the largest batch, per view in flight, is the cost
// of one view, also given as a multiple of its input tensor. Prints one JSON object.
//
//   npx tsc -p tsconfig.json && node bench/batch-memory.mjs [--batches 8,64] [--size 224] [--threads 2]
//        [--weights a.safetensors,b.safetensors]   (default: ../shared resnet18-random and resnet50-keras)
import { spawnSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => join(root, 'dist', p);
function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

if (process.argv[2] === '--child') {
  const [, , , weights, batch, size, threads] = process.argv;
  const { openBackbone } = await import(dist('backbone/index.js'));
  const { readFileSync } = await import('node:fs');
  const bb = await openBackbone({ weights, engine: 'onnx', device: 'cpu', threads: Number(threads), quiet: true });
  const n = Number(batch), s = Number(size);
  const input = bb.engine.allocInput(n * s * s * 3);
  for (let i = 0; i < input.length; i++) input[i] = Math.sin(i);
  await Promise.all(Array.from({ length: bb.engine.parallel }, () => bb.engine.embed(input, n, s, s)));
  const hwmKiB = Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]);
  console.log(JSON.stringify({ arch: bb.arch, parallel: bb.engine.parallel, peakMiB: hwmKiB / 1024 }));
  await bb.engine.dispose();
  process.exit(0);
}

const { sharedPath } = await import(dist('shared.js'));
const weights = arg('weights', [sharedPath('weights/resnet18-random.safetensors'), sharedPath('weights/resnet50-keras.safetensors')].join(',')).split(',');
const batches = arg('batches', '8,64').split(',').map(Number);
const size = Number(arg('size', 224));
const threads = Number(arg('threads', 2));
const inputMiB = (size * size * 3 * 4) / 2 ** 20;
const results = [];
for (const w of weights) {
  const runs = batches.map((b) => {
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', w, String(b), String(size), String(threads)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`child failed for ${w} batch ${b}: ${r.stderr}`);
    return { batch: b, ...JSON.parse(r.stdout.trim().split('\n').pop()) };
  });
  const lo = runs[0], hi = runs[runs.length - 1];
  const perViewMiB = (hi.peakMiB - lo.peakMiB) / ((hi.batch - lo.batch) * hi.parallel);
  results.push({ weights: w, arch: hi.arch, parallel: hi.parallel, runs, perViewMiB: +perViewMiB.toFixed(2), perViewOverInput: +(perViewMiB / inputMiB).toFixed(1) });
}
console.log(JSON.stringify({ cpu: cpus()[0]?.model, cores: cpus().length, totalGiB: +(totalmem() / 2 ** 30).toFixed(1), size, threads, inputMiB: +inputMiB.toFixed(3), results }, null, 1));
