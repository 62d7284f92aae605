import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { loadDataset, type Dataset } from '../../src/data/dataset.js';
import { describeShared, sharedPath } from '../helpers/shared.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vp-dataset-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function write(rel: string, content: string | Buffer = 'x'): string {
  const p = join(dir, rel);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, content);
  return p;
}

async function inputError(spec: string): Promise<string> {
  const e = await loadDataset(spec).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(InputError);
  return (e as InputError).message;
}

const rel = (d: Dataset) => d.items.map((i) => [i.path.slice(dir.length + 1), i.label]);

describe('list files', () => {
  it('reads `path label` lines relative to the list folder, with their line numbers', async () => {
    write('classes.txt', 'cat\ndog\n');
    const list = write('train.txt', 'img/a.jpg 0\nimg/b.jpg 1\n');
    const d = await loadDataset(list);
    expect(d.kind).toBe('list');
    expect(d.source).toBe(list);
    expect(d.classes).toEqual(['cat', 'dog']);
    expect(d.items).toEqual([
      { path: join(dir, 'img/a.jpg'), label: 0, line: 1 },
      { path: join(dir, 'img/b.jpg'), label: 1, line: 2 },
    ]);
    expect(d.warnings).toEqual([]);
  });

  it('accepts a BOM, CRLF, trailing blanks, blank lines, # comments, tabs, paths with spaces and absolute paths', async () => {
    write('classes.txt', '\uFEFFcat\r\ndog\r\n\r\n');
    const abs = join(dir, 'elsewhere', 'x.png');
    const text = `\uFEFF# a comment\r\nimg/a.jpg 0  \r\n\r\n   \r\nmy photos/b c.jpg\t1\r\n  # indented comment\r\n${abs} 1\r\n./img/../img/d.jpg 0`;
    const list = write('train.txt', text);
    const d = await loadDataset(list);
    expect(d.classes).toEqual(['cat', 'dog']);
    expect(d.items).toEqual([
      { path: join(dir, 'img/a.jpg'), label: 0, line: 2 },
      { path: join(dir, 'my photos/b c.jpg'), label: 1, line: 5 },
      { path: abs, label: 1, line: 7 },
      { path: join(dir, 'img/d.jpg'), label: 0, line: 8 },
    ]);
  });

  it('counts the same path with the same label once, with a warning', async () => {
    write('classes.txt', 'a\nb\n');
    const list = write('l.txt', 'x.jpg 1\ny.jpg 0\n./x.jpg 1\n');
    const d = await loadDataset(list);
    expect(rel(d)).toEqual([['x.jpg', 1], ['y.jpg', 0]]);
    expect(d.warnings).toEqual([`${list}:3: "./x.jpg" is listed again (first at line 1); counted once`]);
  });

  it('does not check that the images exist (extract records missing files)', async () => {
    write('classes.txt', 'a\n');
    const d = await loadDataset(write('l.txt', 'nowhere/x.jpg 0\n'));
    expect(d.items.length).toBe(1);
  });

  it('without classes.txt, the class names are the label numbers up to the largest', async () => {
    const list = write('sub/l.txt', 'a.jpg 2\nb.jpg 0\n');
    const d = await loadDataset(list);
    expect(d.classes).toEqual(['0', '1', '2']);
    expect(d.warnings).toEqual([`no ${join(dir, 'sub', 'classes.txt')}: the class names are the label numbers 0..2`]);
  });

  it('without classes.txt, refuses an absurd label instead of making that many classes', async () => {
    const list = write('l.txt', 'a.jpg 0\nb.jpg 123456789012345678901234567890\n');
    expect(await inputError(list)).toBe(
      `${list}:2: label 123456789012345678901234567890 is implausibly large without a classes.txt (at most 100000); put the class names in ${join(dir, 'classes.txt')}`,
    );
  });

  describe('errors name the file and line', () => {
    const cases: [string, string, string][] = [
      ['missing label', 'a.jpg 0\nb.jpg\n', ':2: missing label: expected "path label", found "b.jpg"'],
      ['non-integer label', 'a.jpg 0\n\nb.jpg 1.5\n', ':3: label "1.5" is not an integer'],
      ['word label', 'a.jpg cat\n', ':1: label "cat" is not an integer'],
      ['negative label', '# c\na.jpg -1\n', ':2: negative label -1'],
      ['label >= class count', 'a.jpg 0\nb.jpg 3\n', `:2: label 3 is out of range: ${'CLASSES'} names 3 classes (labels 0..2)`],
      ['same path, other label', 'a.jpg 0\nb.jpg 1\n./a.jpg 2\n', ':3: "./a.jpg" is listed with label 2 here and with label 0 at line 1'],
      ['empty dataset', '# only a comment\n\n', ': empty dataset: the list names no images'],
    ];
    for (const [name, text, expected] of cases) {
      it(name, async () => {
        const classes = write('classes.txt', 'a\nb\nc\n');
        const list = write('l.txt', text);
        expect(await inputError(list)).toBe(list + expected.replace('CLASSES', classes));
      });
    }

    it('a list file or folder that does not exist', async () => {
      expect(await inputError(join(dir, 'nope.txt'))).toBe(`${join(dir, 'nope.txt')}: no such list file or folder`);
    });

    it('classes.txt with a duplicate name', async () => {
      const classes = write('classes.txt', 'a\nb\n\nb\n');
      const list = write('l.txt', 'x.jpg 0\n');
      expect(await inputError(list)).toBe(`${classes}:4: duplicate class name "b" (first at line 2)`);
    });

    it('an empty classes.txt', async () => {
      const classes = write('classes.txt', '\n\n');
      expect(await inputError(write('l.txt', 'x.jpg 0\n'))).toBe(`${classes}: names no classes`);
    });

    it('a binary file passed as a list', async () => {
      const list = write('l.txt', Buffer.from([0x61, 0x20, 0x30, 0x0a, 0xff, 0xd8, 0xff, 0xe0, 0x0a]));
      expect(await inputError(list)).toBe(`${list}:2: not valid UTF-8 text`);
      const withNul = write('m.txt', Buffer.from('a.jpg 0\nb\u0000.jpg 1\n'));
      expect(await inputError(withNul)).toBe(`${withNul}:2: NUL byte: this is not a text file`);
    });

    it('keeps the path as the user gave it in the message', async () => {
      write('classes.txt', 'a\n');
      write('l.txt', 'x.jpg 7\n');
      const cwd = process.cwd();
      process.chdir(dir);
      try {
        expect(await inputError('l.txt')).toBe('l.txt:1: label 7 is out of range: classes.txt names 1 classes (labels 0..0)');
      } finally {
        process.chdir(cwd);
      }
    });
  });
});

