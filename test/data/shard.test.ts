import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { describeShard, inShard, parseShard, resolveShard } from '../../src/data/shard.js';

function userError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return (e as Error).message;
  }
  throw new Error('expected a UserError');
}

const hashes = Array.from({ length: 2000 }, (_, i) => createHash('sha256').update(`image ${i}`).digest('hex'));

describe('parseShard', () => {
  it('reads i/n, 0-based', () => {
    expect(parseShard('0/4')).toEqual({ index: 0, count: 4, source: '--shard' });
    expect(parseShard(' 3 / 4 ')).toEqual({ index: 3, count: 4, source: '--shard' });
    expect(parseShard('0/1')).toEqual({ index: 0, count: 1, source: '--shard' });
  });

  it('refuses malformed or out-of-range shards clearly', () => {
    expect(userError(() => parseShard('4/4'))).toBe('--shard "4/4": the shard index is 0-based, so it must be 0..3');
    expect(userError(() => parseShard('1/0'))).toBe('--shard "1/0": the shard count must be 1..1000000');
    expect(userError(() => parseShard('1of4'))).toBe('--shard "1of4": expected i/n, the 0-based shard index and the shard count (e.g. 0/4 .. 3/4)');
    expect(userError(() => parseShard('-1/4'))).toContain('expected i/n');
    expect(userError(() => parseShard('1.5/4'))).toContain('expected i/n');
  });
});

describe('resolveShard', () => {
  it('prefers --shard, then a Kubernetes Indexed Job, then a Slurm array', () => {
    const env = { JOB_COMPLETION_INDEX: '2', VIEWPROBE_SHARDS: '5', SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '3' };
    expect(resolveShard({ shard: '1/2' }, env)).toEqual({ index: 1, count: 2, source: '--shard' });
    expect(resolveShard({}, env)).toEqual({ index: 2, count: 5, source: 'JOB_COMPLETION_INDEX with VIEWPROBE_SHARDS' });
    expect(resolveShard({ shards: 3 }, { JOB_COMPLETION_INDEX: '0' })).toEqual({ index: 0, count: 3, source: 'JOB_COMPLETION_INDEX with --shards' });
    expect(resolveShard({}, { SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '3' })).toEqual({ index: 1, count: 3, source: 'SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_COUNT' });
    expect(resolveShard({}, {})).toBeUndefined();
    expect(resolveShard({ shard: '' }, {})).toBeUndefined();
  });

  it('takes a Slurm index relative to the array minimum and step (--array=1-4, --array=0-15:4)', () => {
    expect(resolveShard({}, { SLURM_ARRAY_TASK_ID: '4', SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_COUNT: '4' })).toMatchObject({ index: 3, count: 4 });
    expect(resolveShard({}, { SLURM_ARRAY_TASK_ID: '8', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_STEP: '4', SLURM_ARRAY_TASK_COUNT: '4' })).toMatchObject({ index: 2, count: 4 });
    expect(userError(() => resolveShard({}, { SLURM_ARRAY_TASK_ID: '5', SLURM_ARRAY_TASK_STEP: '4', SLURM_ARRAY_TASK_COUNT: '4' }))).toBe(
      'SLURM_ARRAY_TASK_ID=5 does not fit SLURM_ARRAY_TASK_MIN=0 and SLURM_ARRAY_TASK_STEP=4',
    );
  });

  it('refuses an index without a count, a count without an index, and non-numbers', () => {
    expect(userError(() => resolveShard({}, { JOB_COMPLETION_INDEX: '1' }))).toBe(
      'JOB_COMPLETION_INDEX=1 is set but the shard count is not: set VIEWPROBE_SHARDS to the Job\'s completions (or pass --shard i/n)',
    );
    expect(userError(() => resolveShard({}, { SLURM_ARRAY_TASK_ID: '1' }))).toContain('SLURM_ARRAY_TASK_ID=1 is set but the shard count is not');
    expect(userError(() => resolveShard({}, { VIEWPROBE_SHARDS: '4' }))).toBe(
      'VIEWPROBE_SHARDS=4 is set but no shard index is (JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID); pass --shard i/n',
    );
    expect(userError(() => resolveShard({}, { JOB_COMPLETION_INDEX: 'two', VIEWPROBE_SHARDS: '4' }))).toBe('JOB_COMPLETION_INDEX="two": expected a non-negative integer');
    expect(userError(() => resolveShard({}, { JOB_COMPLETION_INDEX: '4', VIEWPROBE_SHARDS: '4' }))).toContain('the shard index is 0-based, so it must be 0..3');
  });

  it('describes where the shard came from', () => {
    expect(describeShard(parseShard('1/3'))).toBe('shard 1/3 (0-based, from --shard)');
  });
});

describe('inShard', () => {
  it('puts every image in exactly one shard, roughly evenly', () => {
    for (const count of [1, 2, 3, 7]) {
      const shards = Array.from({ length: count }, (_, index) => ({ index, count, source: 'test' }));
      const sizes = new Array<number>(count).fill(0);
      for (const h of hashes) {
        const owners = shards.filter((s) => inShard(h, s));
        expect(owners.length).toBe(1);
        sizes[owners[0]!.index]!++;
      }
      // 2000 fixed hashes: each shard within 20% of its fair share (a property of sha256, not luck per run).
      for (const n of sizes) expect(Math.abs(n - 2000 / count)).toBeLessThan(0.2 * (2000 / count));
    }
  });

  it('depends only on the hash: the first 48 bits modulo the count', () => {
    const h = 'ffffffffffff' + '0'.repeat(52);
    const expected = Number(0xffffffffffffn % 7n);
    expect(inShard(h, { index: expected, count: 7, source: 't' })).toBe(true);
    expect(inShard(h, { index: (expected + 1) % 7, count: 7, source: 't' })).toBe(false);
    expect(inShard(h, undefined)).toBe(true);
  });

  it('refuses something that is not a sha256 hex digest (a caller bug)', () => {
    expect(() => inShard('abc', { index: 0, count: 2, source: 't' })).toThrow(/not a sha256 hex digest/);
  });
});
