import { describe, expect, it } from 'vitest';
import { evaluateHead } from '../../src/eval/metrics.js';
import { sweep } from '../../src/train/sweep.js';
import { SEED_RECIPE, defaultTasks, describeTrial, gridTasks } from '../../src/train/sweep-space.js';
import { trainHead } from '../../src/train/loop.js';
import { noisy, separable } from './fixtures.js';

describe('the search space', () => {
  it('always holds the seed recipe (train\'s defaults) first, then L-BFGS paths and random Adam trials', () => {
    const tasks = defaultTasks({ trials: 5, seed: 0, hasAug: true, hasClean: true }, () => 1);
    expect(tasks[0]!.trials).toEqual([SEED_RECIPE]);
    expect(tasks[1]!.trials[0]).toEqual({ ...SEED_RECIPE, views: 'clean', name: 'seed recipe, clean view' });
    expect(tasks.filter((t) => t.trials[0]!.solver === 'lbfgs').map((t) => t.trials[0]!.transform)).toEqual(['none', 'std', 'l2', 'power+l2']);
    expect(tasks.filter((t) => t.trials[0]!.solver === 'adam')).toHaveLength(7);
    expect(defaultTasks({ trials: 5, seed: 0, hasAug: true, hasClean: true }, () => 1)).toEqual(tasks);
    // Without clean views: no clean/all trials and no L-BFGS (it fits the clean views).
    const augOnly = defaultTasks({ trials: 20, seed: 0, hasAug: true, hasClean: false }, () => 1);
    expect(augOnly.every((t) => t.trials[0]!.solver === 'adam' && t.trials[0]!.views === 'aug')).toBe(true);
  });

  it('a grid is the cartesian product of its values, the seed recipe added first', () => {
    const tasks = gridTasks('lr=1e-3,3e-3; transform=none,l2');
    expect(tasks.map((t) => describeTrial(t.trials[0]!))).toEqual([
      'adam aug lr=0.001 wd=0 50ep step5/0.5 b64', 'adam aug l2 lr=0.001 wd=0 50ep step5/0.5 b64',
      'adam aug lr=0.003 wd=0 50ep step5/0.5 b64', 'adam aug l2 lr=0.003 wd=0 50ep step5/0.5 b64',
    ]);
    expect(tasks[0]!.trials[0]!.name).toBe('seed recipe');
    expect(gridTasks('solver=lbfgs;l2=0.1,0.01')).toHaveLength(3);
    for (const [spec, msg] of [['lr', /not key=value/], ['foo=1', /unknown key "foo"/], ['lr=-1', /lr=-1 is not a valid number/], ['views=some', /views=some is not one of/],
      ['solver=lbfgs;lr=1', /lr does not apply to solver=lbfgs/], ['lr=1;lr=2', /given twice/]] as const) {
      expect(() => gridTasks(spec), spec).toThrow(msg);
    }
  });
});

