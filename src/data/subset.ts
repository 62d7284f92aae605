// Stable, stratified subsets of a dataset, and list files that name them. Within each class the
// images are taken in order of their content hash, so a subset depends only on the bytes (not on
// paths, list order or the machine), and identical files are one image: a copy can never land on
// both sides of a train/test boundary.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import pLimit from 'p-limit';
import { UserError } from '../errors.js';
import type { DatasetItem } from './dataset.js';
import { hashBytes } from './hash.js';

export interface HashedItem extends DatasetItem {
  hash: string;
}

/** Content hashes of the items; the ones that cannot be read are returned apart (extract would skip them too). */
export async function hashItems(items: readonly DatasetItem[]): Promise<{ items: HashedItem[]; unreadable: DatasetItem[] }> {
  const limit = pLimit(16);
  const out = await Promise.all(items.map((it) => limit(async () => {
    try {
      return { ...it, hash: hashBytes(await readFile(it.path)) };
    } catch {
      return undefined;
    }
  })));
  return { items: out.filter((x): x is HashedItem => x !== undefined), unreadable: items.filter((_, i) => out[i] === undefined) };
}

/**
 * Consecutive per-class portions of `pool`: part j takes `perClass[j]` images of every class, each
 * class in content-hash order, skipping hashes in `exclude` and repeated ones. Throws naming the
 * class that has too few.
 */
export function takePerClass(pool: readonly HashedItem[], classes: readonly string[], perClass: readonly number[], exclude: ReadonlySet<string> = new Set()): HashedItem[][] {
  const byClass: HashedItem[][] = classes.map(() => []);
  const seen = new Set(exclude);
  const sorted = [...pool].sort((a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const it of sorted) {
    if (seen.has(it.hash)) continue;
    seen.add(it.hash);
    byClass[it.label]?.push(it);
  }
  const want = perClass.reduce((a, b) => a + b, 0);
  byClass.forEach((list, c) => {
    if (list.length < want) throw new UserError(`class "${classes[c]}" has ${list.length} distinct images, ${want} are needed (${perClass.join(' + ')})`);
  });
  let from = 0;
  return perClass.map((n) => {
    const part = byClass.flatMap((list) => list.slice(from, from + n));
    from += n;
    return part;
  });
}

/**
 * A list file of `absolute/path label` lines and the classes.txt beside it (what loadDataset reads),
 * each written to a temp file and renamed into place. Files in one folder share one classes.txt.
 */
export async function writeListFile(file: string, items: readonly DatasetItem[], classes: readonly string[]): Promise<void> {
  for (const it of items) {
    if (/[\r\n]/.test(it.path)) throw new UserError(`${it.path}: a path with a line break cannot go into a list file`);
  }
  for (const c of classes) {
    if (/[\r\n]/.test(c) || c.trim() !== c || c === '') throw new UserError(`class name "${c}" cannot go into classes.txt`);
  }
  await mkdir(dirname(file), { recursive: true });
  const put = async (path: string, text: string) => {
    await writeFile(`${path}.tmp`, text);
    await rename(`${path}.tmp`, path);
  };
  await put(join(dirname(file), 'classes.txt'), classes.map((c) => `${c}\n`).join(''));
  await put(file, items.map((it) => `${it.path} ${it.label}\n`).join(''));
}
