// Where the demo's photos and weights come from: `--data DIR` (and `--weights FILE`); else the project's
// shared folder (food101-10 + the Keras ResNet50 ImageNet weights); else, for a checkout anywhere,
// Imagenette 160 px downloaded once + the default torchvision ResNet18 weights (downloaded once).
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fetchArchive, type ArchiveSource } from '../data/archive.js';
import { loadDataset } from '../data/dataset.js';
import { hashItems, takePerClass, writeListFile, type HashedItem } from '../data/subset.js';
import { cacheDir } from '../download.js';
import { UserError } from '../errors.js';
import { sharedDir } from '../shared.js';
import type { Counts } from './plan.js';

/**
 * fast.ai's Imagenette, 160 px version (shorter side 160): 10 easy ImageNet classes, 9,469 train and
 * 3,925 val photos. Its publisher gives no checksum; the md5 is the one torchvision pins
 * (torchvision.datasets.Imagenette). The first download's size and sha256 are recorded and enforced.
 */
export const IMAGENETTE: ArchiveSource = {
  name: 'imagenette2-160',
  url: 'https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-160.tgz',
  description: 'Imagenette 160 px (fast.ai)',
  md5: 'e793b78cc4c9e9a4ccc0c1155377a412',
  maxBytes: 400 * 1024 * 1024,
};

/** Imagenette's folders are WordNet ids; torchvision's names for them. */
export const IMAGENETTE_CLASSES: Record<string, string> = {
  n01440764: 'tench',
  n02102040: 'English springer',
  n02979186: 'cassette player',
  n03000684: 'chain saw',
  n03028079: 'church',
  n03394916: 'French horn',
  n03417042: 'garbage truck',
  n03425413: 'gas pump',
  n03445777: 'golf ball',
  n03888605: 'parachute',
};

export interface DemoSource {
  /** Short name, for folder names and the table's title. */
  name: string;
  /** Where the training pool comes from (train, and the val that chooses, are carved from it). */
  train: string;
  /** The dataset's own held-out split: the test images are carved from it. */
  heldOut: string;
  /** undefined: the default ResNet18, downloaded once. */
  weights?: string;
  /** The backbone, when known before loading it (for the time projection). */
  arch?: string;
  /** Renames classes (Imagenette's WordNet ids). */
  classNames?: Record<string, string>;
  /** For the log: where this came from. */
  origin: string;
}

/** DIR/train.txt + DIR/val.txt (list files), or DIR/train/ + DIR/val/ (class folders). */
export function dataDirSplits(dir: string): { train: string; heldOut: string } {
  const abs = resolve(dir);
  for (const [train, held] of [['train.txt', 'val.txt'], ['train', 'val']] as const) {
    if (existsSync(join(abs, train)) && existsSync(join(abs, held))) return { train: join(abs, train), heldOut: join(abs, held) };
  }
  const isDir = existsSync(abs) && statSync(abs).isDirectory();
  throw new UserError(`--data ${dir}: ${isDir ? 'expected train.txt and val.txt (list files) or train/ and val/ (class folders) in it' : 'no such folder'}`);
}

/** The one line a user without network access needs. */
export const OFFLINE_HINT = 'offline, point the demo at local files: VIEWPROBE_SHARED=/path/to/shared npm run demo ' +
  '(a folder holding data/food101-10 and weights/resnet50-keras.safetensors), or npm run demo -- --data DIR --weights FILE';

export interface SourceOptions {
  data?: string;
  weights?: string;
  /** Skip the shared folder even if it is there (what a checkout elsewhere does). */
  download?: boolean;
  env?: NodeJS.ProcessEnv;
  quiet?: boolean;
  /** For tests: another archive in Imagenette's layout. */
  archive?: ArchiveSource;
}

export async function resolveSource(o: SourceOptions): Promise<DemoSource> {
  const env = o.env ?? process.env;
  if (o.data) {
    const s = dataDirSplits(o.data);
    return { name: resolve(o.data).split(/[\\/]/).filter(Boolean).pop() ?? 'data', ...s, ...(o.weights ? { weights: resolve(o.weights) } : { arch: 'resnet18' }), origin: `--data ${o.data}` };
  }
  const shared = sharedDir();
  const food = join(shared, 'data', 'food101-10');
  const keras = join(shared, 'weights', 'resnet50-keras.safetensors');
  if (!o.download && existsSync(food) && existsSync(keras)) {
    return {
      name: 'food101-10', ...dataDirSplits(food),
      weights: o.weights ? resolve(o.weights) : keras,
      ...(o.weights ? {} : { arch: 'resnet50' }),
      origin: `the shared folder ${shared}`,
    };
  }
  const archive = o.archive ?? IMAGENETTE;
  const got = await fetchArchive(archive, { home: cacheDir(env), ...(o.quiet ? { quiet: true } : {}) });
  const root = join(got.dir, archive.name);
  return {
    name: 'imagenette-160', train: join(root, 'train'), heldOut: join(root, 'val'),
    ...(o.weights ? { weights: resolve(o.weights) } : { arch: 'resnet18' }),
    classNames: IMAGENETTE_CLASSES,
    origin: `${archive.description}, ${archive.url} (cached in ${got.dir})`,
  };
}

export interface SourceData {
  classes: string[];
  /** The training pool and the held-out pool, with content hashes. */
  pool: HashedItem[];
  held: HashedItem[];
  /** Listed images that cannot be read (left out). */
  unreadable: number;
}

/** Both pools read and hashed; class names renamed when the source says so. */
export async function loadSourceData(source: DemoSource): Promise<SourceData> {
  const trainSet = await loadDataset(source.train);
  const heldSet = await loadDataset(source.heldOut);
  if (trainSet.classes.length !== heldSet.classes.length || trainSet.classes.some((c, i) => c !== heldSet.classes[i])) {
    throw new UserError(`${heldSet.source}: classes [${heldSet.classes.join(', ')}] are not those of ${trainSet.source} [${trainSet.classes.join(', ')}]`);
  }
  const names = source.classNames;
  const classes = names && trainSet.classes.every((c) => names[c]) ? trainSet.classes.map((c) => names[c]!) : trainSet.classes;
  const pool = await hashItems(trainSet.items);
  const held = await hashItems(heldSet.items);
  return { classes, pool: pool.items, held: held.items, unreadable: pool.unreadable.length + held.unreadable.length };
}

/**
 * The three disjoint parts, stratified and chosen by content hash: train and val (which chooses) from
 * the training pool, test from the held-out pool (never an image already taken), written as list
 * files train.txt, val.txt, test.txt + classes.txt in `dir`.
 */
export async function writeDemoLists(d: SourceData, perClass: Counts, dir: string) {
  const [train, val] = takePerClass(d.pool, d.classes, [perClass.train, perClass.val]) as [HashedItem[], HashedItem[]];
  const [test] = takePerClass(d.held, d.classes, [perClass.test], new Set([...train, ...val].map((i) => i.hash))) as [HashedItem[]];
  const files = { train: join(dir, 'train.txt'), val: join(dir, 'val.txt'), test: join(dir, 'test.txt') };
  await writeListFile(files.train, train, d.classes);
  await writeListFile(files.val, val, d.classes);
  await writeListFile(files.test, test, d.classes);
  return { parts: { train, val, test }, files };
}
