// A strict safetensors reader. The header is untrusted: its length, JSON, dtypes, shapes and offsets
// are all checked against the real file size before anything sized by them is allocated, so a
// truncated or hostile file gets one clear error instead of a huge allocation or a silently wrong
// tensor. Float tensors (F64/F32/F16/BF16) are upcast to float32; other dtypes (e.g. the I64
// `num_batches_tracked` of a plain PyTorch export) are validated but not converted. Like every
// safetensors reader, this assumes a little-endian host (all platforms Node ships for).
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { UserError, fsReason } from '../errors.js';

export type FloatDtype = 'F64' | 'F32' | 'F16' | 'BF16';

/** Bytes per element of every dtype the safetensors format defines. */
const DTYPE_BYTES: Record<string, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2,
  I64: 8, U64: 8, I32: 4, U32: 4, I16: 2, U16: 2, I8: 1, U8: 1, BOOL: 1,
  F8_E4M3: 1, F8_E5M2: 1,
};

export interface TensorEntry {
  name: string;
  dtype: string;
  shape: number[];
  /** Byte range inside the data section (after the header). */
  begin: number;
  end: number;
  /** Float32 values for float dtypes; undefined for integer/bool/fp8 tensors. */
  data?: Float32Array;
}

export interface SafetensorsFile {
  path: string;
  size: number;
  sha256: string;
  metadata: Record<string, string>;
  /** In header order. */
  tensors: Map<string, TensorEntry>;
}

/** The format's own cap on the JSON header (safetensors rejects larger headers too). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** Reads and validates a whole safetensors file. Errors are UserErrors naming the file (and tensor). */
export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw new UserError(`${path}: cannot read weights: ${fsReason(e)}`);
  }
  try {
    const { size } = await fh.stat();
    if (size < 8) throw bad(path, `file is ${size} bytes, too short for a safetensors header`);
    const lenBuf = Buffer.alloc(8);
    await fh.read(lenBuf, 0, 8, 0);
    checkHeaderLength(path, lenBuf.readBigUInt64LE(0), size);
    // The declared header fits inside the file, so the whole file is now a bounded allocation.
    const bytes = Buffer.allocUnsafe(size);
    let got = 0;
    while (got < size) {
      const { bytesRead } = await fh.read(bytes, got, size - got, got);
      if (bytesRead === 0) throw bad(path, `file shrank while reading (${got} of ${size} bytes)`);
      got += bytesRead;
    }
    const parsed = parseSafetensors(bytes, path);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    return { path, size, sha256, ...parsed };
  } finally {
    await fh.close();
  }
}

function bad(label: string, detail: string): UserError {
  return new UserError(`${label}: not a valid safetensors file: ${detail}`);
}

function checkHeaderLength(label: string, n: bigint, size: number): number {
  if (n > BigInt(size - 8)) {
    throw bad(label, `header length ${n} is larger than the rest of the file (${size - 8} bytes); the file is truncated or not safetensors`);
  }
  if (n > BigInt(MAX_HEADER_BYTES)) throw bad(label, `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (n < 2n) throw bad(label, `header length ${n} is too small`);
  return Number(n);
}

/** Validates and decodes an in-memory safetensors file; `label` names it in errors. */
export function parseSafetensors(bytes: Uint8Array, label: string): Pick<SafetensorsFile, 'metadata' | 'tensors'> {
  const size = bytes.byteLength;
  if (size < 8) throw bad(label, `file is ${size} bytes, too short for a safetensors header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, size);
  const headerLen = checkHeaderLength(label, view.getBigUint64(0, true), size);
  const dataStart = 8 + headerLen;
  const dataSize = size - dataStart;

  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, dataStart)));
  } catch (e) {
    throw bad(label, `header is not valid UTF-8 JSON (${(e as Error).message.split('\n')[0]})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw bad(label, 'header is not a JSON object');

  const metadata: Record<string, string> = {};
  const entries: TensorEntry[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw bad(label, '__metadata__ is not an object');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') throw bad(label, `__metadata__ value "${k}" is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    entries.push(checkEntry(label, name, raw, dataSize));
  }

  // Offsets must not overlap: two tensors sharing bytes is either corruption or an attack.
  const byStart = entries.filter((t) => t.end > t.begin).sort((a, b) => a.begin - b.begin);
  let reach: TensorEntry | undefined;
  for (const cur of byStart) {
    if (reach && cur.begin < reach.end) {
      throw bad(label, `tensor "${cur.name}" bytes [${cur.begin}, ${cur.end}) overlap tensor "${reach.name}" [${reach.begin}, ${reach.end})`);
    }
    if (!reach || cur.end > reach.end) reach = cur;
  }

  const tensors = new Map<string, TensorEntry>();
  for (const t of entries) {
    t.data = toFloat32(bytes, dataStart + t.begin, t);
    tensors.set(t.name, t);
  }
  return { metadata, tensors };
}

