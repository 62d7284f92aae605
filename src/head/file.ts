// The head file (JSON, `format: "viewprobe-head"`, version 1): class names, feature dim, the cache
// fingerprint the head was trained on, the epoch and its val accuracy, and the parameters laid out
// like torch's Linear: `weight` N*D row-major (row c = class c), `bias` N; optionally `transform`
// ({ power?, l2? }, see head.ts), applied to each feature row before the linear layer. Parameters are
// written as base64 of little-endian float32: exact (decimal text would need ~9 digits per value to
// round-trip) and about 4x smaller; in Python `np.frombuffer(base64.b64decode(w), '<f4').reshape(N, D)`.
// Plain JSON number arrays are accepted on load too, so a head exported from elsewhere loads.
import { readFile, rename, writeFile, unlink } from 'node:fs/promises';
import { InputError, errorMessage } from '../errors.js';
import type { Fingerprint } from '../cache/types.js';
import type { Head, HeadTransform } from './head.js';

export interface HeadMeta {
  /** The cache fingerprint whose features the head was trained on (null when unknown). */
  fingerprint: Fingerprint | null;
  fingerprintId: string | null;
  /** 1-based epoch the parameters come from (0: untrained). */
  epoch: number;
  /** Validation accuracy (0..1) at that epoch, null when not measured. */
  valAcc: number | null;
}

export type HeadFile = Head & HeadMeta;

export const HEAD_FORMAT = 'viewprobe-head';
export const HEAD_VERSION = 1;

function toBase64(a: Float32Array): string {
  const le = new Float32Array(a); // a copy, so the view below starts at offset 0
  const bytes = Buffer.from(le.buffer, le.byteOffset, le.byteLength);
  if (!littleEndian) swap32(bytes);
  return bytes.toString('base64');
}

const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function swap32(b: Buffer): void {
  b.swap32();
}

export function headToJson(head: Head, meta: HeadMeta): Record<string, unknown> {
  return {
    format: HEAD_FORMAT,
    version: HEAD_VERSION,
    classes: head.classes,
    dim: head.dim,
    fingerprint: meta.fingerprint,
    fingerprintId: meta.fingerprintId,
    epoch: meta.epoch,
    valAcc: meta.valAcc,
    dtype: 'float32',
    encoding: 'base64-le',
    weight: toBase64(head.weight),
    bias: toBase64(head.bias),
    ...(head.transform ? { transform: head.transform } : {}),
  };
}

/** Writes the head file atomically (a crash never leaves a half-written head behind). */
export async function saveHead(file: string, head: Head, meta: HeadMeta): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(headToJson(head, meta)) + '\n');
}

export async function writeFileAtomic(file: string, text: string | Uint8Array): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    await writeFile(tmp, text);
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
}

function floats(v: unknown, count: number, what: string, fail: (d: string) => never): Float32Array {
  let out: Float32Array;
  if (typeof v === 'string') {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(v)) fail(`${what} is not base64`);
    const bytes = Buffer.from(v, 'base64');
    if (bytes.length !== count * 4) fail(`${what} holds ${bytes.length / 4} floats, expected ${count}`);
    if (!littleEndian) swap32(bytes);
    out = new Float32Array(count);
    new Uint8Array(out.buffer).set(bytes);
  } else if (Array.isArray(v)) {
    if (v.length !== count) fail(`${what} has ${v.length} values, expected ${count}`);
    out = new Float32Array(count);
    for (let i = 0; i < count; i++) {
      if (typeof v[i] !== 'number') fail(`${what}[${i}] is not a number`);
      out[i] = v[i];
    }
  } else {
    return fail(`${what} is missing (expected base64 float32 or an array of numbers)`);
  }
  for (let i = 0; i < count; i++) if (!Number.isFinite(out[i]!)) fail(`${what}[${i}] is not finite`);
  return out;
}

/** The file's transform; undefined when it changes nothing. */
function parseTransform(v: unknown, fail: (d: string) => never): HeadTransform | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail('transform must be an object like {"power": 0.5, "l2": true}');
  const t = v as Record<string, unknown>;
  // An unknown key would be a transform this forward pass does not apply: refuse it rather than guess.
  for (const k of Object.keys(t)) if (k !== 'power' && k !== 'l2') fail(`transform has an unknown field "${k}" (power, l2)`);
  const out: HeadTransform = {};
  if (t.power !== undefined) {
    if (typeof t.power !== 'number' || !(t.power > 0) || !Number.isFinite(t.power)) fail(`transform.power must be a positive number, got ${JSON.stringify(t.power)}`);
    out.power = t.power as number;
  }
  if (t.l2 !== undefined) {
    if (typeof t.l2 !== 'boolean') fail(`transform.l2 must be true or false, got ${JSON.stringify(t.l2)}`);
    if (t.l2) out.l2 = true;
  }
  return out.power !== undefined || out.l2 ? out : undefined;
}

