// The browser example for real: headless Chromium loads examples/browser/ from 127.0.0.1 with a
// model exported from a tiny run, is given photos through its file picker, and shows the same top-1
// as `viewprobe predict`. Photos already at the model's input size (PNG of viewprobe's own eval
// pixels) go through the page without resampling, so there the probabilities agree to 1e-4; for
// JPEGs the canvas resize is close to, not equal to, Pillow's.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ortNode from 'onnxruntime-node';
import type { BrowserContext } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { decodeImage } from '../../src/image/decode.js';
import { evalResizeFor, getPreset } from '../../src/image/presets.js';
import { resizeShortSide } from '../../src/image/resize.js';
import { runCli } from '../helpers/cli.js';
import { sharedPath } from '../helpers/shared.js';
import { CHROMIUM, CHROMIUM_FLAGS as FLAGS, describeBrowser } from '../helpers/browser.js';
import { cli, evalPixels, makeRun, predictProbs, runModel } from './helpers.js';

/** examples/browser/serve.mjs (plain JS, so that the example needs no build). */
interface ServeModule {
  startServer(o: { model: string; port?: number }): Promise<{ url: string; close(): Promise<void> }>;
}

interface Card { file: string; state: string; top1?: string; probs?: string; views?: string; text: string }
interface PageResult { cards: Card[]; classes: string[]; note: { state?: string; text: string }; errors: string[]; origins: string[] }

/** Loads the page at `url` in a new tab, waits for its model, gives it `files` and reads back what it shows. */
async function classifyInPage(ctx: BrowserContext, url: string, files: string[]): Promise<PageResult> {
  const page = await ctx.newPage();
  const errors: string[] = [];
  const origins = new Set<string>();
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('request', (r) => { if (!r.url().startsWith('data:') && !r.url().startsWith('blob:')) origins.add(new URL(r.url()).origin); });
  await page.goto(url);
  await page.waitForSelector('#model-status:not([data-state="loading"])', { timeout: 120_000 });
  expect(await page.getAttribute('#model-status', 'data-state'), await page.textContent('#model-status') ?? '').toBe('ready');
  await page.setInputFiles('#file', files);
  // (page-side code as strings: this project's typecheck has no DOM types)
  await page.waitForFunction(`document.querySelectorAll('.result[data-state="done"], .result[data-state="error"]').length === ${files.length}`, undefined, { timeout: 180_000 });
  const cards = await page.evaluate('[...document.querySelectorAll(".result")].map((e) => ({ ...e.dataset, text: e.textContent }))') as Card[];
  const note = await page.evaluate('({ state: document.getElementById("note").dataset.state, text: document.getElementById("note").textContent })') as PageResult['note'];
  const modelJson = new URL(url).searchParams.get('model') ?? 'model/model.json';
  const classes = await page.evaluate(async (m) => (await (await fetch(m)).json() as { classes: string[] }).classes, modelJson);
  await page.close();
  return { cards, classes, note, errors, origins: [...origins] };
}

