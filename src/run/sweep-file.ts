// sweep.json, beside the run files of a run that `viewprobe sweep` wrote: every trial with its
// selection score, the winner and the seed recipe's row. Written by cli/sweep.ts, read by eval --report.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { InputError, errorMessage } from '../errors.js';
import type { Selection } from '../train/selection.js';
import type { TrialSpec } from '../train/sweep-space.js';

export const SWEEP_FILE = 'sweep.json';
export const SWEEP_FORMAT = 'viewprobe-sweep';

export interface SweepTrialJson {
  /** Index in task order (= position in `trials`). */
  trial: number;
  /** 1 = highest score (ties: earlier trial first). */
  rank: number;
  score: number;
  loss: number;
  epoch: number;
  seconds: number;
  /** L-BFGS only. */
  iterations?: number;
  description: string;
  spec: TrialSpec;
}

export interface SweepFileJson {
  format: typeof SWEEP_FORMAT;
  version: 1;
  cache: string;
  fingerprintId: string;
  selection: Selection;
  workers: number;
  seconds: number;
  trialsPerSecond: number;
  /** Index into trials. */
  winner: number;
  /** Index into trials of the seed recipe's row; -1 when the sweep had none. */
  seedRecipe: number;
  trials: SweepTrialJson[];
}

/** The run's sweep.json, or null when the run was not written by a sweep (no such file). */
export async function readSweepFile(runDir: string): Promise<SweepFileJson | null> {
  const file = resolve(runDir, SWEEP_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new InputError(file, undefined, `cannot read (${errorMessage(e)})`);
  }
  const fail = (d: string): never => {
    throw new InputError(file, undefined, `not a viewprobe sweep file (${d})`);
  };
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    return fail(errorMessage(e));
  }
  if (typeof j !== 'object' || j === null || j.format !== SWEEP_FORMAT) return fail(`format is not "${SWEEP_FORMAT}"`);
  const trials = j.trials;
  if (!Array.isArray(trials) || trials.length === 0) return fail('no "trials" list');
  trials.forEach((t: unknown, i) => {
    const o = t as Record<string, unknown>;
    if (typeof o !== 'object' || o === null || typeof o.score !== 'number' || typeof o.rank !== 'number' || typeof o.description !== 'string') fail(`trial ${i} lacks score, rank or description`);
    const spec = o.spec as Record<string, unknown> | undefined;
    if (typeof spec !== 'object' || spec === null || (spec.solver !== 'adam' && spec.solver !== 'lbfgs')) fail(`trial ${i} has no spec with solver adam or lbfgs`);
  });
  const index = (k: 'winner' | 'seedRecipe', min: number) => {
    const v = j[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v >= trials.length) fail(`"${k}" is not a trial index`);
  };
  index('winner', 0);
  index('seedRecipe', -1);
  const sel = j.selection as Record<string, unknown> | undefined;
  if (typeof sel !== 'object' || sel === null || typeof sel.label !== 'string' || (sel.kind !== 'val' && sel.kind !== 'cv')) fail('no "selection" {kind, label}');
  return j as unknown as SweepFileJson;
}
