#!/usr/bin/env node
// The demo: extract (small K) + train + eval with an HTML report, on ../shared/data/food101-10 with
// the only pretrained weights this environment has (Keras ResNet50). Re-running reuses the cache.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const shared = resolve(process.env.VIEWPROBE_SHARED ?? join(root, '..', 'shared'));
const data = join(shared, 'data', 'food101-10');
const weights = process.env.VIEWPROBE_DEMO_WEIGHTS ?? join(shared, 'weights', 'resnet50-keras.safetensors');
const views = process.env.VIEWPROBE_DEMO_VIEWS ?? '2';
const cache = join(root, 'cache', 'demo-food101-10');
const run = join(root, 'runs', 'demo');
const report = join(run, 'report.html');

for (const [what, p] of [['data', data], ['weights', weights]]) {
  if (!existsSync(p)) {
    console.error(`demo: ${what} not found at ${p}; set VIEWPROBE_SHARED to the folder that holds data/ and weights/`);
    process.exit(2);
  }
}

function viewprobe(args) {
  console.error(`\n$ viewprobe ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [join(root, 'bin', 'viewprobe.js'), ...args], { stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`demo: viewprobe ${args[0]} exited with ${r.status ?? r.signal}`);
    process.exit(r.status ?? 1);
  }
}

const t0 = Date.now();
viewprobe(['extract', '--train', join(data, 'train.txt'), '--val', join(data, 'val.txt'), '--cache', cache,
  '--weights', weights, '--views', views]);
viewprobe(['train', '--cache', cache, '--out', run, '--views', process.env.VIEWPROBE_DEMO_TRAIN_VIEWS ?? 'clean']);
viewprobe(['eval', '--run', run, '--report', report]);
console.error(`\ndemo: done in ${((Date.now() - t0) / 1000).toFixed(0)} s; report: ${report}`);
