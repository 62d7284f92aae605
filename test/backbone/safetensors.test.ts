import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { parseSafetensors, readSafetensors } from '../../src/backbone/safetensors.js';
import { UserError } from '../../src/errors.js';
import { describeShared, sharedPath } from '../helpers/shared.js';

interface RawTensor {
  name: string;
  dtype: string;
  shape: number[];
  bytes: Uint8Array;
  /** Override the computed data_offsets (to lie). */
  offsets?: [number, number];
}

/** Builds a safetensors file: 8-byte LE header length, JSON header padded to 8, then the data. */
function build(tensors: RawTensor[], opts: { metadata?: unknown; headerLen?: bigint; rawHeader?: string; pad?: number } = {}): Buffer {
  const header: Record<string, unknown> = {};
  if (opts.metadata !== undefined) header.__metadata__ = opts.metadata;
  let at = opts.pad ?? 0;
  const chunks: Uint8Array[] = [new Uint8Array(at)];
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: t.offsets ?? [at, at + t.bytes.length] };
    chunks.push(t.bytes);
    at += t.bytes.length;
  }
  let json = opts.rawHeader ?? JSON.stringify(header);
  while ((8 + Buffer.byteLength(json)) % 8) json += ' ';
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(opts.headerLen ?? BigInt(Buffer.byteLength(json)));
  return Buffer.concat([len, Buffer.from(json), ...chunks]);
}

const f32 = (v: number[]) => new Uint8Array(new Float32Array(v).buffer);
const u16 = (v: number[]) => new Uint8Array(new Uint16Array(v).buffer);

