// Dataset readers: a folder of class folders, or a list file of `path label` lines. Everything a user
// can get wrong in a list file is refused here, before any image is touched, as `file:line: message`.
// A listed image that does not exist is NOT refused: extract records it as a failure and goes on, so
// one vanished photo never costs a long run.
import { promises as fsp, type Dirent } from 'node:fs';
import { dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { InputError, fsReason } from '../errors.js';

export interface DatasetItem {
  /** Absolute path of the image. */
  path: string;
  label: number;
  /** 1-based line in the list file (list datasets only). */
  line?: number;
}

export interface Dataset {
  /** Absolute path of the list file or folder. */
  source: string;
  kind: 'list' | 'folder';
  classes: string[];
  items: DatasetItem[];
  /** Things worth telling the user that do not stop the run. */
  warnings: string[];
}

export const IMAGE_EXTENSIONS: readonly string[] = ['jpg', 'jpeg', 'png', 'webp', 'gif', 'tif', 'tiff', 'avif', 'heic', 'bmp'];
const IMAGE_EXT_SET = new Set(IMAGE_EXTENSIONS);
/** Without classes.txt the class list is 0..max label: a typo like 10000000 must not allocate it. */
const MAX_LABEL_WITHOUT_CLASSES = 100_000;

export function isImageName(name: string): boolean {
  return IMAGE_EXT_SET.has(extname(name).slice(1).toLowerCase());
}

/** Reads DATA: a folder of class sub-folders, or a list file of `relative/path label` lines. */
export async function loadDataset(spec: string): Promise<Dataset> {
  const source = resolve(spec);
  let st;
  try {
    st = await fsp.stat(source);
  } catch (e) {
    throw new InputError(spec, undefined, fsReason(e, { ENOENT: 'no such list file or folder', ENOTDIR: 'no such list file or folder' }));
  }
  if (st.isDirectory()) return loadFolder(source, spec);
  if (st.isFile()) return loadList(source, spec);
  throw new InputError(spec, undefined, 'neither a list file nor a folder');
}


// ---------------------------------------------------------------------------------------------------
// List files

/**
 * Splits a text file into lines, 1-based: a UTF-8 BOM is dropped, `\r\n` and `\n` both end a line, and
 * each line must be valid UTF-8 (a binary file passed by mistake is reported at its first bad line).
 */
function textLines(buf: Buffer, file: string): string[] {
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  let start = buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf ? 3 : 0;
  const lines: string[] = [];
  while (start <= buf.length) {
    let end = buf.indexOf(0x0a, start);
    if (end < 0) end = buf.length;
    const bytes = buf.subarray(start, end);
    const lineNo = lines.length + 1;
    if (bytes.includes(0)) throw new InputError(file, lineNo, 'NUL byte: this is not a text file');
    let text: string;
    try {
      text = decoder.decode(bytes);
    } catch {
      throw new InputError(file, lineNo, 'not valid UTF-8 text');
    }
    lines.push(text.endsWith('\r') ? text.slice(0, -1) : text);
    start = end + 1;
  }
  return lines;
}

async function readClassesFile(file: string): Promise<string[] | undefined> {
  let buf: Buffer;
  try {
    buf = await fsp.readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException)?.code;
    if (code === 'ENOENT') return undefined;
    throw new InputError(file, undefined, fsReason(e, { ENOENT: 'cannot read', ENOTDIR: 'cannot read' }));
  }
  const classes: string[] = [];
  const firstLine = new Map<string, number>();
  textLines(buf, file).forEach((raw, i) => {
    const name = raw.trim();
    if (name === '') return;
    const prev = firstLine.get(name);
    if (prev !== undefined) throw new InputError(file, i + 1, `duplicate class name "${name}" (first at line ${prev})`);
    firstLine.set(name, i + 1);
    classes.push(name);
  });
  if (classes.length === 0) throw new InputError(file, undefined, 'names no classes');
  return classes;
}

