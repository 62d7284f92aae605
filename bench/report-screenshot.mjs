// Renders a report for a synthetic 10-class run (or for a real run with --run RUN) and screenshots it in
// headless Chromium, to check that the self-contained HTML displays with the network cut off.
// Needs Debian's chromium (apt-get install -y chromium). Build first: npx tsc -p tsconfig.json
//   node bench/report-screenshot.mjs [--run RUN] [--out DIR]      prints JSON {html, png, ...}
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { evaluateHead } from '../dist/eval/metrics.js';
import { renderReport } from '../dist/eval/report.js';
import { trainHead } from '../dist/train/loop.js';
import { Rng } from '../dist/random.js';

const argv = process.argv.slice(2);
const opt = (name) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? argv[i + 1] : undefined; };
const outDir = resolve(opt('out') ?? join(tmpdir(), 'viewprobe-report-check'));
mkdirSync(outDir, { recursive: true });
const htmlFile = join(outDir, 'report.html');
const pngFile = join(outDir, 'report.png');

let html;
if (opt('run')) {
  const { runEval } = await import('../dist/cli/eval.js');
  await runEval({ run: opt('run'), json: false, report: htmlFile });
} else {
  // Overlapping classes so the confusion matrix has off-diagonal mass.
  const rng = new Rng(1, 5);
  const classes = ['apple_pie', 'baby_back_ribs', 'baklava', 'beef_carpaccio', 'beef_tartare', 'beet_salad', 'beignets', 'bibimbap', 'bread_pudding', 'breakfast_burrito'];
  const dim = 64, nc = classes.length;
  const means = Float32Array.from({ length: nc * dim }, () => rng.uniform());
  const make = (n, views, name) => {
    const labels = Int32Array.from({ length: n }, (_, i) => i % nc);
    const fill = (count) => {
      const a = new Float32Array(count * dim);
      for (let r = 0; r < count; r++) { const y = labels[Math.floor(r / Math.max(1, count / n))]; for (let j = 0; j < dim; j++) a[r * dim + j] = means[y * dim + j] + (rng.uniform() - 0.5) * 2.2; }
      return a;
    };
    return { split: name, dim, paths: [], hashes: [], labels, views, aug: fill(n * views), clean: fill(n) };
  };
  const train = make(400, 5, 'train'), val = make(200, 0, 'val');
  const r = await trainHead(train, val, classes, { epochs: 50 });
  html = await renderReport({
    title: 'viewprobe run (synthetic check)',
    dataLabel: 'the val split (200 synthetic images)',
    history: r.history,
    best: { epoch: r.best.epoch, valAcc: r.best.valAcc },
    final: { epoch: r.last.epoch, valAcc: r.last.valAcc },
    eval: evaluateHead(r.best.head, val, classes),
    facts: [['run', 'synthetic'], ['options', JSON.stringify(r.options)]],
  });
  writeFileSync(htmlFile, html);
}

const chromium = ['chromium', 'chromium-browser', 'google-chrome'].map((c) => { try { return execFileSync('which', [c]).toString().trim(); } catch { return ''; } }).find(Boolean);
if (!chromium) throw new Error('chromium not found (apt-get install -y chromium)');
execFileSync(chromium, [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', `--screenshot=${pngFile}`, '--window-size=1200,1600', `file://${htmlFile}`,
], { stdio: 'pipe', timeout: 60_000 });
console.log(JSON.stringify({
  html: htmlFile,
  htmlBytes: statSync(htmlFile).size,
  png: pngFile,
  pngBytes: existsSync(pngFile) ? statSync(pngFile).size : 0,
  chromium: execFileSync(chromium, ['--version']).toString().trim(),
}));
