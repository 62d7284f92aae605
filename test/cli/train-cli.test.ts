// `viewprobe train` through bin/viewprobe.js on feature caches written to disk here (no backbone):
// a loss that stops being a number ends training with exit 2 and no run; --out never replaces a run
// without --force; the result goes to stdout and the epoch lines to stderr.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FeatureCache, type FeatureRecord } from '../../src/cache/store.js';
import type { Member } from '../../src/cache/types.js';
import { fingerprint, separable } from '../train/fixtures.js';
import { runCli } from '../helpers/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'vp-train-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const SENTINEL = 12345.678;

/**
 * Writes separable features into a cache on disk, the way extract stores them. `damaged`: one
 * training value is then overwritten with NaN inside the LMDB file (the cache refuses to store a
 * non-finite feature, but it has no checksum to notice bit rot on reading).
 */
async function writeCache(dir: string, damaged: boolean): Promise<void> {
  const s = separable({ classes: 3, dim: 8, perClass: 10, valPerClass: 4, views: 2 });
  if (damaged) s.train.aug[0] = SENTINEL;
  const c = await FeatureCache.open(dir);
  try {
    await c.ensureFingerprint(fingerprint(8), s.classes);
    const features: FeatureRecord[] = [];
    const members: Member[] = [];
    for (const split of [s.train, s.val]) {
      for (let i = 0; i < split.labels.length; i++) {
        const hash = createHash('sha256').update(`${split.split}${i}`).digest('hex');
        if (split.views > 0) features.push({ hash, kind: 'aug', start: 0, data: split.aug.slice(i * split.views * 8, (i + 1) * split.views * 8) });
        features.push({ hash, kind: 'clean', start: 0, data: split.clean!.slice(i * 8, (i + 1) * 8) });
        members.push({ hash, path: split.paths[i]!, label: split.labels[i]!, split: split.split });
      }
    }
    await c.commit({ features, members });
  } finally {
    await c.close();
  }
  if (damaged) {
    const file = join(dir, 'data.mdb');
    const bytes = readFileSync(file);
    const at = bytes.indexOf(Buffer.from(new Float32Array([SENTINEL]).buffer));
    expect(at).toBeGreaterThan(0);
    expect(bytes.indexOf(Buffer.from(new Float32Array([SENTINEL]).buffer), at + 1)).toBe(-1);
    bytes.writeFloatLE(NaN, at);
    writeFileSync(file, bytes);
  }
}

/** Every file of a run with its bytes and mtime, to show that a refused command left it alone. */
function snapshot(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir).sort().map((f) => [f, `${statSync(join(dir, f)).mtimeMs} ${readFileSync(join(dir, f), 'utf8')}`]));
}

describe('train through the CLI', () => {
  const good = join(tmp, 'good');
  const huge = join(tmp, 'damaged');
  const run = join(tmp, 'run');
  beforeAll(async () => {
    await writeCache(good, false);
    // A NaN feature makes the loss NaN from the first step. (Finite features cannot make it
    // overflow at an --lr up to 10: Adam's step is bounded by the rate, and on features beyond
    // about 1e19 the squared gradient overflows to Infinity and the updates stop instead.)
    await writeCache(huge, true);
    const r = runCli(['train', '--cache', good, '--out', run, '--epochs', '3', '--lr', '1e-2', '--batch', '8']);
    expect(r.status, r.stderr).toBe(0);
  });

  it('prints the best and final accuracy on stdout and the epoch lines on stderr', () => {
    const r = runCli(['train', '--cache', good, '--out', join(tmp, 'run-split'), '--epochs', '3', '--lr', '1e-2', '--batch', '8']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Best val acc [\d.]+% at epoch [1-3]\nFinal val acc [\d.]+% \(epoch 3\)\n$/);
    expect(r.stderr.split('\n').filter((l) => l.startsWith('Epoch'))).toHaveLength(3);
    expect(r.stderr).not.toMatch(/val acc [\d.]+% at epoch|^Final/m);
  });

  it('a loss that is not a finite number stops training at that epoch: exit 2, what and when, a hint, and no run', () => {
    const out = join(tmp, 'run-diverged');
    const r = runCli(['train', '--cache', huge, '--out', out, '--epochs', '5', '--lr', '10', '--batch', '8']);
    expect(r.status, r.stderr).toBe(2);
    const lines = r.stderr.trim().split('\n');
    const last = lines.pop()!;
    const m = /^viewprobe: training diverged at epoch (\d): the (training|validation) loss is (NaN|Infinity|-Infinity), so no run was written; lower --lr \(this run used 1e1\)/.exec(last);
    expect(m, last).not.toBeNull();
    // it stops at the first bad epoch: the epoch lines printed end with it
    expect(lines.filter((l) => l.startsWith('Epoch')).length).toBe(Number(m![1]));
    expect(lines[lines.length - 1]).toMatch(new RegExp(`^Epoch ${m![1]}  loss .*(NaN|Infinity)`));
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
    expect(r.stdout).toBe('');
    expect(existsSync(out)).toBe(false);
  });

  it('a diverging run with --force leaves the run it would have replaced as it was', () => {
    const before = snapshot(run);
    const r = runCli(['train', '--cache', huge, '--out', run, '--force', '--epochs', '5', '--lr', '10', '--batch', '8']);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/training diverged at epoch \d/);
    expect(snapshot(run)).toEqual(before);
  });

  it('--out over an existing run is refused without --force, and replaced with it', () => {
    const before = snapshot(run);
    const r = runCli(['train', '--cache', good, '--out', run, '--epochs', '2']);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr.trim()).toBe(`viewprobe: --out ${run} holds a run; choose another directory, or pass --force to replace its run files`);
    expect(snapshot(run)).toEqual(before);

    const f = runCli(['train', '--cache', good, '--out', run, '--epochs', '2', '--force', '--json']);
    expect(f.status, f.stderr).toBe(0);
    expect(JSON.parse(f.stdout)).toMatchObject({ run, epochs: 2 });
    expect(JSON.parse(readFileSync(join(run, 'history.json'), 'utf8')).epochs).toHaveLength(2);
  });

  it('--out that is not empty, or is a file, is refused without touching it', () => {
    const busy = join(tmp, 'busy');
    mkdirSync(busy);
    writeFileSync(join(busy, 'notes.txt'), 'mine');
    const r = runCli(['train', '--cache', good, '--out', busy, '--epochs', '1']);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/--out .*busy is not empty \(1 entries\); choose another directory, or pass --force/);
    expect(readdirSync(busy)).toEqual(['notes.txt']);

    const file = join(tmp, 'afile');
    writeFileSync(file, 'x');
    const f = runCli(['train', '--cache', good, '--out', file, '--epochs', '1']);
    expect(f.status, f.stderr).toBe(2);
    expect(f.stderr).toMatch(/--out .*afile is a file, not a run directory/);
    expect(readFileSync(file, 'utf8')).toBe('x');
  });
});
