// The head's SIMD kernels (assembly/head.ts, compiled to dist/assembly/head.wasm at build time).
import { instantiateKernels, type KernelModule } from '../wasm.js';

/** Byte addresses into the instance's memory, 16-byte aligned; see assembly/head.ts for each contract. */
export interface HeadKernels extends KernelModule {
  fwd(x: number, w: number, b: number, z: number, dp4: number, nc: number): void;
  bwd(x: number, gw: number, g: number, dp4: number, nc: number): void;
  addDecay(g: number, p: number, nbytes: number, wd: number): void;
  adam(p: number, g: number, m: number, v: number, nbytes: number, w1: number, b2: number, w2: number, bc2sqrt: number, eps: number, stepSize: number): void;
}

/** A fresh instance (its own memory). */
export function headKernels(): HeadKernels {
  return instantiateKernels<HeadKernels>('head');
}
