// The browser example for real: headless Chromium loads examples/browser/ from 127.0.0.1 with a
// model exported from a tiny run, is given photos through its file picker, and shows the same top-1
// as `viewprobe predict`. Photos already at the model's input size (PNG of viewprobe's own eval
// pixels) go through the page without resampling, so there the probabilities agree to 1e-4; for
// JPEGs the canvas resize is close to, not equal to, Pillow's.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { decodeImage } from '../../src/image/decode.js';
import { getPreset } from '../../src/image/presets.js';
import { runCli } from '../helpers/cli.js';
import { sharedPath } from '../helpers/shared.js';
import { CHROMIUM, CHROMIUM_FLAGS as FLAGS, describeBrowser } from '../helpers/browser.js';

/** examples/browser/serve.mjs (plain JS, so that the example needs no build). */
interface ServeModule {
  startServer(o: { model: string; port?: number }): Promise<{ url: string; close(): Promise<void> }>;
}

interface Card { file: string; state: string; top1?: string; probs?: string }

describeBrowser('the browser example in headless Chromium', ['data/tiny/train.txt', 'weights/resnet18-random.safetensors', 'weights/ref-dog.jpg'], () => {
  const tmp = mkdtempSync(join(tmpdir(), 'vp-browser-'));
  const jpegs = [sharedPath('weights/ref-dog.jpg'), sharedPath('weights/ref-eagle.jpg'),
    sharedPath('data/tiny/val/beignets/1222571.jpg'), sharedPath('data/tiny/val/bibimbap/1004374.jpg')];
  const pngs = [join(tmp, 'giraffe-eval.png'), join(tmp, 'beet-salad-eval.png')];
  let predicted: Map<string, { label: string; prob: number }[]>;
  let cards: Card[];
  let classes: string[];

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

    const { chromium } = await import('playwright-core');
    const { startServer } = await import(new URL('../../examples/browser/serve.mjs', import.meta.url).href) as ServeModule;
    const server = await startServer({ model: join(tmp, 'site-model', 'model.json'), port: 0 });
    const ctx = await chromium.launchPersistentContext(join(tmp, 'profile'), { executablePath: CHROMIUM, headless: true, args: FLAGS });
    try {
      const page = ctx.pages()[0] ?? await ctx.newPage();
      const errors: string[] = [];
      const origins = new Set<string>();
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('request', (r) => { if (!r.url().startsWith('data:') && !r.url().startsWith('blob:')) origins.add(new URL(r.url()).origin); });
      await page.goto(server.url);
      await page.waitForSelector('#model-status:not([data-state="loading"])', { timeout: 120_000 });
      expect(await page.getAttribute('#model-status', 'data-state'), await page.textContent('#model-status') ?? '').toBe('ready');
      await page.setInputFiles('#file', [...jpegs, ...pngs]);
      const n = jpegs.length + pngs.length;
      // (page-side code as strings: this project's typecheck has no DOM types)
      await page.waitForFunction(`document.querySelectorAll('.result[data-state="done"], .result[data-state="error"]').length === ${n}`, undefined, { timeout: 180_000 });
      cards = await page.evaluate('[...document.querySelectorAll(".result")].map((e) => ({ ...e.dataset }))') as Card[];
      classes = await page.evaluate(async () => (await (await fetch('model/model.json')).json() as { classes: string[] }).classes);
      expect(errors).toEqual([]);
      expect([...origins], 'the page fetches nothing but its own site').toEqual([new URL(server.url).origin]);
    } finally {
      await ctx.close();
      await server.close();
    }
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  const card = (path: string) => cards.find((c) => c.file === path.split('/').pop())!;

  it('shows predict\'s top-1 for photos the page resizes itself (canvas), probabilities close', () => {
    let worst = 0;
    for (const f of jpegs) {
      const c = card(f);
      expect(c.state, f).toBe('done');
      expect(c.top1, f).toBe(predicted.get(f)![0]!.label);
      const probs = JSON.parse(c.probs!) as number[];
      for (const t of predicted.get(f)!) worst = Math.max(worst, Math.abs(probs[classes.indexOf(t.label)]! - t.prob));
    }
    console.log(`browser page vs predict on JPEGs resized by the canvas: max |Δp| = ${worst.toFixed(4)}`);
    expect(worst).toBeLessThan(0.05);
  });

  it('on photos already at the input size (no resampling), shows predict\'s top-1 and probabilities within 1e-4', () => {
    for (const f of pngs) {
      const c = card(f);
      expect(c.top1, f).toBe(predicted.get(f)![0]!.label);
      const probs = JSON.parse(c.probs!) as number[];
      for (const t of predicted.get(f)!) expect(Math.abs(probs[classes.indexOf(t.label)]! - t.prob), `${f} ${t.label}`).toBeLessThan(1e-4);
    }
  });
});
