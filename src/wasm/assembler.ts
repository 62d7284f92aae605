// A tiny WebAssembly assembler: enough opcodes for the project's SIMD kernels (the head's maths in
// src/train/wasm-kernels.ts, the resize passes in src/extract/resize-wasm.ts), so that no toolchain
// or binary blob is needed. WebAssembly.validate checks every module before it is used.

export const I32 = 0x7f, F32 = 0x7d, V128 = 0x7b;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

/** A function body under construction: a flat byte list with one helper per instruction used. */
export class Code {
  readonly bytes: number[] = [];
  private readonly localTypes: number[] = [];

  constructor(private readonly nParams: number) {}

  local(type: number): number {
    this.localTypes.push(type);
    return this.nParams + this.localTypes.length - 1;
  }

  private op(...b: number[]): this {
    this.bytes.push(...b);
    return this;
  }

  get(i: number) { return this.op(0x20, ...uleb(i)); }
  set(i: number) { return this.op(0x21, ...uleb(i)); }
  tee(i: number) { return this.op(0x22, ...uleb(i)); }
  i32(v: number) { return this.op(0x41, ...sleb(v)); }
  add() { return this.op(0x6a); }
  mul() { return this.op(0x6c); }
  gtU() { return this.op(0x4b); }
  ltU() { return this.op(0x49); }
  geU() { return this.op(0x4f); }
  block() { return this.op(0x02, 0x40); }
  loop() { return this.op(0x03, 0x40); }
  end() { return this.op(0x0b); }
  br(depth: number) { return this.op(0x0c, ...uleb(depth)); }
  brIf(depth: number) { return this.op(0x0d, ...uleb(depth)); }
  f32Load(offset = 0) { return this.op(0x2a, 2, ...uleb(offset)); }
  f32Store(offset = 0) { return this.op(0x38, 2, ...uleb(offset)); }
  f32Add() { return this.op(0x92); }
  private simd(code: number) { return this.op(0xfd, ...uleb(code)); }
  vLoad() { return this.simd(0x00).op(4, 0); }
  vStore() { return this.simd(0x0b).op(4, 0); }
  vZero() { return this.simd(0x0c).op(...new Array<number>(16).fill(0)); }
  splat() { return this.simd(0x13); }
  lane(i: number) { return this.simd(0x1f).op(i); }
  vAdd() { return this.simd(0xe4); }
  vSub() { return this.simd(0xe5); }
  vMul() { return this.simd(0xe6); }
  vDiv() { return this.simd(0xe7); }
  vSqrt() { return this.simd(0xe3); }
  // integer memory and SIMD ops (the resize kernels)
  sub() { return this.op(0x6b); }
  i32Load(offset = 0) { return this.op(0x28, 2, ...uleb(offset)); }
  /** v128.load32_zero: 4 bytes into lane 0 of an i32x4, the rest zero. */
  vLoad32Zero() { return this.simd(0x5c).op(0, 0); }
  /** v128.load64_zero: 8 bytes into the low half. */
  vLoad64Zero() { return this.simd(0x5d).op(0, 0); }
  /** v128.store32_lane / store64_lane: one lane to memory. */
  vStore32Lane(lane: number) { return this.simd(0x5a).op(0, 0, lane); }
  vStore64Lane(lane: number) { return this.simd(0x5b).op(0, 0, lane); }
  i32x4Splat() { return this.simd(0x11); }
  u8ToI16Low() { return this.simd(0x89); }
  u16ToI32Low() { return this.simd(0xa9); }
  u16ToI32High() { return this.simd(0xaa); }
  i32x4Add() { return this.simd(0xae); }
  i32x4Mul() { return this.simd(0xb5); }
  i32x4ShrS() { return this.simd(0xac); }
  /** i16x8.narrow_i32x4_s then i8x16.narrow_i16x8_u: signed saturation, then 0..255. */
  i32x4NarrowS() { return this.simd(0x85); }
  i16x8NarrowU() { return this.simd(0x66); }

  /** Body with its local declarations, as the code section wants it. */
  encode(): number[] {
    const decl: number[] = [];
    const groups: [number, number][] = [];
    for (const t of this.localTypes) {
      const g = groups[groups.length - 1];
      if (g && g[1] === t) g[0]++;
      else groups.push([1, t]);
    }
    decl.push(...uleb(groups.length));
    for (const [n, t] of groups) decl.push(...uleb(n), t);
    const body = [...decl, ...this.bytes, 0x0b];
    return [...uleb(body.length), ...body];
  }
}

function section(id: number, payload: number[]): number[] {
  return [id, ...uleb(payload.length), ...payload];
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function name(s: string): number[] {
  const b = [...Buffer.from(s, 'utf8')];
  return [...uleb(b.length), ...b];
}

export interface WasmFunction {
  name: string;
  params: number[];
  code: Code;
}

/** A module of exported functions (no results) and one exported memory of one page, grown by the caller. */
export function moduleBytes(funcs: WasmFunction[]): Uint8Array {
  const types = funcs.map((f) => [0x60, ...uleb(f.params.length), ...f.params, 0]);
  const exports = [
    ...funcs.map((f, i) => [...name(f.name), 0x00, ...uleb(i)]),
    [...name('memory'), 0x02, 0],
  ];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    ...section(1, vec(types)),
    ...section(3, vec(funcs.map((_, i) => uleb(i)))),
    ...section(5, vec([[0x00, ...uleb(1)]])),
    ...section(7, vec(exports)),
    ...section(10, vec(funcs.map((f) => f.code.encode()))),
  ]);
}

/** The few WebAssembly APIs used here (the project's tsconfig has no DOM lib, which is where their types live). */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
}

export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}

/**
 * Compiles `funcs` once and returns a factory of fresh instances (each with its own memory), or null
 * where WebAssembly (with SIMD) is unavailable or refuses the module.
 */
export function compileKernels<T>(funcs: () => WasmFunction[]): () => T | null {
  let compiled: object | null | undefined;
  return () => {
    if (compiled === undefined) {
      const wasm = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
      try {
        const bytes = moduleBytes(funcs());
        compiled = wasm && wasm.validate(bytes) ? new wasm.Module(bytes) : null;
      } catch {
        compiled = null;
      }
    }
    if (!compiled) return null;
    const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
    return new wasm.Instance(compiled, {}).exports as T;
  };
}