/** Parses and validates a head file's text; `source` names the file in errors. */
export function parseHead(text: string, source: string): HeadFile {
  const fail = (detail: string): never => {
    throw new InputError(source, undefined, detail);
  };
  let j: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return fail('not a viewprobe head file (not a JSON object)');
    j = parsed as Record<string, unknown>;
  } catch (e) {
    if (e instanceof InputError) throw e;
    return fail(`not a viewprobe head file (invalid JSON: ${errorMessage(e)})`);
  }
  if (j.format !== HEAD_FORMAT) fail(`not a viewprobe head file (format is ${JSON.stringify(j.format)}, expected "${HEAD_FORMAT}")`);
  if (j.version !== HEAD_VERSION) fail(`head file version ${JSON.stringify(j.version)} is not supported (this viewprobe reads version ${HEAD_VERSION})`);
  const classes = j.classes;
  if (!Array.isArray(classes) || classes.length === 0 || !classes.every((c) => typeof c === 'string' && c.length > 0)) {
    fail('classes must be a non-empty array of class names');
  }
  const names = classes as string[];
  if (new Set(names).size !== names.length) fail('classes has duplicate names');
  const dim = j.dim;
  if (typeof dim !== 'number' || !Number.isSafeInteger(dim) || dim <= 0) fail(`dim must be a positive integer, got ${JSON.stringify(dim)}`);
  const d = dim as number;
  if (j.dtype !== undefined && j.dtype !== 'float32') fail(`dtype ${JSON.stringify(j.dtype)} is not supported (float32 only)`);
  if (j.encoding !== undefined && j.encoding !== 'base64-le') fail(`encoding ${JSON.stringify(j.encoding)} is not supported (base64-le)`);
  const weight = floats(j.weight, names.length * d, 'weight', fail);
  const bias = floats(j.bias, names.length, 'bias', fail);
  const epoch = j.epoch ?? 0;
  if (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || epoch < 0) fail(`epoch must be a non-negative integer, got ${JSON.stringify(epoch)}`);
  const valAcc = j.valAcc ?? null;
  if (valAcc !== null && (typeof valAcc !== 'number' || !(valAcc >= 0 && valAcc <= 1))) fail(`valAcc must be a number in [0, 1] or null`);
  const fpId = j.fingerprintId ?? null;
  if (fpId !== null && typeof fpId !== 'string') fail('fingerprintId must be a string or null');
  const fp = j.fingerprint ?? null;
  if (fp !== null && (typeof fp !== 'object' || Array.isArray(fp))) fail('fingerprint must be an object or null');
  const transform = j.transform === undefined ? undefined : parseTransform(j.transform, fail);
  return {
    classes: names,
    dim: d,
    weight,
    bias,
    ...(transform ? { transform } : {}),
    fingerprint: fp as Fingerprint | null,
    fingerprintId: fpId as string | null,
    epoch: epoch as number,
    valAcc: valAcc as number | null,
  };
}

export interface HeadExpectation {
  dim?: number;
  classes?: string[];
  /** Describes where the expectation comes from, e.g. "the cache" or "the backbone". */
  what?: string;
}

/** Throws a clear error when the head cannot score features of `expect.dim` for `expect.classes`. */
export function checkHeadFits(head: Head, source: string, expect: HeadExpectation): void {
  const what = expect.what ?? 'the data';
  if (expect.dim !== undefined && expect.dim !== head.dim) {
    throw new InputError(source, undefined, `head takes ${head.dim}-d features but ${what} has ${expect.dim}-d features (a different backbone?)`);
  }
  if (expect.classes !== undefined) {
    const a = head.classes;
    const b = expect.classes;
    if (a.length !== b.length) {
      throw new InputError(source, undefined, `head has ${a.length} classes but ${what} has ${b.length}`);
    }
    for (let i = 0; i < a.length; i++) {
      if (a[i] !== b[i]) {
        throw new InputError(source, undefined, `class ${i} is "${a[i]}" in the head but "${b[i]}" in ${what}`);
      }
    }
  }
}

export async function loadHead(file: string, expect: HeadExpectation = {}): Promise<HeadFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(file, undefined, code === 'ENOENT' ? 'no such head file' : `cannot read head file (${errorMessage(e)})`);
  }
  const head = parseHead(text, file);
  checkHeadFits(head, file, expect);
  return head;
}
