// The report as a browser shows it: headless Chromium opens the HTML of a sweep run with mistakes,
// with every request other than the file itself refused. Nothing is fetched, every thumbnail decodes,
// every chart is there, and nothing is wider than a 1200 px window (long class names, paths, options).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, expect, it } from 'vitest';
import { evaluateScores } from '../../src/eval/metrics.js';
import { renderReport, type MistakeView, type SweepView } from '../../src/eval/report.js';
import { SEED_RECIPE, type TrialSpec } from '../../src/train/sweep-space.js';
import { CHROMIUM, CHROMIUM_FLAGS, describeBrowser } from '../helpers/browser.js';

const tmp = mkdtempSync(join(tmpdir(), 'vp-report-browser-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describeBrowser('the HTML report in headless Chromium', [], () => {
  it('shows the sweep charts and the thumbnails with nothing fetched, and fits a 1200 px window', async () => {
    const classes = Array.from({ length: 12 }, (_, i) => `a_rather_long_class_name_number_${i}`);
    const n = 120;
    const labels = Array.from({ length: n }, (_, i) => i % 12);
    const scores = labels.flatMap((y, i) => classes.map((_, c) => (c === y ? 2 : 0) + (c === (y + 1 + (i % 3)) % 12 ? 2.5 * ((i * 7) % 5) / 4 : 0)));
    const ev = evaluateScores(scores, labels, classes);
    const specs: TrialSpec[] = [SEED_RECIPE, ...[1e-1, 1e-3, 1e-5].map((l2): TrialSpec => ({ solver: 'lbfgs', views: 'clean', transform: 'power+l2', l2, maxIter: 150 })),
      ...[1e-4, 1e-2].map((lr): TrialSpec => ({ ...SEED_RECIPE, name: undefined, lr, batch: 256, views: 'all' }))];
    const sweep: SweepView = {
      selection: { kind: 'val', label: 'val accuracy (120 images of the cache\'s val split)' }, seconds: 1, workers: 2, winner: 2, seedRecipe: 0,
      trials: specs.map((spec, i) => ({ trial: i, rank: [4, 5, 1, 2, 3, 6][i]!, score: [0.7, 0.68, 0.8, 0.75, 0.72, 0.5][i]!, epoch: 1, seconds: 0.1, description: `trial ${i} ${spec.solver}`, spec })),
    };
    const photo = await sharp({ create: { width: 300, height: 200, channels: 3, background: '#c06030' } }).jpeg().toBuffer();
    const items: MistakeView[] = Array.from({ length: 12 }, (_, i) => ({
      file: `/a/very/long/path/that/goes/on/and/on/${'x'.repeat(80)}/${i}.jpg`, truth: classes[i]!, predicted: classes[(i + 1) % 12]!, prob: 0.9 - i / 100, trueProb: 0.05,
      ...(i === 3 ? { thumbnail: null, problem: 'file not found' } : { thumbnail: `data:image/jpeg;base64,${photo.toString('base64')}` }),
    }));
    const file = join(tmp, 'report.html');
    writeFileSync(file, await renderReport({
      title: 'viewprobe sweep run /runs/x', dataLabel: 'the val split', history: [], eval: ev, sweep, mistakes: { items, wrong: ev.n - ev.correct },
      choseOnThisData: true, facts: [['options', JSON.stringify({ ...SEED_RECIPE, note: 'y'.repeat(300) })]],
    }));

    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS });
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
      const refused: string[] = [];
      await page.route('**/*', (route) => {
        const url = route.request().url();
        if (url === `file://${file}` || url.startsWith('data:')) return route.continue();
        refused.push(url);
        return route.abort();
      });
      await page.goto(`file://${file}`, { waitUntil: 'load' });
      // a string, evaluated in the page (the tests are compiled without the DOM's types)
      const got = await page.evaluate(`({
        width: document.documentElement.scrollWidth,
        charts: document.querySelectorAll('figure > svg').length,
        images: document.images.length,
        decoded: [...document.images].filter((i) => i.complete && i.naturalWidth > 0).length,
        placeholders: document.querySelectorAll('.thumb.missing').length,
      })`) as { width: number; charts: number; images: number; decoded: number; placeholders: number };
      expect(refused).toEqual([]);
      expect(got.width).toBeLessThanOrEqual(1200);
      // the leaderboard, the 6 settings that varied (solver, views, transform, lr, batch, L-BFGS penalty), the confusion matrix
      expect(got.charts).toBe(1 + 6 + 1);
      expect(got).toMatchObject({ images: 11, decoded: 11, placeholders: 1 });
    } finally {
      await browser.close();
    }
  });
});