describeBrowser('the browser example in headless Chromium', ['data/tiny/train.txt', 'weights/resnet18-random.safetensors', 'weights/ref-dog.jpg'], () => {
  const tmp = mkdtempSync(join(tmpdir(), 'vp-browser-'));
  const jpegs = [sharedPath('weights/ref-dog.jpg'), sharedPath('weights/ref-eagle.jpg'),
    sharedPath('data/tiny/val/beignets/1222571.jpg'), sharedPath('data/tiny/val/bibimbap/1004374.jpg')];
  const pngs = [join(tmp, 'giraffe-eval.png'), join(tmp, 'beet-salad-eval.png')];
  const probeSources = [[sharedPath('data/tiny/val/beignets/1385293.jpg'), join(tmp, 'beignets-probe.png')],
    [sharedPath('data/tiny/val/beignets/2650512.jpg'), join(tmp, 'beignets2-probe.png')],
    [sharedPath('weights/ref-eagle.jpg'), join(tmp, 'eagle-probe.png')]] as const;
  const probePngs = probeSources.map(([, png]) => png);
  const probeJpegs = [sharedPath('weights/ref-dog.jpg'), sharedPath('data/tiny/val/bibimbap/1004374.jpg')];
  let predicted: Map<string, { label: string; prob: number }[]>;
  let probePredicted: Map<string, number>[];
  let probeSingle: Float32Array[];
  let seed: PageResult;
  let probePage: PageResult;
  let unknownPage: PageResult;

  beforeAll(async () => {
    const cache = join(tmp, 'cache');
    const run = join(tmp, 'run');
    const weights = sharedPath('weights/resnet18-random.safetensors');
    for (const args of [
      ['extract', '--train', sharedPath('data/tiny/train.txt'), '--val', sharedPath('data/tiny/val.txt'), '--cache', cache,
        '--weights', weights, '--views', '0', '--engine', 'onnx'],
      ['train', '--cache', cache, '--out', run, '--epochs', '8', '--views', 'clean'],
      ['export', '--run', run, '--out', join(tmp, 'site-model', 'model.onnx')],
    ]) {
      const r = runCli(args);
      expect(r.status, r.stderr).toBe(0);
    }
    // viewprobe's own eval pixels, as lossless photos of exactly the input size
    const preset = getPreset('seed');
    for (const [src, dst] of [[sharedPath('weights/ref-giraffe.jpg'), pngs[0]!], [sharedPath('data/tiny/val/beet_salad/1263247.jpg'), pngs[1]!]] as const) {
      const e = preset.evalImage(await decodeImage(src));
      await sharp(Buffer.from(e.data), { raw: { width: e.width, height: e.height, channels: 3 } }).png().toFile(dst);
    }
    const p = runCli(['predict', '--run', run, '--top', '3', '--json', ...jpegs, ...pngs]);
    expect(p.status, p.stderr).toBe(0);
    const out = JSON.parse(p.stdout) as { image: string; top: { label: string; prob: number }[] }[];
    predicted = new Map(out.map((o) => [o.image, o.top]));

    // A probe-preset run (64 px, to stay quick), exported into a subfolder of the same site: its
    // model.json asks for the eval view and its mirror, averaged. Its PNGs are viewprobe's resized
    // pixels before the centre crop (shorter side 73 for 64), so neither viewprobe nor the canvas
    // resamples them and the page's crop and mirror are checked exactly.
    const probe = makeRun(tmp, 'probe', weights, 'probe', ['--size', '64']);
    const probeJson = join(tmp, 'site-model', 'probe', 'model.json');
    cli(['export', '--run', probe.run, '--out', join(tmp, 'site-model', 'probe', 'model.onnx')]);
    for (const [src, dst] of probeSources) {
      const r = resizeShortSide(await decodeImage(src), evalResizeFor(64));
      await sharp(Buffer.from(r.data), { raw: { width: r.width, height: r.height, channels: 3 } }).png().toFile(dst);
    }
    probePredicted = predictProbs(probe.run, 3, [...probePngs, ...probeJpegs]);
    const modelBytes = readFileSync(join(tmp, 'site-model', 'probe', 'model.onnx'));
    const single = await runModel(ortNode, modelBytes, await evalPixels('probe', probePngs, { size: 64 }), probePngs.length, 64);
    probeSingle = probePngs.map((_, i) => single.subarray(i * 3, (i + 1) * 3));
    // The same model, with a test-time view the page cannot make: it must say so and fall back to the eval view.
    const doctored = JSON.parse(readFileSync(probeJson, 'utf8')) as { testTimeViews: { extra: unknown[] } };
    doctored.testTimeViews.extra = [{ op: 'flip', axis: 1, what: 'the eval view turned upside down: reverse the height axis, axis 1 of the NHWC input' }];
    writeFileSync(join(tmp, 'site-model', 'probe', 'unknown.json'), JSON.stringify(doctored));

    const { chromium } = await import('playwright-core');
    const { startServer } = await import(new URL('../../examples/browser/serve.mjs', import.meta.url).href) as ServeModule;
    const server = await startServer({ model: join(tmp, 'site-model', 'model.json'), port: 0 });
    const ctx = await chromium.launchPersistentContext(join(tmp, 'profile'), { executablePath: CHROMIUM, headless: true, args: FLAGS });
    try {
      const withModel = (m: string) => { const u = new URL(server.url); u.searchParams.set('model', m); return u.href; };
      seed = await classifyInPage(ctx, server.url, [...jpegs, ...pngs]);
      probePage = await classifyInPage(ctx, withModel('model/probe/model.json'), [...probePngs, ...probeJpegs]);
      unknownPage = await classifyInPage(ctx, withModel('model/probe/unknown.json'), [probePngs[0]!]);
      for (const p of [seed, probePage, unknownPage]) {
        expect(p.errors).toEqual([]);
        expect(p.origins, 'the page fetches nothing but its own site').toEqual([new URL(server.url).origin]);
      }
    } finally {
      await ctx.close();
      await server.close();
    }
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  const cardIn = (p: PageResult, path: string) => p.cards.find((c) => c.file === path.split('/').pop())!;
  const card = (path: string) => cardIn(seed, path);

  it('shows predict\'s top-1 for photos the page resizes itself (canvas), probabilities close', () => {
    let worst = 0;
    for (const f of jpegs) {
      const c = card(f);
      expect(c.state, f).toBe('done');
      expect(c.top1, f).toBe(predicted.get(f)![0]!.label);
      const probs = JSON.parse(c.probs!) as number[];
      for (const t of predicted.get(f)!) worst = Math.max(worst, Math.abs(probs[seed.classes.indexOf(t.label)]! - t.prob));
    }
    console.log(`browser page vs predict on JPEGs resized by the canvas: max |Δp| = ${worst.toFixed(4)}`);
    expect(worst).toBeLessThan(0.05);
  });

  it('on photos already at the input size (no resampling), shows predict\'s top-1 and probabilities within 1e-4', () => {
    for (const f of pngs) {
      const c = card(f);
      expect(c.top1, f).toBe(predicted.get(f)![0]!.label);
      const probs = JSON.parse(c.probs!) as number[];
      for (const t of predicted.get(f)!) expect(Math.abs(probs[seed.classes.indexOf(t.label)]! - t.prob), `${f} ${t.label}`).toBeLessThan(1e-4);
    }
  });

  it('shows that the seed model runs the eval view alone, with no note', () => {
    for (const c of seed.cards) expect(JSON.parse(c.views!), c.file).toEqual(['eval view']);
    expect(seed.note).toEqual({ state: undefined, text: '' });
  });

  // Tolerance 1e-4, as for the seed PNGs above: onnxruntime-web's wasm kernels against node's CPU
  // provider on the same uint8 pixels (the export tests measure ~1e-7 for the model alone), plus the
  // page's float64 mean and softmax against predict's float32 ones (~1e-7). The mirror moves these
  // photos' probabilities by far more than that (checked below), so the eval view alone would fail.
  it('for a probe run, averages the eval view and its mirror: predict\'s probabilities within 1e-4, not the eval view\'s', () => {
    expect(probePage.note.state).toBe('views');
    expect(probePage.note.text).toContain('2 views in one batch (eval view, mirrored left-right)');
    let worst = 0;
    let closestSingle = Infinity;
    for (const [i, f] of probePngs.entries()) {
      const c = cardIn(probePage, f);
      expect(c.state, f).toBe('done');
      expect(JSON.parse(c.views!), f).toEqual(['eval view', 'mirrored left-right']);
      expect(c.text, f).toContain('Logits averaged over 2 views: eval view + mirrored left-right.');
      const probs = JSON.parse(c.probs!) as number[];
      let fromSingle = 0;
      let predictFromSingle = 0;
      probePage.classes.forEach((label, j) => {
        const want = probePredicted[i]!.get(label)!;
        worst = Math.max(worst, Math.abs(probs[j]! - want));
        fromSingle = Math.max(fromSingle, Math.abs(probs[j]! - probeSingle[i]![j]!));
        predictFromSingle = Math.max(predictFromSingle, Math.abs(want - probeSingle[i]![j]!));
      });
      // these photos were picked because their mirror matters: the eval view alone is > 10x the tolerance from predict
      expect(predictFromSingle, f).toBeGreaterThan(1e-3);
      expect(fromSingle, f).toBeGreaterThan(1e-3);
      closestSingle = Math.min(closestSingle, predictFromSingle);
    }
    console.log(`probe run (64 px) in the page vs predict on PNGs (no resampling): max |Δp| = ${worst.toExponential(1)}; ` +
      `the eval view alone is ${closestSingle.toFixed(4)} or more from predict on each`);
    expect(worst).toBeLessThan(1e-4);
  });

  it('for a probe run, shows predict\'s top-1 for photos the canvas resizes', () => {
    let worst = 0;
    for (const [k, f] of probeJpegs.entries()) {
      const c = cardIn(probePage, f);
      expect(c.state, f).toBe('done');
      expect(JSON.parse(c.views!), f).toEqual(['eval view', 'mirrored left-right']);
      const want = probePredicted[probePngs.length + k]!;
      const probs = JSON.parse(c.probs!) as number[];
      expect(c.top1, f).toBe([...want.entries()].sort((a, b) => b[1] - a[1])[0]![0]);
      probePage.classes.forEach((label, j) => { worst = Math.max(worst, Math.abs(probs[j]! - want.get(label)!)); });
    }
    console.log(`probe run (64 px) in the page vs predict on JPEGs resized by the canvas: max |Δp| = ${worst.toFixed(4)}`);
    expect(worst).toBeLessThan(0.05);
  });

  it('says so, visibly, when model.json asks for a test-time view the page cannot make, and shows the eval view alone', () => {
    expect(unknownPage.note.state).toBe('warning');
    expect(unknownPage.note.text).toContain('asks for 2 test-time views per photo');
    expect(unknownPage.note.text).toContain('this page does not know how to make the view {"op":"flip","axis":1} (“the eval view turned upside down');
    const c = cardIn(unknownPage, probePngs[0]!);
    expect(c.state).toBe('done');
    expect(JSON.parse(c.views!)).toEqual(['eval view']);
    expect(c.text).toContain('Eval view only: not the 2-view average that viewprobe predict gives');
    const probs = JSON.parse(c.probs!) as number[];
    probs.forEach((p, j) => expect(Math.abs(p - probeSingle[0]![j]!)).toBeLessThan(1e-4));
  });
});