const dir = mkdtempSync(join(tmpdir(), 'viewprobe-st-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(buf: Buffer): string {
  const p = join(dir, `t${n++}.safetensors`);
  writeFileSync(p, buf);
  return p;
}

async function fails(buf: Buffer, message: RegExp): Promise<void> {
  const p = file(buf);
  const err = await readSafetensors(p).then(() => undefined, (e: unknown) => e);
  expect(err, 'should have failed').toBeInstanceOf(UserError);
  const msg = (err as Error).message;
  expect(msg.startsWith(p + ':'), `names the file: ${msg}`).toBe(true);
  expect(msg).toMatch(message);
  expect(msg).not.toContain('\n');
}

describe('readSafetensors: valid files', () => {
  it('upcasts F32, F16 (normal, subnormal, max, inf) and BF16 exactly, and keeps metadata and sha256', async () => {
    const buf = build([
      { name: 'a', dtype: 'F32', shape: [2, 2], bytes: f32([1.5, -2, 3.25, 1e-30]) },
      // 1, -2, 65504 (max), 2^-24 (smallest subnormal), +inf, 0.333251953125
      { name: 'h', dtype: 'F16', shape: [6], bytes: u16([0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0x3555]) },
      // 1, -3.140625, 1.0009765625e-38-ish subnormal pattern 0x0001 → 2^-133
      { name: 'b', dtype: 'BF16', shape: [3], bytes: u16([0x3f80, 0xc049, 0x0001]) },
      { name: 'steps', dtype: 'I64', shape: [], bytes: new Uint8Array(8) },
    ], { metadata: { arch: 'resnet18', note: 'x' } });
    const p = file(buf);
    const st = await readSafetensors(p);
    expect(st.metadata).toEqual({ arch: 'resnet18', note: 'x' });
    expect(st.size).toBe(buf.length);
    expect(st.sha256).toBe(createHash('sha256').update(buf).digest('hex'));
    expect([...st.tensors.keys()]).toEqual(['a', 'h', 'b', 'steps']);
    expect(Array.from(st.tensors.get('a')!.data!)).toEqual(Array.from(new Float32Array([1.5, -2, 3.25, 1e-30])));
    expect(Array.from(st.tensors.get('h')!.data!)).toEqual([1, -2, 65504, 2 ** -24, Infinity, 0.333251953125]);
    expect(Array.from(st.tensors.get('b')!.data!)).toEqual([1, -3.140625, 2 ** -133]);
    expect(st.tensors.get('a')!.shape).toEqual([2, 2]);
    expect(st.tensors.get('steps')!.data).toBeUndefined();
  });

  it('reads an F32 tensor at an offset that is not 4-byte aligned', () => {
    const buf = build([
      { name: 'odd', dtype: 'U8', shape: [3], bytes: new Uint8Array([1, 2, 3]) },
      { name: 'w', dtype: 'F32', shape: [3], bytes: f32([0.1, 0.2, 0.3]) },
    ]);
    const t = parseSafetensors(buf, 'mem').tensors.get('w')!;
    expect(Array.from(t.data!)).toEqual(Array.from(new Float32Array([0.1, 0.2, 0.3])));
  });

  it('accepts zero-size tensors and an empty header object', () => {
    const buf = build([{ name: 'e', dtype: 'F32', shape: [0, 4], bytes: new Uint8Array(0) }]);
    expect(parseSafetensors(buf, 'mem').tensors.get('e')!.data!.length).toBe(0);
    expect(parseSafetensors(build([]), 'mem').tensors.size).toBe(0);
  });
});

describe('readSafetensors: bad files get one clear error naming the file (and the tensor)', () => {
  const good = () => [
    { name: 'conv.weight', dtype: 'F32', shape: [2, 2], bytes: f32([1, 2, 3, 4]) },
    { name: 'conv.bias', dtype: 'F16', shape: [2], bytes: u16([0x3c00, 0x3c00]) },
  ];

  it('missing file, empty file, file shorter than the 8-byte length', async () => {
    await expect(readSafetensors(join(dir, 'nope.safetensors'))).rejects.toThrow(/nope\.safetensors: cannot read weights: no such file/);
    await fails(Buffer.alloc(0), /0 bytes, too short/);
    await fails(Buffer.alloc(5), /5 bytes, too short/);
  });

  it('header length larger than the file (a truncated file or a lie), checked before any allocation', async () => {
    const buf = build(good());
    await fails(buf.subarray(0, 20), /header length \d+ is larger than the rest of the file/);
    // 2^62: allocating it would crash the process; the check happens first.
    await fails(build(good(), { headerLen: 1n << 62n }), /header length 4611686018427387904 is larger than the rest of the file/);
  });

  it('truncated inside the data: offsets run past the end', async () => {
    const buf = build(good());
    await fails(buf.subarray(0, buf.length - 1), /tensor "conv\.bias" data_offsets \[16, 20\] run past the end of the data \(19 bytes\)/);
  });

  it('header that is not JSON, not an object, or not UTF-8', async () => {
    await fails(build([], { rawHeader: '{"a": ' }), /header is not valid UTF-8 JSON/);
    await fails(build([], { rawHeader: '[1,2]' }), /header is not a JSON object/);
    const bin = build([], { rawHeader: '{"x":1}' });
    bin[9] = 0xff;
    await fails(bin, /header is not valid UTF-8 JSON/);
  });

  it('offsets overlapping another tensor, out of range, reversed, or not matching the shape', async () => {
    const g = good();
    await fails(build([g[0]!, { ...g[1]!, offsets: [12, 16] }]), /tensor "conv\.bias" bytes \[12, 16\) overlap tensor "conv\.weight" \[0, 16\)/);
    await fails(build([g[0]!, { ...g[1]!, offsets: [16, 2 ** 40] }]), /tensor "conv\.bias" data_offsets \[16, 1099511627776\] run past the end/);
    await fails(build([g[0]!, { ...g[1]!, offsets: [20, 16] }]), /tensor "conv\.bias" data_offsets \[20, 16\] end before they begin/);
    await fails(build([g[0]!, { ...g[1]!, offsets: [16, 18] }]), /tensor "conv\.bias" has 2 bytes but F16 \[2\] needs 4/);
    await fails(build([g[0]!, { ...g[1]!, offsets: [-4, 0] as [number, number] }]), /tensor "conv\.bias" has invalid data_offsets \[-4,0\]/);
  });

  it('a shape that claims more values than the file holds is refused before allocating', async () => {
    await fails(build([{ name: 'huge', dtype: 'F32', shape: [1 << 20, 1 << 20, 1 << 20], bytes: f32([1]) }]), /tensor "huge" shape \[1048576,1048576,1048576\] needs more bytes than the file holds/);
  });

  it('wrong dtype, invalid shape, non-string metadata', async () => {
    await fails(build([{ name: 'q', dtype: 'Q7', shape: [1], bytes: f32([1]) }]), /tensor "q" has unsupported dtype "Q7"/);
    await fails(build([{ name: 'q', dtype: 'F32', shape: [1.5], bytes: f32([1]) }]), /tensor "q" has an invalid shape \[1\.5\]/);
    await fails(build([{ name: 'q', dtype: 'F32', shape: [-1], bytes: f32([1]) }]), /tensor "q" has an invalid shape \[-1\]/);
    await fails(build(good(), { metadata: { bn_eps: 0.001 } }), /__metadata__ value "bn_eps" is not a string/);
  });
});

describeShared('readSafetensors on the shared weight files', ['weights/resnet18-random.safetensors', 'weights/resnet50-keras.safetensors'], () => {
  it('resnet18-random: 102 F16 tensors, sha256 as SOURCE.md records', async () => {
    const st = await readSafetensors(sharedPath('weights/resnet18-random.safetensors'));
    expect(st.sha256).toBe('7c8b3835feb4c4df1bf72149d7bbed009690b02036730f90fe1921f2629ebd79');
    expect(st.tensors.size).toBe(102);
    let values = 0;
    for (const t of st.tensors.values()) values += t.data!.length;
    expect(values).toBe(11_699_112);
    expect(st.metadata.arch).toBe('resnet18');
  });

  it('resnet50-keras: the one F32 tensor (bn1.running_var, above the F16 range) reads back exactly', async () => {
    const st = await readSafetensors(sharedPath('weights/resnet50-keras.safetensors'));
    expect(st.sha256).toBe('b2c5519e0f92213718f47f5834d382cc4aaaf66df05b08697825fe02bc7b36b7');
    expect(st.tensors.size).toBe(320);
    const v = st.tensors.get('bn1.running_var')!;
    expect(v.dtype).toBe('F32');
    expect(Math.max(...v.data!)).toBe(Math.fround(83614.734));
    expect(st.tensors.get('conv1.weight')!.dtype).toBe('F16');
  });
});
