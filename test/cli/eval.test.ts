import { readFile, rm, writeFile } from 'node:fs/promises';
import sharp from 'sharp';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { REPORT_MISTAKES, formatEval, runEval } from '../../src/cli/eval.js';
import { loadRun } from '../../src/run/run.js';
import { runTrain } from '../../src/cli/train.js';
import { runSweep } from '../../src/cli/sweep.js';
import { capture, fingerprint, memoryCache, noisy, separable, useTempDir } from '../train/fixtures.js';
import { argsWith } from '../helpers/args.js';
import { evalBuilder, sweepBuilder, trainBuilder } from '../../src/cli/commands.js';

describe('viewprobe eval (from the run and its cache)', () => {
  const dir = useTempDir('viewprobe-eval-');
  let run: string;
  // Noisier than the train tests' fixture so that the head is not perfect and the confusion matrix is interesting.
  const s = separable({ classes: 5, dim: 8, perClass: 12, valPerClass: 9 });
  const summary = { fingerprint: fingerprint(8), fingerprintId: 'fp-eval', classes: s.classes };
  const openCache = memoryCache({ train: s.train, val: s.val }, summary);

  beforeAll(async () => {
    run = join(dir(), 'run');
    capture();
    await runTrain(argsWith(trainBuilder, { cache: join(dir(), 'cache'), out: run, epochs: 6, lr: 5e-3, stepSize: 5, gamma: 0.5, batch: 8, seed: 1, views: 'aug', json: false }), { openCache });
    vi.restoreAllMocks();
  });
  afterEach(() => vi.restoreAllMocks());

  it('prints best and final accuracy as the tutorial does, per-class accuracy and the confusion matrix', async () => {
    const io = capture();
    expect(await runEval(argsWith(evalBuilder, { run, json: false }), { openCache })).toBe(0);
    vi.restoreAllMocks();
    const hist = JSON.parse(await readFile(join(run, 'history.json'), 'utf8'));
    const text = io.out.join('');
    expect(text).toContain(`Best val acc ${(hist.best.valAcc * 100).toFixed(1)}% at epoch ${hist.best.epoch}`);
    expect(text).toContain(`Final val acc ${(hist.final.valAcc * 100).toFixed(1)}% (epoch 6)`);
    expect(text).toMatch(/Best head on the val split of .* \(45 images\): accuracy \d+\.\d%, top-5 100\.0%, loss \d\.\d{4}/);
    for (const c of s.classes) expect(text).toContain(`  ${c}`);
    expect(text).toContain('Confusion matrix (rows: true class, columns: predicted class index):');
    expect(io.err).toEqual([]); // the result goes to stdout, so `eval > result.txt` captures it
  });

  it('--json: one object whose confusion matrix sums to the number of val images', async () => {
    const io = capture();
    await runEval(argsWith(evalBuilder, { run, json: true }), { openCache });
    vi.restoreAllMocks();
    expect(io.out).toHaveLength(1);
    const j = JSON.parse(io.out[0]!);
    expect(j.eval.n).toBe(45);
    expect(j.eval.confusion.flat().reduce((a: number, b: number) => a + b, 0)).toBe(45);
    expect(j.eval.perClass.map((c: { n: number }) => c.n)).toEqual([9, 9, 9, 9, 9]);
    expect(j.eval.topK).toBe(5);
    // The best head scored again on the same features gives the accuracy recorded at its epoch.
    expect(j.eval.accuracy).toBeCloseTo(j.best.valAcc, 10);
    expect(j.data).toBe('val');
  });

  it('--report writes the HTML report', async () => {
    const io = capture();
    const file = join(dir(), 'report.html');
    await runEval(argsWith(evalBuilder, { run, json: true, report: file }), { openCache });
    vi.restoreAllMocks();
    const html = await readFile(file, 'utf8');
    expect(html.match(/<svg/g)).toHaveLength(3);
    expect(JSON.parse(io.out[0]!).report).toBe(file);
    expect(io.err.join('')).toContain(`Wrote ${file}`);
  });

  it('refuses a cache of another fingerprint, a --data that does not exist, and renamed classes', async () => {
    capture();
    const other = memoryCache({ val: s.val }, { ...summary, fingerprintId: 'fp-other' });
    await expect(runEval(argsWith(evalBuilder, { run, json: false }), { openCache: other })).rejects.toThrow(/holds features of fingerprint fp-other, but the run's head was trained on fp-eval .* --cache/);
    await expect(runEval(argsWith(evalBuilder, { run, json: false, data: 'new.txt' }))).rejects.toThrow(/new\.txt: no such list file or folder/);
    const renamed = memoryCache({ val: s.val }, { ...summary, classes: ['a', 'b', 'c', 'd', 'e'] });
    await expect(runEval(argsWith(evalBuilder, { run, json: false }), { openCache: renamed })).rejects.toThrow(/head-best\.json: class 0 is "class_0" in the head but "a" in the val split/);
  });

  it('refuses a directory that is not a run, naming the file', async () => {
    capture();
    await expect(runEval(argsWith(evalBuilder, { run: join(dir(), 'nothing'), json: false }))).rejects.toThrow(/options\.json: missing: not a viewprobe run directory/);
    const broken = join(dir(), 'broken');
    await import('node:fs/promises').then((fs) => fs.cp(run, broken, { recursive: true }));
    await writeFile(join(broken, 'history.json'), '{"format":"viewprobe-history","epochs":[]}');
    await expect(loadRun(broken)).rejects.toThrow(/history\.json: not a viewprobe history file/);
    await writeFile(join(broken, 'history.json'), '{oops');
    await expect(loadRun(broken)).rejects.toThrow(/history\.json: not a viewprobe history\.json file/);
  });

  it('formats a hand-made evaluation', () => {
    const lines = formatEval(
      { n: 3, classes: ['a', 'bb'], correct: 2, accuracy: 2 / 3, topK: 2, topKAccuracy: 1, loss: 0.5, perClass: [{ label: 'a', n: 2, correct: 2, accuracy: 1 }, { label: 'bb', n: 1, correct: 0, accuracy: 0 }], confusion: [[2, 0], [1, 0]] },
      'x',
      { best: { epoch: 3, valAcc: 0.7 }, final: { epoch: 5, valAcc: 0.6 } },
    );
    expect(lines.slice(0, 3)).toEqual(['Best val acc 70.0% at epoch 3', 'Final val acc 60.0% (epoch 5)', 'Best head on x: accuracy 66.7%, top-2 100.0%, loss 0.5000']);
    expect(lines).toContain('  a           2        2    100.0%');
    expect(lines.slice(-2)).toEqual(['  0  a   2  0', '  1  bb  1  0']);
    // A sweep run chosen by cross-validation: its figures are CV scores, not val accuracies.
    const cv = formatEval(
      { n: 1, classes: ['a'], correct: 1, accuracy: 1, topK: 1, topKAccuracy: 1, loss: 0, perClass: [{ label: 'a', n: 1, correct: 1, accuracy: 1 }], confusion: [[1]] },
      'x',
      { best: { epoch: 3, valAcc: 0.7 }, final: { epoch: 5, valAcc: 0.6 }, options: { selection: { kind: 'cv', folds: 5 } } },
    );
    expect(cv.slice(0, 2)).toEqual(['Best CV score 70.0% at epoch 3', 'Final CV score 60.0% (epoch 5)']);
  });
});

describe('viewprobe eval --report of a sweep run', () => {
  const dir = useTempDir('viewprobe-eval-sweep-');
  afterEach(() => vi.restoreAllMocks());
  const d = noisy(2);
  // Each val image a file of its own grey level, so that a thumbnail tells which file it was made from.
  const grey = (row: number) => 20 + row * 4;
  let openCache: ReturnType<typeof memoryCache>;
  let run: string;

  beforeAll(async () => {
    const paths = await Promise.all(Array.from(d.val.paths.keys(), async (i) => {
      const file = join(dir(), 'images', `val-${i}.png`);
      await import('node:fs/promises').then((fs) => fs.mkdir(join(dir(), 'images'), { recursive: true }));
      await sharp({ create: { width: 60, height: 40, channels: 3, background: { r: grey(i), g: grey(i), b: grey(i) } } }).png().toFile(file);
      return file;
    }));
    openCache = memoryCache({ train: d.train, val: { ...d.val, paths } }, { fingerprint: fingerprint(d.train.dim), fingerprintId: 'fp-sw', classes: d.classes });
    run = join(dir(), 'run');
    capture();
    await runSweep(argsWith(sweepBuilder, { grid: 'transform=none,l2;views=clean,all;lr=3e-3;epochs=8', workers: 1, seed: 0, cache: 'c', out: run, json: false }), { openCache });
    vi.restoreAllMocks();
  });

  /** Rows of the val split shown as mistakes, in order, read back from the thumbnails' pixels. */
  async function thumbnailRows(html: string): Promise<(number | null)[]> {
    const cards = html.match(/<figure class="mistake">[\s\S]*?<\/figure>/g) ?? [];
    return Promise.all(cards.map(async (c) => {
      const src = /<img src="data:image\/jpeg;base64,([^"]+)"/.exec(c);
      if (!src) return null;
      const { data } = await sharp(Buffer.from(src[1]!, 'base64')).raw().toBuffer({ resolveWithObject: true });
      const row = Math.round((data[0]! - 20) / 4);
      expect(c, 'the card names the file its thumbnail was made from').toContain(`>val-${row}.png</span>`);
      return row;
    }));
  }

  it('shows the sweep (leaderboard, what varied) and the most confident mistakes as thumbnails of the cache\'s image files', async () => {
    const file = join(dir(), 'report.html');
    const io = capture();
    expect(await runEval(argsWith(evalBuilder, { run, json: true, report: file }), { openCache })).toBe(0);
    vi.restoreAllMocks();
    const j = JSON.parse(io.out[0]!);
    const html = await readFile(file, 'utf8');
    expect(html).toContain(`<title>viewprobe sweep run ${run}</title>`);
    expect(html).toContain('<h2>Sweep: 5 trials</h2>');
    expect(html).toMatch(/Leaderboard: the best 5 of 5 trials/);
    expect(html).toContain('the sweep chose its trial on them');
    const wrong = j.eval.n - j.eval.correct;
    expect(wrong).toBeGreaterThan(REPORT_MISTAKES); // the fixture is noisy enough to test the cap
    expect(html).toContain(`The ${REPORT_MISTAKES} of ${wrong} wrong images the head was surest about`);
    const rows = await thumbnailRows(html);
    expect(rows).toHaveLength(REPORT_MISTAKES);
    // the same rows, in the same order, as the mistakes of the run's head on these features
    const { headEvalLogits } = await import('../../src/eval/metrics.js');
    const { confidentMistakes } = await import('../../src/eval/mistakes.js');
    const loaded = await loadRun(run);
    const want = confidentMistakes(headEvalLogits(loaded.head, d.val, d.classes), d.val.labels, d.classes.length, REPORT_MISTAKES).map((m) => m.row);
    expect(rows).toEqual(want);
    expect(io.err.join('')).not.toContain('could not be read');
  });

  it('an image file that has gone gets a placeholder and a note; the report is still written', async () => {
    const file = join(dir(), 'report2.html');
    capture();
    await runEval(argsWith(evalBuilder, { run, json: false, report: file }), { openCache });
    vi.restoreAllMocks();
    const rows = await thumbnailRows(await readFile(file, 'utf8'));
    const gone = join(dir(), 'images', `val-${rows[1]}.png`);
    await rm(gone);
    const io = capture();
    expect(await runEval(argsWith(evalBuilder, { run, json: false, report: file, force: true }), { openCache })).toBe(0);
    vi.restoreAllMocks();
    const html = await readFile(file, 'utf8');
    expect(await thumbnailRows(html)).toEqual([rows[0], null, ...rows.slice(2)]);
    expect(html).toContain(`<p class="note">1 of these images could not be shown: ${gone} (file not found).</p>`);
    expect(io.err.join('')).toContain(`eval --report: 1 of the ${REPORT_MISTAKES} images shown as mistakes could not be read; the report shows placeholders`);
  });

  it('a plain train run\'s report has no sweep section', async () => {
    const train = join(dir(), 'train-run');
    const file = join(dir(), 'train.html');
    capture();
    await runTrain(argsWith(trainBuilder, { cache: 'c', out: train, epochs: 3, json: false }), { openCache });
    await runEval(argsWith(evalBuilder, { run: train, json: false, report: file }), { openCache });
    vi.restoreAllMocks();
    const html = await readFile(file, 'utf8');
    expect(html).toContain(`<title>viewprobe run ${train}</title>`);
    expect(html).not.toContain('Sweep');
    expect(html).toContain('<h2>Most confident mistakes</h2>');
    expect(html).toContain('<h2>Training curves</h2>');
  });
});
