// Training-speed benchmark for stage two: 50 epochs of the seed recipe over cached features, in-process.
// Build first (npx tsc -p tsconfig.json), then:
//   node bench/train.mjs                       synthetic food101-10 shape: 1,600 x K=10 x 2048-d, 500 val, 10 classes
//   node bench/train.mjs --cache DIR           a real cache (e.g. the demo's resnet50-keras food101-10 cache)
// Options: --runs N (default 3, median reported) --epochs E --views aug|clean|all
//          --n --k --dim --val --classes (synthetic shape). Prints one JSON object on stdout.
import os from 'node:os';
import { trainHead } from '../dist/train/loop.js';
import { Rng } from '../dist/random.js';

function args(argv) {
  const a = { runs: 3, epochs: 50, views: 'aug', n: 1600, k: 10, dim: 2048, val: 500, classes: 10, seed: 0 };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in a) && key !== 'cache') throw new Error(`unknown option ${argv[i]}`);
    const v = argv[++i];
    a[key] = typeof a[key] === 'number' ? Number(v) : v;
  }
  return a;
}

// Features shaped like pooled ResNet activations (non-negative), with a class signal weak enough that
// the head is far from perfect and keeps learning (as on real food101-10 features).
function synthetic({ n, k, dim, val, classes }) {
  const rng = new Rng(12345, 99);
  const gauss = () => {
    const u = rng.uniform() || 1e-7, v = rng.uniform();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  const shared = Float32Array.from({ length: dim }, () => 0.4 + 0.3 * gauss());
  const means = Float32Array.from({ length: classes * dim }, (_, i) => Math.max(0, shared[i % dim] + 0.02 * gauss()));
  const make = (count, views, split) => {
    const labels = Int32Array.from({ length: count }, (_, i) => i % classes);
    const row = (out, o, y, noise) => {
      for (let j = 0; j < dim; j++) out[o + j] = Math.max(0, means[y * dim + j] + noise * gauss());
    };
    const aug = new Float32Array(count * views * dim);
    const clean = new Float32Array(count * dim);
    for (let i = 0; i < count; i++) {
      for (let v = 0; v < views; v++) row(aug, (i * views + v) * dim, labels[i], 0.6);
      row(clean, i * dim, labels[i], 0.5);
    }
    return { split, dim, paths: [], hashes: [], labels, views, aug, clean };
  };
  return {
    train: make(n, k, 'train'),
    val: make(val, 0, 'val'),
    classes: Array.from({ length: classes }, (_, i) => `class${i}`),
  };
}

async function fromCache(dir) {
  const { FeatureCache } = await import('../dist/cache/store.js');
  const cache = await FeatureCache.open(dir, { readOnly: true });
  try {
    const info = await cache.info();
    if (!info) throw new Error(`${dir}: empty cache`);
    return { train: await cache.readSplit('train'), val: await cache.readSplit('val'), classes: info.classes, fingerprintId: info.fingerprintId };
  } finally {
    await cache.close();
  }
}

const a = args(process.argv.slice(2));
const data = a.cache ? await fromCache(a.cache) : synthetic(a);
const opts = { epochs: a.epochs, views: a.views, seed: a.seed };
const runs = [];
let last;
for (let r = 0; r < a.runs; r++) {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  last = await trainHead(data.train, data.val, data.classes, opts);
  const cpu = process.cpuUsage(c0);
  // CPU seconds next to wall seconds: on a shared machine the wall time also counts other people's work.
  runs.push({ seconds: +((performance.now() - t0) / 1000).toFixed(3), epochSeconds: +last.seconds.toFixed(3), cpuSeconds: +((cpu.user + cpu.system) / 1e6).toFixed(3) });
}
const sorted = runs.map((r) => r.seconds).sort((x, y) => x - y);
const median = sorted[Math.floor(sorted.length / 2)];
console.log(JSON.stringify({
  bench: 'train',
  source: a.cache ? `cache ${a.cache}` : 'synthetic',
  workload: { trainImages: data.train.labels.length, views: data.train.views, dim: data.train.dim, valImages: data.val.labels.length, classes: data.classes.length, epochs: a.epochs, viewMode: a.views, batch: 64 },
  math: last.math,
  runs,
  medianSeconds: median,
  medianCpuSeconds: runs.map((r) => r.cpuSeconds).sort((x, y) => x - y)[Math.floor(runs.length / 2)],
  goalSeconds: 2,
  bestValAcc: last.best.valAcc,
  bestEpoch: last.best.epoch,
  finalValAcc: last.last.valAcc,
  node: process.version,
  cpus: os.cpus().length,
  loadavg: os.loadavg().map((x) => +x.toFixed(2)),
}, null, 1));
