// Sweep speed: the default `viewprobe sweep` search over a real cache, in-process (the CLI's code path
// minus the file writing). Build first (npm run build), then:
//   node bench/sweep.mjs --cache DIR [--trials 40] [--workers N] [--select val|cv] [--folds 5]
// Prints one JSON object on stdout: wall seconds, trials/s, CPU seconds of the process (all threads),
// the chosen trial against the seed recipe, the CPU model and the load average (the machine is shared).
import os from 'node:os';
import { sweep } from '../dist/train/sweep.js';
import { describeTrial } from '../dist/train/sweep-space.js';
import { FeatureCache } from '../dist/cache/store.js';

const a = { cache: undefined, trials: 40, workers: os.availableParallelism(), select: 'val', folds: 5 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const k = argv[i].replace(/^--/, '');
  if (!(k in a)) throw new Error(`unknown option ${argv[i]}`);
  a[k] = typeof a[k] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
}
if (!a.cache) throw new Error('--cache DIR is required (e.g. a resnet50-keras food101-10 cache)');
const cache = await FeatureCache.open(a.cache, { readOnly: true });
const info = cache.info();
const train = cache.readSplit('train');
const val = cache.readSplit('val');
await cache.close();

const load0 = os.loadavg();
const c0 = process.cpuUsage();
const t0 = performance.now();
const o = await sweep(train, val.labels.length ? val : null, info.classes, { trials: a.trials, workers: a.workers, select: a.select, folds: a.folds });
const wall = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(c0);
const row = (i) => ({ trial: i, score: o.results[i].score, epoch: o.results[i].epoch, description: describeTrial(o.results[i].spec) });
console.log(JSON.stringify({
  bench: 'sweep',
  cache: a.cache,
  workload: { trainImages: train.labels.length, views: train.views, clean: !!train.clean, dim: train.dim, classes: info.classes.length, valImages: val.labels.length },
  selection: o.selection,
  trials: o.results.length,
  workers: o.workers,
  wallSeconds: +wall.toFixed(2),
  trialsPerSecond: +(o.results.length / wall).toFixed(2),
  cpuSeconds: +((cpu.user + cpu.system) / 1e6).toFixed(2),
  goalSeconds: 60,
  winner: row(o.winner),
  seedRecipe: o.seedRecipe >= 0 ? row(o.seedRecipe) : null,
  cpu: (await import('./machine.mjs')).cpuInfo(),
  node: process.version,
  loadavg: { start: load0.map((x) => +x.toFixed(2)), end: os.loadavg().map((x) => +x.toFixed(2)) },
}, null, 1));
