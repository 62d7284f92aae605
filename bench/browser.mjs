#!/usr/bin/env node
// The browser example's time per photo, as a user sees it: headless Chromium loads
// examples/browser/ (served by its serve.mjs from 127.0.0.1), is given photos through the file
// picker, and the page's own per-photo times (decode + canvas resize + onnxruntime-web) are read
// back. Exported models of tiny runs (resnet18-random at 244 px, resnet50-keras at 224 px: the time
// depends on the backbone, not the data); onnxruntime-web threads 1 and 2; interleaved rounds. Also
// how often the page's top-1 equals `viewprobe predict`'s on the same photos. Prints one JSON object.
//
//   npm run build && node bench/browser.mjs [--rounds 3] [--photos 10] [--threads 1,2] [--chromium /usr/bin/chromium]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { sharedPath } = await import(join(root, 'dist', 'shared.js'));
const { startServer } = await import(join(root, 'examples', 'browser', 'serve.mjs'));
const { chromium } = await import('playwright-core');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const rounds = Number(arg('rounds', 3));
const nPhotos = Number(arg('photos', 10));
const threadList = arg('threads', '1,2').split(',').map(Number);
const executablePath = arg('chromium', '/usr/bin/chromium');
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

const tmp = mkdtempSync(join(tmpdir(), 'vp-bench-browser-'));
const vp = (args) => {
  const r = spawnSync(process.execPath, [join(root, 'bin', 'viewprobe.js'), ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`viewprobe ${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
  return r.stdout;
};
const photos = [
  ...['dog', 'eagle', 'giraffe'].map((p) => sharedPath(`weights/ref-${p}.jpg`)),
  ...readFileSync(sharedPath('data/tiny/val.txt'), 'utf8').trim().split('\n').map((l) => sharedPath('data/tiny', l.split(' ')[0])),
].slice(0, nPhotos);

const models = [
  { name: 'resnet18-random', weights: 'weights/resnet18-random.safetensors', preset: 'seed' },
  { name: 'resnet50-keras', weights: 'weights/resnet50-keras.safetensors', preset: 'standard' },
].map((m) => {
  const cache = join(tmp, `cache-${m.name}`);
  const run = join(tmp, `run-${m.name}`);
  const out = join(tmp, `model-${m.name}`, 'model.onnx');
  vp(['extract', '--train', sharedPath('data/tiny/train.txt'), '--val', sharedPath('data/tiny/val.txt'), '--cache', cache,
    '--weights', sharedPath(m.weights), '--views', '0', '--preset', m.preset, '--engine', 'onnx']);
  vp(['train', '--cache', cache, '--out', run, '--views', 'clean', '--epochs', '10']);
  vp(['export', '--run', run, '--out', out]);
  const side = JSON.parse(readFileSync(join(dirname(out), 'model.json'), 'utf8'));
  const predicted = JSON.parse(vp(['predict', '--run', run, '--top', String(side.classes.length), '--json', ...photos]));
  return { ...m, out, bytes: statSync(out).size, inputSize: side.transform.inputSize, classes: side.classes, predicted };
});

async function pageRun(model, threads) {
  const server = await startServer({ model: model.out, port: 0 });
  const ctx = await chromium.launchPersistentContext(join(tmp, `profile-${Math.random().toString(36).slice(2)}`), { executablePath, headless: true, args: FLAGS });
  try {
    const page = ctx.pages()[0] ?? await ctx.newPage();
    const t0 = Date.now();
    await page.goto(`${server.url}&threads=${threads}`);
    await page.waitForSelector('#model-status[data-state="ready"]', { timeout: 300_000 });
    const loadMs = Date.now() - t0;
    const status = await page.textContent('#model-status');
    // one photo at a time, as a user picks them
    for (let i = 0; i < photos.length; i++) {
      await page.setInputFiles('#file', photos[i]);
      await page.waitForFunction(`document.querySelectorAll('.result[data-state="done"]').length === ${i + 1}`, undefined, { timeout: 300_000 });
    }
    const cards = (await page.evaluate('[...document.querySelectorAll(".result")].map((e) => ({ ...e.dataset }))')).reverse();
    return { loadMs, status, cards };
  } finally {
    await ctx.close();
    await server.close();
  }
}

const median = (a) => { const s = [...a].sort((x, y) => x - y); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const load0 = loadavg();
const samples = {};
for (let r = 0; r < rounds; r++) {
  for (const m of models) {
    for (const t of threadList) {
      const key = `${m.name} threads=${t}`;
      const res = await pageRun(m, t);
      const s = (samples[key] ??= { model: m, threads: t, perPhoto: [], modelOnly: [], first: [], loadMs: [], status: res.status, agree: 0, total: 0, maxDp: 0 });
      s.loadMs.push(res.loadMs);
      res.cards.forEach((c, i) => {
        // the first photo of a page pays one-time costs (wasm compilation caches, allocator growth)
        (i === 0 ? s.first : s.perPhoto).push(Number(c.ms));
        if (i > 0) s.modelOnly.push(Number(c.modelMs));
        const want = m.predicted[i].top;
        s.total++;
        if (c.top1 === want[0].label) s.agree++;
        const probs = JSON.parse(c.probs);
        for (const w of want) s.maxDp = Math.max(s.maxDp, Math.abs(probs[m.classes.indexOf(w.label)] - w.prob));
      });
    }
  }
}
const chromiumVersion = execFileSync(executablePath, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
const { cpuInfo } = await import('./machine.mjs');
console.log(JSON.stringify({
  bench: 'browser example: time per photo in headless Chromium (decode + canvas resize + onnxruntime-web wasm), one photo at a time',
  cpu: cpuInfo(), loadavgBefore: load0, loadavgAfter: loadavg(), chromium: chromiumVersion,
  rounds, photosPerPage: photos.length,
  results: Object.entries(samples).map(([key, s]) => ({
    config: key,
    modelBytes: s.model.bytes,
    inputSize: s.model.inputSize,
    page: s.status,
    msPerPhotoMedian: Math.round(median(s.perPhoto)),
    msPerPhotoRange: [Math.round(Math.min(...s.perPhoto)), Math.round(Math.max(...s.perPhoto))],
    modelMsMedian: Math.round(median(s.modelOnly)),
    firstPhotoMs: s.first.map(Math.round),
    pageLoadMs: s.loadMs,
    top1SameAsPredict: `${s.agree}/${s.total}`,
    maxAbsProbDiffVsPredict: Number(s.maxDp.toFixed(4)),
  })),
}, null, 1));
rmSync(tmp, { recursive: true, force: true });
