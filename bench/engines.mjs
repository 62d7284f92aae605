#!/usr/bin/env node
// ResNet18 forward throughput at 224x224 for every backbone engine available here, and, in the same
// run, plain PyTorch on CPU in its strongest setting (Debian's python3-torch: eval, inference_mode,
// torch.jit.optimize_for_inference(torch.jit.trace(model, x)), same thread count). Each engine runs in
// its own child process, one after the other: with the runtimes side by side, their idle thread pools
// slowed each other (PyTorch's jit setting gave 77 img/s at batch 8 alone, 63 beside a live
// onnxruntime session and 48 beside onnxruntime + tfjs). Prints one JSON object.
//
//   npx tsc -p tsconfig.json && node bench/engines.mjs [--threads N] [--batches 8,16,32] [--runs 7]
//        [--warmup 2] [--engines onnx,tfjs,pytorch] [--explore] [--weights FILE]
//
// --explore adds onnxruntime session-option variants (the settings the engine uses were chosen with it).
// The onnx engine runs `parallel` batches at once: it is timed with that many in flight.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => join(root, 'dist', p);
if (!existsSync(dist('backbone/onnx.js'))) {
  console.error('bench: dist/ is missing; run `npx tsc -p tsconfig.json` first');
  process.exit(2);
}
const { readSafetensors } = await import(dist('backbone/safetensors.js'));
const { buildResNet, forwardMacs, resnetSpec } = await import(dist('backbone/spec.js'));
const { createOnnxEngine } = await import(dist('backbone/onnx.js'));
const { createTfjsEngine } = await import(dist('backbone/tfjs.js'));
const { sharedPath } = await import(dist('shared.js'));

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const threads = Number(arg('threads', availableParallelism()));
const batches = arg('batches', '8,16,32').split(',').map(Number);
const runs = Math.max(5, Number(arg('runs', 7)));
const warmup = Number(arg('warmup', 2));
const engines = arg('engines', 'onnx,tfjs,pytorch').split(',');
const explore = process.argv.includes('--explore');
const weights = arg('weights', sharedPath('weights/resnet18-random.safetensors'));
const SIZE = 224;

const net = buildResNet(await readSafetensors(weights));
if (net.variant.arch !== 'resnet18') throw new Error('the bench measures resnet18');
const gmacPerImage = forwardMacs(resnetSpec(net.variant), SIZE, SIZE) / 1e9;

/** Per batch size: the engine's Winograd graph over the direct one, measured in the same rounds. */
function winogradOverDirect(results) {
  const wino = results.find((r) => r.name === 'onnx');
  const direct = results.find((r) => r.name.startsWith('onnx direct'));
  if (!wino || !direct) return null;
  return Object.fromEntries(batches.map((b) => [b, +(wino.batches[b].images_per_s / direct.batches[b].images_per_s).toFixed(3)]));
}

if (!process.argv.includes('--child') && engines.length > 1 && !explore) {
  // Orchestrator: one child per engine, sequentially, then one combined JSON.
  const passThrough = process.argv.slice(2).filter((a, i, all) => a !== '--engines' && all[i - 1] !== '--engines');
  const results = [];
  const skippedAll = {};
  for (const e of engines) {
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), ...passThrough, '--engines', e, '--child'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    if (r.status !== 0) { skippedAll[e] = `bench child exited ${r.status}`; continue; }
    const j = JSON.parse(r.stdout);
    results.push(...j.results);
    Object.assign(skippedAll, j.skipped);
  }
  const onnxR = results.find((r) => r.name === 'onnx');
  const torchR = results.filter((r) => r.name.startsWith('pytorch')).reduce((a, r) => (!a || r.best.images_per_s > a.best.images_per_s ? r : a), undefined);
  console.log(JSON.stringify({
    bench: 'resnet18 forward, 224x224, NHWC float32 input (onnx/tfjs) vs NCHW (pytorch)',
    weights, gmac_per_image: +gmacPerImage.toFixed(3), threads, runs_per_point: runs, warmup_per_point: warmup,
    statistic: 'median seconds per batch; each engine in its own process, one after the other',
    results, skipped: skippedAll,
    ratio_onnx_best_over_pytorch_best: onnxR && torchR ? +(onnxR.best.images_per_s / torchR.best.images_per_s).toFixed(3) : null,
    ratio_winograd_over_direct: winogradOverDirect(results),
    pytorch_best: torchR ? { name: torchR.name, ...torchR.best } : null,
    load_average: (await import('node:os')).loadavg().map((x) => +x.toFixed(2)),
    goal: '>= 1.1',
  }, null, 2));
  process.exit(0);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** A contender: `once(b)` runs one timed forward of batch b and returns seconds. */
