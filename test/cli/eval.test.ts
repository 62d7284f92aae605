import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { formatEval, runEval } from '../../src/cli/eval.js';
import { loadRun } from '../../src/run/run.js';
import { runTrain } from '../../src/cli/train.js';
import { capture, fingerprint, memoryCache, separable, useTempDir } from '../train/fixtures.js';
import { argsWith } from '../helpers/args.js';
import { evalBuilder, trainBuilder } from '../../src/cli/commands.js';

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
  });
});