describe('folders of class folders', () => {
  it('classes are the sorted folder names; images found recursively by extension, any case; hidden files and other files skipped', async () => {
    write('data/zebra/1.JPG');
    write('data/apple/b.png');
    write('data/apple/a.jpeg');
    write('data/apple/deep/er/c.WebP');
    write('data/apple/notes.txt');
    write('data/apple/.hidden.jpg');
    write('data/apple/.thumbs/d.jpg');
    write('data/Mango/m.tiff');
    write('data/.git/x.jpg');
    write('data/readme.md');
    for (const ext of ['gif', 'tif', 'avif', 'heic', 'bmp']) write(`data/zebra/f.${ext}`);
    const d = await loadDataset(join(dir, 'data'));
    expect(d.kind).toBe('folder');
    expect(d.classes).toEqual(['Mango', 'apple', 'zebra']);
    expect(rel(d)).toEqual([
      ['data/Mango/m.tiff', 0],
      ['data/apple/a.jpeg', 1],
      ['data/apple/b.png', 1],
      ['data/apple/deep/er/c.WebP', 1],
      ['data/zebra/1.JPG', 2],
      ['data/zebra/f.avif', 2],
      ['data/zebra/f.bmp', 2],
      ['data/zebra/f.gif', 2],
      ['data/zebra/f.heic', 2],
      ['data/zebra/f.tif', 2],
    ]);
    expect(d.items.every((i) => i.line === undefined)).toBe(true);
    expect(d.warnings).toEqual([`${join(dir, 'data')}: 1 entry beside the class folders ignored (images belong in a class folder)`]);
  });

  it('a symlink loop does not hang and does not repeat images; broken links named like images are kept for extract to record', async () => {
    write('data/a/x.jpg');
    write('data/a/sub/y.jpg');
    symlinkSync('..', join(dir, 'data/a/sub/up'));
    symlinkSync(join(dir, 'data/a'), join(dir, 'data/a/self'));
    symlinkSync('loop.jpg', join(dir, 'data/a/loop.jpg'));
    symlinkSync('nowhere.jpg', join(dir, 'data/a/dangling.jpg'));
    symlinkSync('nowhere', join(dir, 'data/a/dangling-dir'));
    const d = await loadDataset(join(dir, 'data'));
    expect(rel(d)).toEqual([
      ['data/a/dangling.jpg', 0],
      ['data/a/loop.jpg', 0],
      ['data/a/sub/y.jpg', 0],
      ['data/a/x.jpg', 0],
    ]);
  });

  it('follows a symlinked class folder and symlinked images', async () => {
    write('real/b/1.jpg');
    write('real/pic.jpg');
    mkdirSync(join(dir, 'data/a'), { recursive: true });
    symlinkSync(join(dir, 'real/b'), join(dir, 'data/b'));
    symlinkSync(join(dir, 'real/pic.jpg'), join(dir, 'data/a/pic.jpg'));
    const d = await loadDataset(join(dir, 'data'));
    expect(d.classes).toEqual(['a', 'b']);
    expect(rel(d)).toEqual([['data/a/pic.jpg', 0], ['data/b/1.jpg', 1]]);
  });

  it('skips a FIFO named like an image (reading it would block), with a warning', async () => {
    write('data/a/ok.jpg');
    execFileSync('mkfifo', [join(dir, 'data/a/pipe.jpg')]);
    const d = await loadDataset(join(dir, 'data'));
    expect(rel(d)).toEqual([['data/a/ok.jpg', 0]]);
    expect(d.warnings).toEqual([`${join(dir, 'data/a/pipe.jpg')}: skipped (not a regular file)`]);
  });

  it('keeps an empty class folder (labels stay stable) with a warning', async () => {
    write('data/a/1.jpg');
    mkdirSync(join(dir, 'data/b'));
    write('data/c/1.jpg');
    const d = await loadDataset(join(dir, 'data'));
    expect(d.classes).toEqual(['a', 'b', 'c']);
    expect(rel(d)).toEqual([['data/a/1.jpg', 0], ['data/c/1.jpg', 2]]);
    expect(d.warnings).toEqual([`${join(dir, 'data/b')}: class "b" has no images`]);
  });

  it('refuses a folder without class folders, or without images', async () => {
    write('flat/1.jpg');
    expect(await inputError(join(dir, 'flat'))).toBe(`${join(dir, 'flat')}: no class folders: expected DATA/<class>/<image> (or a list file)`);
    write('noimg/a/readme.txt');
    mkdirSync(join(dir, 'noimg/b'));
    expect(await inputError(join(dir, 'noimg'))).toMatch(new RegExp(`^${join(dir, 'noimg')}: empty dataset: no images in 2 class folder\\(s\\) \\(extensions: jpg jpeg png`));
  });
});

describeShared('tiny, as a list and as folders', ['data/tiny/train.txt', 'data/tiny/val.txt', 'data/tiny/classes.txt'], () => {
  for (const split of ['train', 'val']) {
    it(`${split}: the list file and the folder give the same classes and items`, async () => {
      const list = await loadDataset(sharedPath('data', 'tiny', `${split}.txt`));
      const folder = await loadDataset(sharedPath('data', 'tiny', split));
      expect(list.kind).toBe('list');
      expect(folder.kind).toBe('folder');
      expect(folder.classes).toEqual(list.classes);
      expect(list.classes).toEqual(['beet_salad', 'beignets', 'bibimbap']);
      const key = (d: Dataset) => d.items.map((i) => `${i.path} ${i.label}`).sort();
      expect(key(folder)).toEqual(key(list));
      expect(list.items.length).toBe(split === 'train' ? 24 : 12);
      expect(list.warnings).toEqual([]);
      expect(folder.warnings).toEqual([]);
    });
  }
});