async function loadList(source: string, spec: string): Promise<Dataset> {
  let buf: Buffer;
  try {
    buf = await fsp.readFile(source);
  } catch (e) {
    throw new InputError(spec, undefined, fsReason(e, { ENOENT: 'no such list file', ENOTDIR: 'no such list file' }));
  }
  const base = dirname(source);
  const classesFile = join(dirname(spec), 'classes.txt');
  const classes = await readClassesFile(classesFile);
  const warnings: string[] = [];
  const items: DatasetItem[] = [];
  const seen = new Map<string, DatasetItem>();
  let maxLabel = -1;

  textLines(buf, spec).forEach((raw, i) => {
    const lineNo = i + 1;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    // The label is the last field, the path everything before it: paths may contain spaces.
    const m = /\s+(\S+)$/.exec(line);
    if (!m) throw new InputError(spec, lineNo, `missing label: expected "path label", found "${line}"`);
    const rel = line.slice(0, m.index);
    const tok = m[1]!;
    if (/^-\d+$/.test(tok)) throw new InputError(spec, lineNo, `negative label ${tok}`);
    if (!/^\+?\d+$/.test(tok)) throw new InputError(spec, lineNo, `label "${tok}" is not an integer`);
    const label = Number(tok);
    if (!classes && label > MAX_LABEL_WITHOUT_CLASSES) {
      throw new InputError(spec, lineNo, `label ${tok} is implausibly large without a classes.txt (at most ${MAX_LABEL_WITHOUT_CLASSES}); put the class names in ${classesFile}`);
    }
    if (classes && label >= classes.length) {
      throw new InputError(spec, lineNo, `label ${label} is out of range: ${classesFile} names ${classes.length} classes (labels 0..${classes.length - 1})`);
    }
    const path = isAbsolute(rel) ? resolve(rel) : resolve(base, rel);
    const prev = seen.get(path);
    if (prev) {
      if (prev.label !== label) {
        throw new InputError(spec, lineNo, `"${rel}" is listed with label ${label} here and with label ${prev.label} at line ${prev.line}`);
      }
      warnings.push(`${spec}:${lineNo}: "${rel}" is listed again (first at line ${prev.line}); counted once`);
      return;
    }
    const item: DatasetItem = { path, label, line: lineNo };
    seen.set(path, item);
    items.push(item);
    if (label > maxLabel) maxLabel = label;
  });

  if (items.length === 0) throw new InputError(spec, undefined, 'empty dataset: the list names no images');
  let names = classes;
  if (!names) {
    names = Array.from({ length: maxLabel + 1 }, (_, i) => String(i));
    warnings.push(`no ${classesFile}: the class names are the label numbers 0..${maxLabel}`);
  }
  return { source, kind: 'list', classes: names, items, warnings };
}

// ---------------------------------------------------------------------------------------------------
// Folders of class folders

const isHidden = (name: string) => name.startsWith('.');
const byName = (a: Dirent, b: Dirent) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

async function loadFolder(source: string, spec: string): Promise<Dataset> {
  const warnings: string[] = [];
  let entries: Dirent[];
  try {
    entries = await fsp.readdir(source, { withFileTypes: true });
  } catch (e) {
    throw new InputError(spec, undefined, fsReason(e, { ENOENT: 'no such folder', ENOTDIR: 'no such folder' }));
  }
  const classes: string[] = [];
  let strayFiles = 0;
  for (const e of entries.sort(byName)) {
    if (isHidden(e.name)) continue;
    if (e.isDirectory() || (e.isSymbolicLink() && (await statOrUndefined(join(source, e.name)))?.isDirectory())) {
      classes.push(e.name);
    } else {
      strayFiles++;
    }
  }
  if (classes.length === 0) throw new InputError(spec, undefined, 'no class folders: expected DATA/<class>/<image> (or a list file)');
  if (strayFiles > 0) warnings.push(`${spec}: ${strayFiles} entr${strayFiles === 1 ? 'y' : 'ies'} beside the class folders ignored (images belong in a class folder)`);

  const items: DatasetItem[] = [];
  for (let label = 0; label < classes.length; label++) {
    const dir = join(source, classes[label]!);
    const before = items.length;
    // Real paths already walked for this class: a symlink back up the tree is walked once, not forever.
    const visited = new Set<string>();
    await walk(dir, label, items, visited, warnings);
    if (items.length === before) warnings.push(`${dir}: class "${classes[label]}" has no images`);
  }
  if (items.length === 0) {
    throw new InputError(spec, undefined, `empty dataset: no images in ${classes.length} class folder(s) (extensions: ${IMAGE_EXTENSIONS.join(' ')})`);
  }
  return { source, kind: 'folder', classes, items, warnings };
}

async function statOrUndefined(path: string) {
  try {
    return await fsp.stat(path);
  } catch {
    return undefined;
  }
}

async function walk(dir: string, label: number, items: DatasetItem[], visited: Set<string>, warnings: string[]): Promise<void> {
  let real: string;
  let entries: Dirent[];
  try {
    real = await fsp.realpath(dir);
    if (visited.has(real)) return;
    visited.add(real);
    entries = await fsp.readdir(dir, { withFileTypes: true });
  } catch (e) {
    warnings.push(`${dir}: skipped (${fsReason(e, { ENOENT: 'vanished', ENOTDIR: 'vanished' })})`);
    return;
  }
  for (const e of entries.sort(byName)) {
    if (isHidden(e.name)) continue;
    const full = join(dir, e.name);
    if (e.isDirectory()) {
      await walk(full, label, items, visited, warnings);
    } else if (e.isFile()) {
      if (isImageName(e.name)) items.push({ path: full, label });
    } else if (e.isSymbolicLink()) {
      const st = await statOrUndefined(full);
      if (st?.isDirectory()) {
        await walk(full, label, items, visited, warnings);
      } else if (!isImageName(e.name)) {
        continue;
      } else if (!st || st.isFile()) {
        // A dangling link or a link loop named like an image is kept: extract records why it failed.
        items.push({ path: full, label });
      } else {
        warnings.push(`${full}: skipped (not a regular file)`);
      }
    } else if (isImageName(e.name)) {
      // FIFOs, sockets, devices: reading one could block forever.
      warnings.push(`${full}: skipped (not a regular file)`);
    }
  }
}
