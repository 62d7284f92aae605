import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadDataset } from '../../src/data/dataset.js';
import { hashBytes } from '../../src/data/hash.js';
import { hashItems, takePerClass, writeListFile, type HashedItem } from '../../src/data/subset.js';
import { UserError } from '../../src/errors.js';

const root = mkdtempSync(join(tmpdir(), 'viewprobe-subset-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const classes = ['a', 'b', 'c'];
/** n items per class with made-up hashes; the hash, not the path or order, decides. */
function pool(n: number): HashedItem[] {
  const out: HashedItem[] = [];
  for (let c = 0; c < classes.length; c++) {
    for (let i = 0; i < n; i++) out.push({ path: `/d/${classes[c]}/${i}.jpg`, label: c, hash: hashBytes(Buffer.from(`${c}-${i}`)) });
  }
  return out;
}

describe('takePerClass', () => {
  it('takes consecutive portions per class in content-hash order, the same whatever the input order', () => {
    const items = pool(10);
    const [train, val] = takePerClass(items, classes, [3, 2]);
    expect(train).toHaveLength(9);
    expect(val).toHaveLength(6);
    for (let c = 0; c < 3; c++) {
      const hashes = items.filter((i) => i.label === c).map((i) => i.hash).sort();
      expect(train!.filter((i) => i.label === c).map((i) => i.hash)).toEqual(hashes.slice(0, 3));
      expect(val!.filter((i) => i.label === c).map((i) => i.hash)).toEqual(hashes.slice(3, 5));
    }
    const shuffled = [...items].reverse().map((i) => ({ ...i, path: i.path.replace('/d/', '/elsewhere/') }));
    const again = takePerClass(shuffled, classes, [3, 2]);
    expect(again.map((p) => p.map((i) => i.hash))).toEqual([train, val].map((p) => p!.map((i) => i.hash)));
  });

  it('identical files are one image, and excluded hashes are skipped: nothing crosses a boundary', () => {
    const items = pool(6);
    const copy = { ...items[0]!, path: '/d/a/copy-of-0.jpg' };
    const parts = takePerClass([...items, copy], classes, [3, 3]);
    const all = parts.flat().map((i) => i.hash);
    expect(new Set(all).size).toBe(all.length);
    const used = new Set(parts[0]!.map((i) => i.hash));
    const [test] = takePerClass(items, classes, [3], used);
    expect(test!.some((i) => used.has(i.hash))).toBe(false);
  });

  it('names the class that has too few images', () => {
    const items = pool(5).filter((i) => !(i.label === 1 && i.path.endsWith('/4.jpg')));
    expect(() => takePerClass(items, classes, [3, 2])).toThrow(UserError);
    expect(() => takePerClass(items, classes, [3, 2])).toThrow('class "b" has 4 distinct images, 5 are needed (3 + 2)');
  });
});

describe('hashItems', () => {
  it('hashes the bytes; unreadable files are returned apart', async () => {
    const dir = join(root, 'h');
    mkdirSync(dir);
    writeFileSync(join(dir, 'x.jpg'), 'xx');
    const got = await hashItems([{ path: join(dir, 'x.jpg'), label: 0 }, { path: join(dir, 'gone.jpg'), label: 1 }]);
    expect(got.items).toEqual([{ path: join(dir, 'x.jpg'), label: 0, hash: hashBytes(Buffer.from('xx')) }]);
    expect(got.unreadable).toEqual([{ path: join(dir, 'gone.jpg'), label: 1 }]);
  });
});

describe('writeListFile', () => {
  it('writes absolute paths + classes.txt that loadDataset reads back as the same items (spaces in paths too)', async () => {
    const dir = join(root, 'lists');
    const items = [{ path: '/data/my photos/a 1.jpg', label: 0 }, { path: '/data/b.jpg', label: 2 }];
    await writeListFile(join(dir, 'test.txt'), items, ['cat', 'English springer', 'dog']);
    expect(readFileSync(join(dir, 'classes.txt'), 'utf8')).toBe('cat\nEnglish springer\ndog\n');
    const ds = await loadDataset(join(dir, 'test.txt'));
    expect(ds.classes).toEqual(['cat', 'English springer', 'dog']);
    expect(ds.items.map(({ path, label }) => ({ path, label }))).toEqual(items);
  });

  it('refuses a path or class name that a list file cannot hold', async () => {
    await expect(writeListFile(join(root, 'bad', 'l.txt'), [{ path: '/a\nb.jpg', label: 0 }], ['x'])).rejects.toThrow(/line break/);
    await expect(writeListFile(join(root, 'bad', 'l.txt'), [], [' x'])).rejects.toThrow(/cannot go into classes.txt/);
  });
});