describe('sweep', () => {
  const d = noisy();

  it('runs every trial, scores on val, and the seed recipe\'s row is exactly what train gives', async () => {
    const o = await sweep(d.train, d.val, d.classes, { trials: 3, workers: 1 });
    expect(o.selection.kind).toBe('val');
    expect(o.results.length).toBe(2 + 7 + 7 + 9 + 9 + 3);
    const seed = o.results[o.seedRecipe]!;
    expect(seed.spec.name).toBe('seed recipe');
    const t = await trainHead(d.train, d.val, d.classes);
    expect(seed.score).toBe(t.best.valAcc);
    expect(seed.epoch).toBe(t.best.epoch);
    expect(Buffer.from(seed.head!.weight.buffer)).toEqual(Buffer.from(t.best.head.weight.buffer));
    // The winner is the best score; every saved head scores on val, through eval's forward, what the sweep recorded.
    expect(o.results.every((r) => r.score <= o.results[o.winner]!.score)).toBe(true);
    for (const r of o.results) expect(evaluateHead(r.head!, d.val, d.classes).accuracy, describeTrial(r.spec)).toBe(r.score);
    expect(o.head).toBe(o.results[o.winner]!.head);
  });

  it('gives the same results on 2 worker threads as in one thread', async () => {
    const a = await sweep(d.train, d.val, d.classes, { grid: 'transform=none,std,power+l2;views=clean,all;epochs=5', workers: 1 });
    const b = await sweep(d.train, d.val, d.classes, { grid: 'transform=none,std,power+l2;views=clean,all;epochs=5', workers: 2 });
    expect(b.workers).toBe(2);
    expect(b.results.map((r) => [r.score, r.loss, r.epoch])).toEqual(a.results.map((r) => [r.score, r.loss, r.epoch]));
    expect(b.winner).toBe(a.winner);
    expect(Buffer.from(b.head.weight.buffer)).toEqual(Buffer.from(a.head.weight.buffer));
  });

  it('without a val split chooses by stratified CV on train and refits the winner on all of it', async () => {
    const o = await sweep(d.train, null, d.classes, { grid: 'transform=std,power+std;lr=1e-2;epochs=6', folds: 3, workers: 1 });
    expect(o.selection).toMatchObject({ kind: 'cv', folds: 3 });
    expect(o.results[0]!.spec.name).toBe('seed recipe');
    for (const r of o.results) {
      expect(r.head).toBeNull();
      expect(r.history).toHaveLength(r.spec.name ? 50 : 6);
      expect(r.score).toBe(Math.max(...r.history.map((e) => e.valAcc)));
    }
    expect(o.results[o.winner]!.spec.transform).not.toBe('none');
    // The refit head, on images no trial saw: well above chance (4 classes).
    expect(evaluateHead(o.head, d.val, d.classes).accuracy).toBeGreaterThan(0.6);
    const l = await sweep(d.train, null, d.classes, { grid: 'solver=lbfgs;transform=std;l2=0.01,0.001', folds: 3, workers: 1 });
    expect(l.results[l.winner]!.spec.solver).toBe('lbfgs');
    expect(evaluateHead(l.head, d.val, d.classes).accuracy).toBeGreaterThan(0.6);
  });

  it('CV scores each held-out fold over the clean and test-time views, averaged, as eval does', async () => {
    // Separable training views; every 4th image's clean view is its class vector moved to the next
    // class, and its test-time view is the class vector tripled: alone the clean view is wrong, the
    // average is right. So CV with the test-time views must score higher than without them.
    const { train } = separable({ classes: 2, dim: 2, perClass: 24, views: 2, seed: 3 });
    const n = train.labels.length;
    const clean = new Float32Array(train.clean!);
    const tta = new Float32Array(n * 2);
    for (let i = 0; i < n; i++) {
      const y = train.labels[i]!;
      tta[i * 2 + y] = 6;
      if (i % 4 === 0) {
        clean[i * 2 + y] = 0;
        clean[i * 2 + (1 - y)] = 2;
      }
    }
    const plain = { ...train, clean };
    const withTta = { ...plain, ttaViews: 1, tta };
    const o = { grid: 'views=aug;lr=0.1;epochs=10', folds: 3, workers: 1 } as const;
    const a = await sweep(plain, null, ['a', 'b'], o);
    const b = await sweep(withTta, null, ['a', 'b'], o);
    // results[1] is the grid's trial (the seed recipe comes first).
    expect(a.results[1]!.score).toBeCloseTo(0.75, 5);
    expect(b.results[1]!.score).toBe(1);
  });

  it('a trial that fails in a worker fails the sweep with its message (and stops the other workers)', async () => {
    const bad = { ...d.train, labels: d.train.labels.map((y, i) => (i === 5 ? 9 : y)) };
    await expect(sweep(bad, d.val, d.classes, { grid: 'lr=1e-3,1e-2;epochs=2', workers: 2 })).rejects.toThrow(/sweep worker failed on task \d+: .*has label 9, outside the 4 classes/);
  });
});