const contenders = [];
const skipped = {};
const maxB = Math.max(...batches);
const input = new Float32Array(maxB * SIZE * SIZE * 3).map((_, i) => Math.sin(i * 0.37) * 2);

/**
 * Seconds per batch of b: an engine that runs `parallel` batches at once gets that many together,
 * and the time is divided among them (what a pipeline that keeps it busy sees).
 */
async function timeEngine(engine, b) {
  const x = input.subarray(0, b * SIZE * SIZE * 3);
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: engine.parallel }, () => engine.embed(x, b, SIZE, SIZE)));
  return Number(process.hrtime.bigint() - t0) / 1e9 / engine.parallel;
}

if (engines.includes('onnx')) {
  // The engine as the CLI builds it (one single-threaded session per thread, each in a worker, batches
  // side by side), the one session with all the threads that it replaced,
  // and the direct graph the Winograd one replaced (src/backbone/winograd.ts).
  const variants = [['onnx', {}], ['onnx direct convolutions (no Winograd)', { winograd: false }], ['onnx 1 session x all threads', { workers: 1 }]];
  if (explore) {
    variants.push(
      ['onnx level=extended (no NCHWc layout)', { session: { graphOptimizationLevel: 'extended' } }],
      ['onnx no cpu arena', { session: { enableCpuMemArena: false } }],
      ['onnx no mem pattern', { session: { enableMemPattern: false } }],
      ['onnx 1 session, no spinning', { workers: 1, session: { extra: { session: { intra_op: { allow_spinning: '0' } } } } }],
    );
  }
  for (const [name, opts] of variants) {
    const e = await createOnnxEngine(net, { device: 'cpu', threads, ...opts });
    contenders.push({ name, backend: `${e.backend}, ${opts.workers ?? threads} session(s), ${e.parallel} batches in flight`, threads: e.threads, once: (b) => timeEngine(e, b), close: () => e.dispose() });
  }
}

if (engines.includes('tfjs')) {
  try {
    const e = await createTfjsEngine(net, { backends: ['tfjs-node-gpu', 'tfjs-node', 'wasm', 'cpu'], threads });
    contenders.push({ name: 'tfjs', backend: e.backend, threads: e.threads, skippedBackends: e.tf.skipped, once: (b) => timeEngine(e, b), close: () => e.dispose() });
  } catch (err) {
    skipped.tfjs = String(err.message ?? err).split('\n')[0];
  }
}

// PyTorch runs in a worker process of Debian's system python3 that times one forward per request,
// so that its rounds alternate with the others'.
const PY = String.raw`
import sys, json, time, torch, torchvision
threads, batches = int(sys.argv[1]), [int(b) for b in sys.argv[2].split(',')]
torch.set_num_threads(threads)
model = torchvision.models.resnet18()
model.fc = torch.nn.Identity()  # features, as the engines output
model.eval()
nets = {}
with torch.inference_mode():
    for b in batches:
        x = torch.randn(b, 3, 224, 224)
        nets[('jit', b)] = (torch.jit.optimize_for_inference(torch.jit.trace(model, x)), x)
        nets[('eager', b)] = (model, x)
        for _ in range(2):
            nets[('jit', b)][0](x)
    print(json.dumps({'ready': True, 'torch': torch.__version__, 'torchvision': torchvision.__version__,
                      'threads': torch.get_num_threads(), 'mkldnn': torch.backends.mkldnn.is_available()}), flush=True)
    for line in sys.stdin:
        kind, b = line.split()
        m, x = nets[(kind, int(b))]
        t0 = time.perf_counter(); m(x); dt = time.perf_counter() - t0
        print(json.dumps({'s': dt}), flush=True)
`;

