// The commit buffer on its own: views arrive in any order, are committed as they become contiguous,
// members follow their last view, and a failed write marks nothing committed.
import { describe, expect, it } from 'vitest';
import type { CommitBatch } from '../../src/cache/types.js';
import { CommitBuffer } from '../../src/extract/commit-buffer.js';

const DIM = 2;
const H = 'a'.repeat(64);
const member = { hash: H, path: '/d/a.jpg', label: 0, split: 'train' };
const view = (v: number) => Float32Array.of(v, -v);

function recorder(failWhen: (b: CommitBatch) => boolean = () => false) {
  const batches: CommitBatch[] = [];
  return {
    batches,
    commit(b: CommitBatch) {
      if (failWhen(b)) throw new Error('write failed');
      batches.push(structuredClone(b));
    },
  };
}

describe('CommitBuffer', () => {
  it('commits the contiguous prefix of views finished out of order, and the member with the last view', () => {
    const cache = recorder();
    const buf = new CommitBuffer(cache, DIM, 2);
    const [aug] = buf.openImage(member, [{ kind: 'aug', start: 3, count: 5 }]);
    buf.viewDone(aug!, 1, view(4));
    buf.viewDone(aug!, 2, view(5));
    buf.commitIfDue();
    expect(cache.batches).toEqual([]); // view 3 is missing: nothing is contiguous yet
    buf.viewDone(aug!, 0, view(3));
    buf.commitIfDue();
    expect(cache.batches).toHaveLength(1);
    expect(cache.batches[0]!.features).toEqual([{ hash: H, kind: 'aug', start: 3, data: Float32Array.of(3, -3, 4, -4, 5, -5) }]);
    expect(cache.batches[0]!.members).toEqual([]);
    buf.viewDone(aug!, 4, view(7));
    buf.viewDone(aug!, 3, view(6));
    buf.commit();
    expect(cache.batches[1]!.features).toEqual([{ hash: H, kind: 'aug', start: 6, data: Float32Array.of(6, -6, 7, -7) }]);
    expect(cache.batches[1]!.members).toEqual([member]);
    expect(cache.batches[1]!.resolved).toEqual([member.path]);
    expect(buf.committedViews).toBe(5);
    expect(() => buf.viewDone(aug!, 4, view(7))).toThrow(/finished twice/);
  });

  it('waits for all of an image\'s runs before its member, and commits failures', () => {
    const cache = recorder();
    const buf = new CommitBuffer(cache, DIM, 100);
    const [clean, aug] = buf.openImage(member, [{ kind: 'clean', start: 0, count: 1 }, { kind: 'aug', start: 0, count: 1 }]);
    buf.viewDone(aug!, 0, view(1));
    buf.addFailure({ path: '/d/bad.jpg', split: 'train', reason: '/d/bad.jpg: empty file', at: 'now' });
    buf.commit();
    expect(cache.batches[0]!.members).toEqual([]);
    expect(cache.batches[0]!.failures).toHaveLength(1);
    buf.viewDone(clean!, 0, view(9));
    buf.commit();
    expect(cache.batches[1]!.features).toEqual([{ hash: H, kind: 'clean', start: 0, data: view(9) }]);
    expect(cache.batches[1]!.members).toEqual([member]);
    buf.commit();
    expect(cache.batches).toHaveLength(2); // nothing left: no empty transaction
  });

  it('after a failed write nothing is marked committed: the next commit carries the same views', () => {
    let fail = true;
    const cache = recorder(() => fail);
    const buf = new CommitBuffer(cache, DIM, 1);
    const [aug] = buf.openImage(member, [{ kind: 'aug', start: 0, count: 2 }]);
    expect(() => buf.viewDone(aug!, 0, view(1))).not.toThrow();
    expect(() => buf.commitIfDue()).toThrow('write failed');
    expect(buf.committedViews).toBe(0);
    fail = false;
    buf.viewDone(aug!, 1, view(2));
    buf.commit();
    expect(cache.batches[0]!.features[0]!.data).toEqual(Float32Array.of(1, -1, 2, -2));
    expect(buf.committedViews).toBe(2);
  });

  it('an image with nothing to do is a member at once', () => {
    const cache = recorder();
    const buf = new CommitBuffer(cache, DIM, 1);
    expect(buf.openImage(member, [])).toEqual([]);
    buf.commit();
    expect(cache.batches[0]!.members).toEqual([member]);
  });
});
