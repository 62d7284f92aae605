// The store's parts on their own: key encoding, blob packing, a segment list's contiguous views.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { BLOB_TARGET_BYTES, BlobPacker, contiguousViews, groupByBlob, type AugSeg } from '../../src/cache/blobs.js';
import { MAX_KEY_PATH_BYTES, rowKey, splitRange } from '../../src/cache/keys.js';
import { fileSizeLimit } from '../../src/cache/lmdb-file.js';
import { distModule } from '../helpers/child.js';

describe('keys', () => {
  it('keys a path as itself when short, and by a bounded prefix plus its digest when long', () => {
    expect(rowKey('train', '/d/a.jpg')).toEqual(['train', '/d/a.jpg']);
    const long = '/d/' + 'é'.repeat(MAX_KEY_PATH_BYTES);
    const other = long.slice(0, -1) + 'e';
    const [, k1] = rowKey('train', long);
    const [, k2] = rowKey('train', other);
    expect(Buffer.byteLength(k1)).toBeLessThan(MAX_KEY_PATH_BYTES);
    expect(k1).not.toBe(k2);
    expect(k1.startsWith('/d/é')).toBe(true);
    expect(() => rowKey('s'.repeat(300), long)).toThrow(/split name too long/);
  });

  it('a split range ends before any longer split name that starts with it', () => {
    const { start, end } = splitRange('train');
    expect(start).toEqual(['train']);
    expect(end[0] < 'train2' && end[0] > 'train').toBe(true);
  });
});

describe('blobs', () => {
  it('counts the views 0..n-1 that segments cover without a gap, in any order', () => {
    const seg = (start: number, views: number): AugSeg => [start, views, 0, 0];
    expect(contiguousViews([])).toBe(0);
    expect(contiguousViews([seg(3, 2), seg(0, 3)])).toBe(5);
    expect(contiguousViews([seg(0, 2), seg(3, 4)])).toBe(2);
    expect(contiguousViews([seg(0, 4), seg(2, 1)])).toBe(4);
  });

  it('packs rows into blobs of at most the target size and says where each row went', () => {
    const dim = 512;
    const rowsPerBlob = BLOB_TARGET_BYTES / (dim * 4);
    const put: [number, number][] = [];
    const packer = new BlobPacker(7, dim, (blob, bytes) => put.push([blob, bytes.length]));
    const a = packer.place(new Float32Array((rowsPerBlob - 1) * dim).fill(1));
    const b = packer.place(new Float32Array(1 * dim).fill(2));
    const c = packer.place(new Float32Array(2 * dim).fill(3));
    expect(packer.finish()).toBe(9);
    expect([a, b, c]).toEqual([[7, 0], [7, rowsPerBlob - 1], [8, 0]]);
    expect(put).toEqual([[7, BLOB_TARGET_BYTES], [8, 2 * dim * 4]]);
  });

  it('groups reads by blob, in blob order', () => {
    expect(groupByBlob([[3, 'a'], [1, 'b'], [3, 'c']])).toEqual([[1, ['b']], [3, ['a', 'c']]]);
  });
});

describe('lmdb-file', () => {
  it('reads the soft file-size limit of this process', () => {
    // ulimit -f counts 512-byte blocks in dash, 1024-byte ones in bash.
    const script = `const m = await import(${JSON.stringify(distModule('cache/lmdb-file.js'))}); console.log(m.fileSizeLimit())`;
    const r = spawnSync('/bin/sh', ['-c', `ulimit -f 200 && exec "${process.execPath}" --input-type=module -e '${script}'`], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect([200 * 512, 200 * 1024]).toContain(Number(r.stdout.trim()));
  });
});
