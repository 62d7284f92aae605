import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { SWEEP_FILE, readSweepFile, type SweepFileJson } from '../../src/run/sweep-file.js';
import { SEED_RECIPE } from '../../src/train/sweep-space.js';

const tmp = mkdtempSync(join(tmpdir(), 'vp-sweepfile-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const good: SweepFileJson = {
  format: 'viewprobe-sweep', version: 1, cache: '/c', fingerprintId: 'fp', selection: { kind: 'val', label: 'val accuracy (4 images)' },
  workers: 1, seconds: 1, trialsPerSecond: 2, winner: 1, seedRecipe: 0,
  trials: [
    { trial: 0, rank: 2, score: 0.5, loss: 1, epoch: 3, seconds: 0.1, description: 'adam aug', spec: SEED_RECIPE },
    { trial: 1, rank: 1, score: 0.75, loss: 0.8, epoch: 1, seconds: 0.2, iterations: 9, description: 'lbfgs clean l2=0.01', spec: { solver: 'lbfgs', views: 'clean', transform: 'l2', l2: 0.01, maxIter: 150 } },
  ],
};

function runDir(name: string, content?: string): string {
  const d = join(tmp, name);
  mkdirSync(d, { recursive: true });
  if (content !== undefined) writeFileSync(join(d, SWEEP_FILE), content);
  return d;
}

describe('readSweepFile', () => {
  it('reads what sweep writes; a run without sweep.json (a train run) gives null', async () => {
    expect(await readSweepFile(runDir('sweep', JSON.stringify(good)))).toEqual(good);
    expect(await readSweepFile(runDir('train'))).toBeNull();
  });

  it('refuses a broken file, naming it', async () => {
    const bad: [string, RegExp][] = [
      ['{oops', /sweep\.json: not a viewprobe sweep file/],
      [JSON.stringify({ ...good, format: 'x' }), /format is not "viewprobe-sweep"/],
      [JSON.stringify({ ...good, trials: [] }), /no "trials" list/],
      [JSON.stringify({ ...good, winner: 2 }), /"winner" is not a trial index/],
      [JSON.stringify({ ...good, trials: [{ ...good.trials[0], spec: { solver: 'sgd' } }, good.trials[1]] }), /trial 0 has no spec/],
      [JSON.stringify({ ...good, selection: { kind: 'holdout' } }), /no "selection"/],
    ];
    for (const [i, [text, msg]] of bad.entries()) {
      const p = readSweepFile(runDir(`bad${i}`, text));
      await expect(p).rejects.toThrow(InputError);
      await expect(readSweepFile(join(tmp, `bad${i}`))).rejects.toThrow(msg);
    }
  });
});
