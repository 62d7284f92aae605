// Renders an HTML report and screenshots it (full page) in headless Chromium driven by playwright-core,
// with every request that is not the report file itself or a data: URI refused and counted, to check
// that the self-contained report displays with nothing fetched: its charts, and its thumbnails decoded.
//   node bench/report-screenshot.mjs [--run RUN [--data DATA] [--cache DIR]] [--out DIR]
// Without --run: a synthetic 10-class run with a real sweep (worker-less) over synthetic features and
// generated images, so the sweep section and the thumbnails are there too.
// Needs Debian's chromium (apt-get install -y chromium; VIEWPROBE_CHROMIUM overrides /usr/bin/chromium).
// Build first: npm run build. Prints JSON {html, png, svgs, images, imagesDecoded, refusedRequests, ...}.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';

const argv = process.argv.slice(2);
const opt = (name) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? argv[i + 1] : undefined; };
const outDir = resolve(opt('out') ?? join(tmpdir(), 'viewprobe-report-check'));
mkdirSync(outDir, { recursive: true });
const htmlFile = join(outDir, 'report.html');
const pngFile = join(outDir, 'report.png');
const CHROMIUM = process.env.VIEWPROBE_CHROMIUM ?? '/usr/bin/chromium';
if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set VIEWPROBE_CHROMIUM)`);

if (opt('run')) {
  const { runEval } = await import('../dist/cli/eval.js');
  const a = { run: opt('run'), json: false, report: htmlFile, force: true, engine: 'auto', device: 'auto' };
  if (opt('data')) a.data = opt('data');
  if (opt('cache')) a.cache = opt('cache');
  // eval prints its table on stdout; this script's stdout is its JSON line
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = (chunk, ...rest) => process.stderr.write(chunk, ...rest);
  try {
    await runEval(a);
  } finally {
    process.stdout.write = write;
  }
} else {
  await syntheticReport();
}

const { chromium } = await import('playwright-core');
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];
const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
let result;
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const refused = [];
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  await page.route('**/*', (route) => {
    const url = route.request().url();
    if (url === `file://${htmlFile}` || url.startsWith('data:')) return route.continue();
    refused.push(url);
    return route.abort();
  });
  await page.goto(`file://${htmlFile}`, { waitUntil: 'load' });
  const facts = await page.evaluate(() => ({
    height: document.documentElement.scrollHeight,
    width: document.documentElement.scrollWidth,
    svgs: document.querySelectorAll('svg').length,
    images: document.images.length,
    imagesDecoded: [...document.images].filter((i) => i.complete && i.naturalWidth > 0).length,
    placeholders: document.querySelectorAll('.thumb.missing').length,
    sections: [...document.querySelectorAll('h2')].map((h) => h.textContent),
  }));
  await page.screenshot({ path: pngFile, fullPage: true });
  result = { ...facts, refusedRequests: refused, consoleErrors };
} finally {
  await browser.close();
}
console.log(JSON.stringify({
  html: htmlFile,
  htmlBytes: statSync(htmlFile).size,
  png: pngFile,
  pngBytes: statSync(pngFile).size,
  ...result,
  chromium: execFileSync(CHROMIUM, ['--version']).toString().trim(),
}));

/** A 10-class synthetic run: trained head, a small real sweep, and val "photos" generated as files. */
async function syntheticReport() {
  const [{ evaluateScores, headEvalLogits }, { renderReport }, { sweep }, { describeTrial }, { reportMistakes }, { Rng }] = await Promise.all([
    import('../dist/eval/metrics.js'), import('../dist/eval/report.js'), import('../dist/train/sweep.js'),
    import('../dist/train/sweep-space.js'), import('../dist/cli/eval.js'), import('../dist/random.js'),
  ]);
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
  // one generated picture per val image: a gradient in a colour of its class
  const imgDir = join(outDir, 'images');
  mkdirSync(imgDir, { recursive: true });
  val.paths = await Promise.all(Array.from(val.labels, async (y, i) => {
    const file = join(imgDir, `${classes[y]}-${i}.png`);
    const w = 160, h = 120, raw = Buffer.alloc(w * h * 3);
    const hue = [(y * 97) % 256, (y * 53 + 80) % 256, (y * 151 + 40) % 256];
    for (let p = 0; p < w * h; p++) for (let c = 0; c < 3; c++) raw[p * 3 + c] = Math.min(255, hue[c] * (0.4 + 0.6 * (p % w) / w) + (i % 7) * 6);
    await sharp(raw, { raw: { width: w, height: h, channels: 3 } }).png().toFile(file);
    return file;
  }));
  const o = await sweep(train, val, classes, { grid: 'lr=3e-4,1e-3,3e-3,1e-2;transform=none,l2;views=aug,all;epochs=20', workers: 1 });
  const order = o.results.map((_, i) => i).sort((a, b) => o.results[b].score - o.results[a].score || a - b);
  const sweepView = {
    selection: o.selection, seconds: o.seconds, workers: o.workers, winner: o.winner, seedRecipe: o.seedRecipe,
    trials: o.results.map((r, i) => ({ trial: i, rank: order.indexOf(i) + 1, score: r.score, epoch: r.epoch, seconds: r.seconds, description: describeTrial(r.spec), spec: r.spec })),
  };
  const w = o.results[o.winner];
  const logits = headEvalLogits(o.head, val, classes);
  const ev = evaluateScores(logits, val.labels, classes);
  const html = await renderReport({
    title: 'viewprobe sweep run (synthetic check)',
    dataLabel: 'the val split (200 synthetic images)',
    history: w.history,
    best: { epoch: w.epoch, valAcc: w.score },
    eval: ev,
    sweep: sweepView,
    mistakes: await reportMistakes(logits, { features: val, classes, label: 'val', cache: '' }, ev.n - ev.correct),
    choseOnThisData: true,
    facts: [['run', 'synthetic'], ['options', JSON.stringify(w.spec)]],
  });
  writeFileSync(htmlFile, html);
}
