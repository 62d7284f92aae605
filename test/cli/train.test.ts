import { readFile, readdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { importGraph, reachable } from '../helpers/imports.js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { UserError } from '../../src/errors.js';
import { checkFinite, epochLine, runTrain, type TrainArgs } from '../../src/cli/train.js';
import { formatLr } from '../../src/format.js';
import { loadHead } from '../../src/head/file.js';
import { capture, fingerprint, memoryCache, separable, useTempDir } from '../train/fixtures.js';
import { argsWith, parseArgs } from '../helpers/args.js';
import { trainHead } from '../../src/train/loop.js';
import { trainBuilder } from '../../src/cli/commands.js';

const defaults: Partial<TrainArgs> = { epochs: 8, lr: 1e-2, stepSize: 5, gamma: 0.5, batch: 16, seed: 0, views: 'aug', json: false };

describe('viewprobe train', () => {
  const dir = useTempDir('viewprobe-train-');
  afterEach(() => vi.restoreAllMocks());

  const s = separable();
  const summary = { fingerprint: fingerprint(16), fingerprintId: 'fp-test', classes: s.classes };

  it('prints an epoch line each epoch and the best and final accuracy, and writes the run', async () => {
    const out = join(dir(), 'run1');
    const io = capture();
    const code = await runTrain(argsWith(trainBuilder, { ...defaults, cache: join(dir(), 'cache'), out }), { openCache: memoryCache({ train: s.train, val: s.val }, summary) });
    vi.restoreAllMocks();
    expect(code).toBe(0);
    // progress (epoch lines) on stderr, the result (best and final accuracy) on stdout
    const lines = io.err.join('').split('\n');
    const result = io.out.join('').split('\n');
    expect(lines.filter((l) => /^(Best|Final) val acc/.test(l))).toEqual([]);
    const epochs = lines.filter((l) => l.startsWith('Epoch'));
    expect(epochs).toHaveLength(8);
    expect(epochs[0]).toMatch(/^Epoch 1  loss \d+\.\d\d  val loss \d+\.\d\d  val acc \d+\.\d%  lr 1e-2$/);
    expect(epochs[5]).toMatch(/lr 5e-3$/);
    expect(result[0]).toMatch(/^Best val acc 100\.0% at epoch [1-8]$/);
    expect(result[1]).toBe('Final val acc 100.0% (epoch 8)');

    expect((await readdir(out)).sort()).toEqual(['head-best.json', 'head-last.json', 'history.json', 'options.json']);
    const hist = JSON.parse(await readFile(join(out, 'history.json'), 'utf8'));
    expect(hist.epochs).toHaveLength(8);
    expect(Object.keys(hist.epochs[0]).sort()).toEqual(['epoch', 'lr', 'trainLoss', 'valAcc', 'valLoss']);
    expect(hist.final).toMatchObject({ epoch: 8, valAcc: 1 });
    const opts = JSON.parse(await readFile(join(out, 'options.json'), 'utf8'));
    expect(opts).toMatchObject({
      format: 'viewprobe-run',
      cache: resolve(dir(), 'cache'),
      fingerprintId: 'fp-test',
      fingerprint: fingerprint(16),
      classes: s.classes,
      options: { epochs: 8, lr: 1e-2, stepSize: 5, gamma: 0.5, batch: 16, seed: 0, views: 'aug' },
    });
    const best = await loadHead(join(out, 'head-best.json'), { dim: 16, classes: s.classes });
    expect(best.epoch).toBe(hist.best.epoch);
    expect(best.fingerprintId).toBe('fp-test');
    const last = await loadHead(join(out, 'head-last.json'));
    expect(last).toMatchObject({ epoch: 8, valAcc: 1, fingerprint: fingerprint(16) });
  });

  it('--json prints one summary object on stdout', async () => {
    const io = capture();
    await runTrain(argsWith(trainBuilder, { ...defaults, epochs: 3, json: true, cache: 'c', out: join(dir(), 'run2') }), { openCache: memoryCache({ train: s.train, val: s.val }, summary) });
    vi.restoreAllMocks();
    expect(io.out).toHaveLength(1);
    const j = JSON.parse(io.out[0]!);
    expect(j).toMatchObject({ run: join(dir(), 'run2'), fingerprintId: 'fp-test', trainImages: 80, valImages: 40, views: 'aug', epochs: 3, final: { epoch: 3 } });
    expect(j.best.valAcc).toBeGreaterThanOrEqual(j.final.valAcc);
    expect(typeof j.seconds).toBe('number');
  });

  it('refuses a cache it cannot train from, with clear one-line errors', async () => {
    const run = (openCache: ReturnType<typeof memoryCache>, extra: Partial<TrainArgs> = {}) => {
      capture();
      return runTrain(argsWith(trainBuilder, { ...defaults, cache: 'cache', out: join(dir(), 'bad'), ...extra }), { openCache });
    };
    await expect(run(memoryCache({}, undefined))).rejects.toThrow(/cache is empty/);
    await expect(run(memoryCache({ train: s.train }, summary))).rejects.toThrow('cache cache has no validation split (run viewprobe extract --val DATA --cache cache)');
    await expect(run(memoryCache({ val: s.val }, summary))).rejects.toThrow(/has no training images/);
    const one = separable({ classes: 1, dim: 4 });
    await expect(run(memoryCache({ train: one.train, val: one.val }, { ...summary, classes: one.classes }))).rejects.toThrow(/need at least 2 classes/);
    const noClean = { ...s.train, clean: null };
    await expect(run(memoryCache({ train: noClean, val: s.val }, summary), { views: 'clean' })).rejects.toThrow(/--views clean needs the clean view/);
    await expect(run(memoryCache({ train: s.train, val: s.val }, summary), { epochs: -3 })).rejects.toThrow('--epochs must be a positive integer, got -3');
  });

  it('refuses a missing cache directory, or a file in its place, before loading anything', async () => {
    capture();
    await expect(runTrain(argsWith(trainBuilder, { ...defaults, cache: join(dir(), 'nope'), out: join(dir(), 'x') }))).rejects.toThrow(UserError);
    await expect(runTrain(argsWith(trainBuilder, { ...defaults, cache: join(dir(), 'nope'), out: join(dir(), 'x') }))).rejects.toThrow(/cache .*nope does not exist \(run viewprobe extract/);
    await writeFile(join(dir(), 'afile'), 'x');
    await expect(runTrain(argsWith(trainBuilder, { ...defaults, cache: join(dir(), 'afile'), out: join(dir(), 'x') }))).rejects.toThrow(/afile is not a directory/);
  });

  it('--weight-decay and --label-smoothing reach the trainer and options.json; out-of-range values stop at parse time', async () => {
    const out = join(dir(), 'run-wd-ls');
    const io = capture();
    const args = parseArgs(trainBuilder, ['--cache', 'c', '--out', out, '--epochs', '4', '--lr', '1e-2', '--batch', '16', '--weight-decay', '0.01', '--label-smoothing', '0.1']);
    expect(args).toMatchObject({ weightDecay: 0.01, labelSmoothing: 0.1 });
    await runTrain(args, { openCache: memoryCache({ train: s.train, val: s.val }, summary) });
    vi.restoreAllMocks();
    expect(io.err.join('')).toMatch(/seed 0, weight decay 0\.01, label smoothing 0\.1\n/);
    const opts = JSON.parse(await readFile(join(out, 'options.json'), 'utf8'));
    expect(opts.options).toMatchObject({ weightDecay: 0.01, labelSmoothing: 0.1 });
    // The head is the one the training loop gives with those options (and not the one it gives without).
    const want = await trainHead(s.train, s.val, s.classes, { epochs: 4, lr: 1e-2, batch: 16, weightDecay: 0.01, labelSmoothing: 0.1 });
    const plain = await trainHead(s.train, s.val, s.classes, { epochs: 4, lr: 1e-2, batch: 16 });
    const last = await loadHead(join(out, 'head-last.json'));
    expect(Array.from(last.weight)).toEqual(Array.from(want.last.head.weight));
    expect(Array.from(last.weight)).not.toEqual(Array.from(plain.last.head.weight));
    // Defaults: the recipe's 0 and 0.
    expect(parseArgs(trainBuilder, ['--out', 'x'])).toMatchObject({ weightDecay: 0, labelSmoothing: 0 });
    for (const [opt, v, msg] of [
      ['--weight-decay', '-0.1', /--weight-decay must be a number >= 0 and <= 1/],
      ['--weight-decay', '5', /--weight-decay must be a number >= 0 and <= 1/],
      ['--label-smoothing', '1', /--label-smoothing must be a number >= 0 and <= 0\.99/],
      ['--label-smoothing', '-1', /--label-smoothing must be/],
    ] as const) {
      expect(() => parseArgs(trainBuilder, ['--out', 'x', opt, v]), `${opt} ${v}`).toThrow(msg);
    }
  });

  it('checkFinite: a training or validation loss that is not a finite number is an error naming it, its epoch and --lr', () => {
    const rec = { epoch: 4, trainLoss: 0.5, valLoss: 0.6, valAcc: 0.5, lr: 1e-3 };
    expect(() => checkFinite(rec, 1e-3)).not.toThrow();
    expect(() => checkFinite({ ...rec, trainLoss: 3e38 }, 1e-3)).not.toThrow(); // absurd, but a number
    expect(() => checkFinite({ ...rec, trainLoss: NaN }, 1e-3)).toThrow(UserError);
    expect(() => checkFinite({ ...rec, trainLoss: NaN }, 1e-3)).toThrow(/^training diverged at epoch 4: the training loss is NaN, so no run was written; lower --lr \(this run used 1e-3\)/);
    expect(() => checkFinite({ ...rec, valLoss: Infinity }, 2.5e-4)).toThrow(/^training diverged at epoch 4: the validation loss is Infinity, .*this run used 2\.5e-4/);
    expect(() => checkFinite({ ...rec, trainLoss: -Infinity, valLoss: NaN }, 1)).toThrow(/the training loss is -Infinity/);
  });

  it('formats the learning rate and the epoch line like the tutorial', () => {
    expect([1e-3, 5e-4, 2.5e-4, 1.25e-4, 3.0517578125e-8, 2].map(formatLr)).toEqual(['1e-3', '5e-4', '2.5e-4', '1.25e-4', '3.0517578125e-8', '2e0']);
    expect(epochLine({ epoch: 7, trainLoss: 0.4123, valLoss: 0.5249, valAcc: 0.8318, lr: 5e-4 }, 50)).toBe('Epoch  7  loss 0.41  val loss 0.52  val acc 83.2%  lr 5e-4');
  });
});

describe('train reads only the cache', () => {
  // Static guarantee: nothing reachable from the train command imports the backbone, the image
  // decoder, onnxruntime or a weights loader, so `train` works with the weights and images gone.
  it('imports no backbone, decoder or weights module', () => {
    const { files, packages } = reachable(importGraph(), 'cli/train.ts');
    expect(files).toContain('train/loop.ts');
    expect(files).toContain('cache/store.ts');
    expect(files.filter((f) => /^(extract|image|backbone)\//.test(f))).toEqual([]);
    expect(packages.filter((p) => ['sharp', 'onnxruntime-node', 'onnx-proto', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu'].includes(p))).toEqual([]);
  });
});
