import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create as tarCreate } from 'tar';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { loadDataset } from '../../src/data/dataset.js';
import { runDemo } from '../../src/demo/main.js';
import { serve } from '../helpers/http.js';
import { dataDirSplits, IMAGENETTE, IMAGENETTE_CLASSES, loadSourceData, OFFLINE_HINT, resolveSource, writeDemoLists } from '../../src/demo/sources.js';

const root = mkdtempSync(join(tmpdir(), 'viewprobe-demo-src-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Imagenette's layout in miniature: imagenette2-160/{train,val}/<wnid>/*.JPEG, 8 train + 5 val per class. */
async function tinyImagenette(): Promise<Buffer> {
  const src = join(root, 'tiny-src');
  for (const [split, count] of [['train', 8], ['val', 5]] as const) {
    for (const wnid of Object.keys(IMAGENETTE_CLASSES)) {
      const dir = join(src, 'imagenette2-160', split, wnid);
      mkdirSync(dir, { recursive: true });
      for (let i = 0; i < count; i++) writeFileSync(join(dir, `${wnid}_${i}.JPEG`), `${split} ${wnid} ${i}`);
    }
  }
  // A copy of a training photo in val: it must never be a test image if it is a train or val one.
  writeFileSync(join(src, 'imagenette2-160', 'val', 'n01440764', 'copy.JPEG'), 'train n01440764 0');
  const file = join(root, 'tiny.tgz');
  await tarCreate({ gzip: true, file, cwd: src, portable: true }, ['imagenette2-160']);
  return readFileSync(file);
}

describe('demo sources', () => {
  it('--data DIR: list files (train.txt + val.txt) first, else class folders (train/ + val/)', () => {
    const lists = join(root, 'lists');
    mkdirSync(join(lists, 'train'), { recursive: true });
    mkdirSync(join(lists, 'val'));
    writeFileSync(join(lists, 'train.txt'), '');
    writeFileSync(join(lists, 'val.txt'), '');
    expect(dataDirSplits(lists)).toEqual({ train: join(lists, 'train.txt'), heldOut: join(lists, 'val.txt') });
    const folders = join(root, 'folders');
    mkdirSync(join(folders, 'train'), { recursive: true });
    mkdirSync(join(folders, 'val'));
    expect(dataDirSplits(folders)).toEqual({ train: join(folders, 'train'), heldOut: join(folders, 'val') });
    mkdirSync(join(root, 'empty'));
    expect(() => dataDirSplits(join(root, 'empty'))).toThrow(/expected train.txt and val.txt .* or train\/ and val\//);
    expect(() => dataDirSplits(join(root, 'nope'))).toThrow(/no such folder/);
  });

  it('the public dataset: Imagenette 160 px from fast.ai, md5 as torchvision pins it, the 10 classes named', () => {
    expect(IMAGENETTE).toMatchObject({ url: 'https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-160.tgz', md5: 'e793b78cc4c9e9a4ccc0c1155377a412' });
    expect(Object.keys(IMAGENETTE_CLASSES)).toHaveLength(10);
    expect(IMAGENETTE_CLASSES.n03888605).toBe('parachute');
  });

  it('offline: one line says what to pass', () => {
    expect(OFFLINE_HINT).not.toContain('\n');
    expect(OFFLINE_HINT).toMatch(/VIEWPROBE_SHARED=\/path\/to\/shared .*--data DIR --weights FILE/);
  });

  it('usage errors stop the demo with exit 2 and one line before any work', async () => {
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(await runDemo(['--bogus'])).toBe(2);
      expect(await runDemo(['--data', join(root, 'nope')])).toBe(2);
      const said = stderr.mock.calls.map((c) => String(c[0])).join('');
      expect(said).toContain("demo: Unknown option '--bogus'");
      expect(said).toContain(`demo: --data ${join(root, 'nope')}: no such folder`);
    } finally {
      stderr.mockRestore();
    }
  });

  it('a checkout without ../shared: the archive is fetched, unpacked, and carved into stratified, disjoint list files with the class names', async () => {
    const tgz = await tinyImagenette();
    let asked = 0;
    const server = await serve((_req, res) => {
      asked++;
      res.writeHead(200, { 'content-length': tgz.length });
      res.end(tgz);
    });
    try {
      const url = `${server.base}/imagenette2-160.tgz`;
      const archive = { ...IMAGENETTE, url, md5: createHash('md5').update(tgz).digest('hex') };
      const home = join(root, 'home');
      const source = await resolveSource({ download: true, env: { VIEWPROBE_HOME: home }, quiet: true, archive });
      expect(source).toMatchObject({ name: 'imagenette-160', arch: 'resnet18' });
      expect(source.weights).toBeUndefined(); // the default ResNet18 download
      const data = await loadSourceData(source);
      expect(data.classes).toEqual(Object.values(IMAGENETTE_CLASSES));
      const lists = join(root, 'lists');
      const { parts, files } = await writeDemoLists(data, { train: 3, val: 2, test: 4 }, lists);
      for (const [part, perClass] of [['train', 3], ['val', 2], ['test', 4]] as const) {
        const ds = await loadDataset(files[part]);
        expect(ds.classes).toEqual(data.classes);
        expect(ds.items).toHaveLength(10 * perClass);
        for (let c = 0; c < 10; c++) expect(ds.items.filter((i) => i.label === c)).toHaveLength(perClass);
      }
      expect(parts.train.every((i) => i.path.includes('/train/')) && parts.val.every((i) => i.path.includes('/train/'))).toBe(true);
      expect(parts.test.every((i) => i.path.includes('/val/'))).toBe(true);
      const hashes = [...parts.train, ...parts.val, ...parts.test].map((i) => i.hash);
      expect(new Set(hashes).size).toBe(hashes.length);
      // Rerun: the same lists, from the cached tree (the server is not asked again).
      const again = await writeDemoLists(await loadSourceData(await resolveSource({ download: true, env: { VIEWPROBE_HOME: home }, quiet: true, archive })), { train: 3, val: 2, test: 4 }, join(root, 'lists2'));
      expect(readFileSync(again.files.test, 'utf8')).toBe(readFileSync(files.test, 'utf8'));
      expect(asked).toBe(1);
    } finally {
      await server.close();
    }
  });
});
