import { describe, expect, it } from 'vitest';
import { Code, I32, compileKernels, moduleBytes, type WasmMemory } from '../../src/wasm/assembler.js';

interface Sum { memory: WasmMemory; sum(at: number): void }

/** mem[at] = mem[at] + mem[at + 4], as float32 */
function sumCode(): Code {
  const code = new Code(1);
  code.get(0).get(0).f32Load(0).get(0).f32Load(4).f32Add().f32Store(0);
  return code;
}

describe('the WebAssembly assembler', () => {
  it('builds a module that validates and runs', () => {
    const make = compileKernels<Sum>(() => [{ name: 'sum', params: [I32], code: sumCode() }]);
    const k = make()!;
    expect(k).not.toBeNull();
    const f = new Float32Array(k.memory.buffer, 0, 4);
    f.set([1.5, 2.25], 2);
    k.sum(8);
    expect(f[2]).toBe(3.75);
    // each call of the factory is a fresh instance with its own memory
    expect(new Float32Array(make()!.memory.buffer, 8, 1)[0]).toBe(0);
  });

  it('a module WebAssembly refuses gives null (callers then take their plain-JS path), not an exception', () => {
    const bad = new Code(1);
    bad.add(); // i32.add on an empty stack
    const wasm = (globalThis as unknown as { WebAssembly: { validate(b: Uint8Array): boolean } }).WebAssembly;
    expect(wasm.validate(moduleBytes([{ name: 'bad', params: [I32], code: bad }]))).toBe(false);
    expect(compileKernels(() => [{ name: 'bad', params: [I32], code: bad }])()).toBeNull();
  });

  it('encodes constants past one LEB128 byte, negative ones included', () => {
    const consts = [63, 64, -64, -65, 1 << 21, -(1 << 30)];
    for (const v of consts) {
      // mem[at] = mem[(at + v) + (-v) + 4]: a wrong encoding of v or of -v moves the load elsewhere.
      const code = new Code(1);
      code.get(0).i32(v).add().i32(-v).add().get(0).f32Load(4).f32Store(0);
      const k = compileKernels<Sum>(() => [{ name: 'sum', params: [I32], code }])()!;
      const f = new Float32Array(k.memory.buffer, 0, 4);
      f[1] = 7;
      k.sum(0);
      expect(f[0], String(v)).toBe(7);
    }
  });
});
