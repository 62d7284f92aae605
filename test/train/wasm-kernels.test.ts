import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/train/random.js';
import { Adam } from '../../src/train/schedule.js';
import { instantiateKernels, type HeadKernels } from '../../src/train/wasm-kernels.js';

function kernels(bytes: number): { k: HeadKernels; f32: Float32Array } {
  const k = instantiateKernels();
  if (!k) throw new Error('WebAssembly SIMD is not available in this Node');
  k.memory.grow(Math.ceil(bytes / 65536));
  return { k, f32: new Float32Array(k.memory.buffer) };
}

const rng = new Rng(5, 77);
const rand = (n: number, scale = 1) => Float32Array.from({ length: n }, () => (rng.uniform() - 0.5) * 2 * scale);

describe('WebAssembly SIMD head kernels', () => {
  // d=13 pads rows to 16 floats; class counts cover groups of four, the single-class tail, and both.
  for (const [d, nc] of [[13, 7], [16, 4], [8, 1], [2048, 10]] as const) {
    it(`fwd and bwd match a scalar reference (D=${d}, N=${nc})`, () => {
      const dp = Math.ceil(d / 4) * 4;
      const X = 0, W = X + dp * 4, B = W + nc * dp * 4, Z = B + 64 * 4, GW = Z + 64 * 4, G = GW + nc * dp * 4;
      const { k, f32 } = kernels(G + 64 * 4);
      const x = rand(d), w = rand(nc * d, 0.1), b = rand(nc), g = rand(nc);
      f32.set(x, X / 4);
      for (let c = 0; c < nc; c++) f32.set(w.subarray(c * d, (c + 1) * d), W / 4 + c * dp);
      f32.set(b, B / 4);
      f32.set(g, G / 4);
      const gw0 = rand(nc * dp);
      for (let c = 0; c < nc; c++) for (let j = d; j < dp; j++) gw0[c * dp + j] = 0;
      f32.set(gw0, GW / 4);

      k.fwd(X, W, B, Z, dp * 4, nc);
      k.bwd(X, GW, G, dp * 4, nc);
      let zErr = 0, gwErr = 0;
      for (let c = 0; c < nc; c++) {
        let want = b[c]!;
        for (let j = 0; j < d; j++) want += w[c * d + j]! * x[j]!;
        zErr = Math.max(zErr, Math.abs(f32[Z / 4 + c]! - want));
        for (let j = 0; j < dp; j++) {
          const gwWant = gw0[c * dp + j]! + (j < d ? g[c]! * x[j]! : 0);
          gwErr = Math.max(gwErr, Math.abs(f32[GW / 4 + c * dp + j]! - gwWant));
        }
      }
      expect(zErr).toBeLessThan(1e-5 * Math.sqrt(d));
      expect(gwErr).toBeLessThan(1e-6);
      // Nothing past the last class row is written.
      expect(f32[Z / 4 + nc]).toBe(0);
    });
  }

  it('adam is bit-identical to the scalar torch-ordered Adam', () => {
    const n = 4 * 37;
    const P = 0, G = n * 4, M = 2 * n * 4, V = 3 * n * 4;
    const { k, f32 } = kernels(4 * n * 4);
    const p = rand(n, 2);
    p[0] = 1e-30;
    p[1] = -3e4;
    const ref = p.slice();
    const adam = new Adam([ref]);
    f32.set(p, P / 4);
    for (let step = 1; step <= 6; step++) {
      const g = rand(n, step === 3 ? 1e-6 : 5);
      if (step === 6) g[2] = 0;
      const lr = 1e-3 * 0.5 ** Math.floor((step - 1) / 2);
      adam.step([g], lr);
      f32.set(g, G / 4);
      k.adam(P, G, M, V, n * 4, 1 - 0.9, 0.999, 1 - 0.999, Math.sqrt(1 - 0.999 ** step), 1e-8, -(lr / (1 - 0.9 ** step)));
    }
    const got = f32.slice(P / 4, P / 4 + n);
    expect(Buffer.from(got.buffer)).toEqual(Buffer.from(ref.buffer));
    expect(got[2]).not.toBe(p[2]); // moved by earlier steps' momentum although its last gradients were 0
  });
});
