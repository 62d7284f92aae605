// Loads the project's WebAssembly kernels: AssemblyScript sources in assembly/, compiled at build time
// (`npm run build:wasm`, part of build and prepare) to dist/assembly/NAME.wasm. There is no fallback:
// a missing or refused module is an error that says how to rebuild, never a silent slower path.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The few WebAssembly APIs used here (the project's tsconfig has no DOM lib, where their types live). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
}

export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}

/** What every kernel module exports besides its functions. */
export interface KernelModule {
  memory: WasmMemory;
  /** First 16-byte-aligned byte free for the caller (past the module's own static data). */
  heapBase(): number;
}

export const WASM_PAGE = 65536;

const compiled = new Map<string, object>();

/**
 * Where NAME.wasm is. This file is src/wasm.ts under vitest and dist/wasm.js when built: both sit one
 * level below the package root, so one relative path serves both.
 */
export function kernelFile(name: string): string {
  return fileURLToPath(new URL(`../dist/assembly/${name}.wasm`, import.meta.url));
}

/** A fresh instance (own memory) of the kernel module NAME; compiles it once per process. */
export function instantiateKernels<T extends KernelModule>(name: string): T {
  const wasm = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
  if (!wasm) throw new Error('this JavaScript runtime has no WebAssembly (viewprobe needs Node >= 20)');
  let mod = compiled.get(name);
  if (!mod) {
    const file = kernelFile(name);
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(file);
    } catch (e) {
      throw new Error(`the ${name} kernels are missing (${file}: ${(e as NodeJS.ErrnoException).code ?? e}); run npm run build, which compiles assembly/ with AssemblyScript`);
    }
    try {
      mod = new wasm.Module(bytes);
    } catch (e) {
      throw new Error(`WebAssembly refused ${file} (${(e as Error).message}); viewprobe needs WebAssembly SIMD (Node >= 20)`);
    }
    compiled.set(name, mod);
  }
  return new wasm.Instance(mod, {}).exports as T;
}

/** Grows `m` so that it holds at least `bytes` bytes. */
export function ensureMemory(m: WasmMemory, bytes: number, limit = 3.5 * 2 ** 30): void {
  if (bytes > limit) throw new Error(`the kernels need ${(bytes / 2 ** 30).toFixed(1)} GiB of WebAssembly memory (limit ${(limit / 2 ** 30).toFixed(1)} GiB)`);
  const have = m.buffer.byteLength;
  if (bytes > have) m.grow(Math.ceil((bytes - have) / WASM_PAGE));
}

/** `bytes` rounded up to a multiple of 16 (the kernels' v128 alignment); exact past 2 GiB, unlike `& ~15`. */
export const align16 = (bytes: number): number => Math.ceil(bytes / 16) * 16;

/** Kernel memory kept between calls (a 4-megapixel photo's buffers fit); past it the instance is let go. */
const KEEP_KERNEL_BYTES = 64 * 2 ** 20;

/**
 * One instance of the kernel module NAME per thread, made on first use, for kernels that take their
 * inputs and outputs in fresh buffers on every call (image/resize.ts, image/augment.ts). Wasm memory
 * never shrinks, so after a call that needed more than KEEP_KERNEL_BYTES the instance is dropped.
 */
export class KernelSlot<T extends KernelModule> {
  private instance: T | undefined;

  /** `slack`: bytes the kernels may read or write past the end of each buffer. */
  constructor(private readonly name: string, private readonly slack = 0) {}

  /**
   * Places buffers of these byte sizes (16-byte aligned, each followed by the slack), grows the memory
   * to hold them and runs `fn` with their addresses and the memory.
   */
  run<R, const S extends readonly number[]>(sizes: S, fn: (k: T, at: { [I in keyof S]: number }, mem: ArrayBuffer) => R): R {
    const k = (this.instance ??= instantiateKernels<T>(this.name));
    let top = k.heapBase();
    const at = sizes.map((bytes) => { const a = top; top = align16(a + bytes + this.slack); return a; });
    ensureMemory(k.memory, top);
    try {
      return fn(k, at as { [I in keyof S]: number }, k.memory.buffer);
    } finally {
      if (top > KEEP_KERNEL_BYTES) this.instance = undefined;
    }
  }
}