function checkEntry(label: string, name: string, raw: unknown, dataSize: number): TensorEntry {
  const where = `tensor "${name}"`;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw bad(label, `${where} is not an object`);
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) {
    throw bad(label, `${where} has unsupported dtype ${JSON.stringify(dtype)} (expected one of ${Object.keys(DTYPE_BYTES).join(', ')})`);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw bad(label, `${where} has an invalid shape ${JSON.stringify(shape)}`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
    throw bad(label, `${where} has invalid data_offsets ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) throw bad(label, `${where} data_offsets [${begin}, ${end}] end before they begin`);
  if (end > dataSize) {
    throw bad(label, `${where} data_offsets [${begin}, ${end}] run past the end of the data (${dataSize} bytes); the file is truncated or the header lies`);
  }
  // Multiply step by step so that a hostile shape cannot overflow into a plausible count.
  let count = 1;
  for (const d of shape as number[]) {
    count *= d;
    if (count * DTYPE_BYTES[dtype]! > dataSize) {
      throw bad(label, `${where} shape ${JSON.stringify(shape)} needs more bytes than the file holds`);
    }
  }
  const need = count * DTYPE_BYTES[dtype]!;
  if (end - begin !== need) {
    throw bad(label, `${where} has ${end - begin} bytes but ${dtype} ${JSON.stringify(shape)} needs ${need}`);
  }
  return { name, dtype, shape: shape as number[], begin, end };
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

let f16Table: Float32Array | undefined;

/** All 65536 half-precision values, so conversion is one table load per element. */
function halfTable(): Float32Array {
  if (f16Table) return f16Table;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) t[h] = sign * frac * 2 ** -24;
    else if (exp === 31) t[h] = frac ? NaN : sign * Infinity;
    else t[h] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return (f16Table = t);
}

function toFloat32(bytes: Uint8Array, at: number, t: TensorEntry): Float32Array | undefined {
  const n = (t.end - t.begin) / DTYPE_BYTES[t.dtype]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, t.end - t.begin);
  switch (t.dtype) {
    case 'F32': {
      if (LITTLE_ENDIAN) {
        // A view when aligned (the weights are folded into new arrays right after), else one memcpy:
        // safetensors headers rarely leave the data 4-byte aligned, and a DataView loop is ~10x slower.
        // (Uint8Array's slice copies; a Buffer's would be a view.)
        const off = bytes.byteOffset + at;
        return off % 4 === 0 ? new Float32Array(bytes.buffer, off, n) : new Float32Array(Uint8Array.prototype.slice.call(bytes, at, at + 4 * n).buffer);
      }
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
      return out;
    }
    case 'F16': {
      const table = halfTable();
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = table[bytes[at + 2 * i]! | (bytes[at + 2 * i + 1]! << 8)]!;
      return out;
    }
    case 'BF16': {
      // bfloat16 is the top half of a float32.
      const out = new Float32Array(n);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = (bytes[at + 2 * i]! | (bytes[at + 2 * i + 1]! << 8)) << 16;
      return out;
    }
    case 'F64': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, true);
      return out;
    }
    default:
      return undefined;
  }
}