let py;
if (engines.includes('pytorch')) {
  const python = '/usr/bin/python3';
  const probe = () => spawnSync(python, ['-c', 'import torch, torchvision'], { encoding: 'utf8' });
  let ok = existsSync(python) && probe().status === 0;
  if (!ok && process.getuid?.() === 0) {
    console.error('bench: installing python3-torch python3-torchvision with apt-get (once)');
    spawnSync('apt-get', ['install', '-y', 'python3-torch', 'python3-torchvision'], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    ok = probe().status === 0;
  }
  if (!ok) {
    skipped.pytorch = `${python} cannot import torch/torchvision (apt-get install -y python3-torch python3-torchvision)`;
  } else {
    // OMP/MKL variables from the environment would override set_num_threads; clear them.
    const env = { ...process.env };
    for (const k of ['OMP_NUM_THREADS', 'MKL_NUM_THREADS']) delete env[k];
    const child = spawn(python, ['-c', PY, String(threads), batches.join(',')], { stdio: ['pipe', 'pipe', 'inherit'], env });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const next = async () => JSON.parse((await lines.next()).value);
    const info = await next();
    py = { child, info };
    for (const kind of ['jit', 'eager']) {
      contenders.push({
        name: kind === 'jit' ? 'pytorch jit.optimize_for_inference(trace)' : 'pytorch eager',
        backend: `torch ${info.torch} (Debian python3-torch), mkldnn ${info.mkldnn}`,
        threads: info.threads,
        pytorch: true,
        once: async (b) => { child.stdin.write(`${kind} ${b}\n`); return (await next()).s; },
        close: async () => {},
      });
    }
  }
}

// Warm-up, then rounds: in each round every contender runs each batch size once. A contender's runs
// are contiguous and preceded by a pause: both onnxruntime's and OpenMP's idle threads spin for a while
// after a run, and run-by-run interleaving let one runtime's spinning threads eat the other's cores
// (PyTorch measured 46 img/s at batch 8 that way, 77 alone). Rounds still spread the machine's noise.
const settle = () => new Promise((r) => setTimeout(r, 500));
for (const c of contenders) { await settle(); for (const b of batches) for (let i = 0; i < warmup; i++) await c.once(b); }
const times = new Map(contenders.map((c) => [c, new Map(batches.map((b) => [b, []]))]));
for (let r = 0; r < runs; r++) {
  for (const c of contenders) {
    await settle();
    for (const b of batches) times.get(c).get(b).push(await c.once(b));
  }
}

const results = contenders.map((c) => {
  const per = {};
  for (const b of batches) {
    const s = median(times.get(c).get(b));
    const fastest = Math.min(...times.get(c).get(b));
    per[b] = {
      median_s: +s.toFixed(4),
      images_per_s: +(b / s).toFixed(1),
      gmac_per_s: +((b / s) * gmacPerImage).toFixed(1),
      // The fastest run is the one least disturbed by other processes: a hint of the unloaded figure.
      fastest_run_images_per_s: +(b / fastest).toFixed(1),
    };
  }
  const best = batches.reduce((x, b) => (per[b].images_per_s > per[x].images_per_s ? b : x), batches[0]);
  return { name: c.name, backend: c.backend, threads: c.threads, ...(c.skippedBackends?.length ? { skipped_backends: c.skippedBackends } : {}), batches: per, best: { batch: best, images_per_s: per[best].images_per_s } };
});
for (const c of contenders) await c.close();
py?.child.stdin.end();

const bestOf = (pred) => results.filter(pred).reduce((a, r) => (!a || r.best.images_per_s > a.best.images_per_s ? r : a), undefined);
const onnxBest = results.find((r) => r.name === 'onnx');
const torchBest = bestOf((r) => r.name.startsWith('pytorch'));
const fastestOf = (r) => (r ? Math.max(...Object.values(r.batches).map((v) => v.fastest_run_images_per_s)) : NaN);
const torchFastest = Math.max(...results.filter((r) => r.name.startsWith('pytorch')).map(fastestOf));
console.log(JSON.stringify({
  bench: 'resnet18 forward, 224x224, NHWC float32 input (onnx/tfjs) vs NCHW (pytorch)',
  weights,
  gmac_per_image: +gmacPerImage.toFixed(3),
  threads,
  runs_per_point: runs,
  warmup_per_point: warmup,
  statistic: 'median seconds per batch; each round runs every engine in turn (contiguous, after a 0.5 s pause)',
  cpu: process.env.BENCH_CPU ?? undefined,
  results,
  skipped,
  ratio_onnx_best_over_pytorch_best: onnxBest && torchBest ? +(onnxBest.best.images_per_s / torchBest.best.images_per_s).toFixed(3) : null,
  ratio_winograd_over_direct: winogradOverDirect(results),
  pytorch_best: torchBest ? { name: torchBest.name, ...torchBest.best } : null,
  ratio_of_fastest_runs: onnxBest && torchBest ? +(fastestOf(onnxBest) / torchFastest).toFixed(3) : null,
  load_average: (await import('node:os')).loadavg().map((x) => +x.toFixed(2)),
  goal: '>= 1.1',
}, null, 2));
process.exit(0);
