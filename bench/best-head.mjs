#!/usr/bin/env node
// The recommended flow at full size, measured honestly (issue 10): for each candidate feature set,
//   viewprobe extract --train TRAIN --preset probe --views 4 [...]   (training images only)
//   viewprobe sweep --select cv                                       (5-fold CV on train chooses)
//   viewprobe eval --run RUN --data VAL                                (val took no part in choosing)
// beside the seed recipe's clean-view head on the seed preset (extract --views 0, train --views clean
// --seed S; its epoch is chosen ON val, so that baseline is optimistic and the gain conservative).
// Caches and runs go under --work and are reused by a rerun (extract only adds what is missing).
//
//   npm run build && node bench/best-head.mjs [--work DIR] [--data DIR] [--weights FILE]
//        [--configs probe-224,probe-224-l43,probe] [--seeds 0,1,2,3,4] [--views 4]
// Prints one JSON object on stdout; the CLI's progress goes to stderr. ~30 min on 2 cores for
// food101-10 with resnet50-keras (three feature sets).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const cli = join(here, '..', 'bin', 'viewprobe.js');
const { sharedPath } = await import(join(here, '..', 'dist', 'shared.js'));

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const work = resolve(arg('work', 'bench-best-head'));
const data = resolve(arg('data', sharedPath('data/food101-10')));
const weights = resolve(arg('weights', sharedPath('weights/resnet50-keras.safetensors')));
const views = arg('views', '4');
const seeds = arg('seeds', '0,1,2,3,4').split(',').map(Number);
const CONFIGS = {
  probe: ['--preset', 'probe'], // 288 px since this bench chose it
  'probe-224': ['--preset', 'probe', '--size', '224'],
  'probe-224-l43': ['--preset', 'probe', '--size', '224', '--layers', '4,3'],
  standard: ['--preset', 'standard'],
};
const configs = arg('configs', 'probe-224,probe-224-l43,probe').split(',');
for (const c of configs) if (!CONFIGS[c]) throw new Error(`unknown config ${c} (have ${Object.keys(CONFIGS).join(', ')})`);
for (const f of [join(data, 'train.txt'), join(data, 'val.txt'), weights]) {
  if (!existsSync(f)) {
    console.error(`bench: ${f} is missing`);
    process.exit(2);
  }
}
mkdirSync(work, { recursive: true });

/** Runs the CLI with --json; returns its parsed stdout and the wall seconds. */
function vp(args) {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [cli, ...args, '--json'], { stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 28, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`viewprobe ${args.join(' ')} exited ${r.status}`);
  return { out: JSON.parse(r.stdout), seconds: +((performance.now() - t0) / 1000).toFixed(1) };
}
const pct = (x) => +(100 * x).toFixed(2);
const mean = (xs) => xs.reduce((s, x) => s + x, 0) / xs.length;
const train = join(data, 'train.txt');
const val = join(data, 'val.txt');
const load0 = loadavg();

// The baseline: the seed recipe on the seed preset's clean view.
const seedCache = join(work, 'cache-seed');
const seedExtract = vp(['extract', '--train', train, '--val', val, '--cache', seedCache, '--preset', 'seed', '--views', '0', '--weights', weights]);
const seedRuns = seeds.map((s) => {
  const r = vp(['train', '--cache', seedCache, '--out', join(work, `runs/seed-clean-${s}`), '--force', '--views', 'clean', '--seed', String(s)]);
  return { seed: s, valAcc: pct(r.out.best.valAcc), epoch: r.out.best.epoch };
});
const baseline = mean(seedRuns.map((r) => r.valAcc));

const results = [];
for (const name of configs) {
  const cache = join(work, `cache-${name}`);
  const run = join(work, `runs/sweep-cv-${name}`);
  const ex = vp(['extract', '--train', train, '--cache', cache, '--views', views, '--weights', weights, ...CONFIGS[name]]);
  const sw = vp(['sweep', '--cache', cache, '--out', run, '--force', '--select', 'cv']);
  const ev = vp(['eval', '--run', run, '--data', val, '--weights', weights]);
  results.push({
    config: name,
    extract: { flags: CONFIGS[name], views: Number(views), extracted: ex.out.extracted, seconds: ex.seconds },
    sweep: {
      seconds: sw.seconds, trialsPerSecond: sw.out.trialsPerSecond, selection: sw.out.selection.label,
      winner: { description: sw.out.winner.description, cvScore: pct(sw.out.winner.score) },
      seedRecipe: sw.out.seedRecipe ? { cvScore: pct(sw.out.seedRecipe.score), rank: sw.out.seedRecipe.rank } : null,
    },
    heldOut: { data: val, images: ev.out.eval.n, accuracy: pct(ev.out.eval.accuracy), seconds: ev.seconds },
    gainOverSeedRecipe: +(pct(ev.out.eval.accuracy) - baseline).toFixed(2),
  });
}

console.log(JSON.stringify({
  bench: 'best-head',
  data, weights, views: Number(views),
  baseline: {
    what: 'seed recipe, seed preset clean view, best epoch chosen on val (optimistic)', seeds: seedRuns, meanValAcc: +baseline.toFixed(2),
    extractSeconds: seedExtract.seconds,
  },
  results,
  cpu: (await import('./machine.mjs')).cpuInfo(), node: process.version,
  loadavg: { start: load0.map((x) => +x.toFixed(2)), end: loadavg().map((x) => +x.toFixed(2)) },
}, null, 1));
