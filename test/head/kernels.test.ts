import { describe, expect, it } from 'vitest';
import { headKernels, type HeadKernels } from '../../src/head/kernels.js';
import { Rng } from '../../src/random.js';
import { ensureMemory } from '../../src/wasm.js';
import { ScalarAdam, publishedAdam } from './adam-reference.js';

/** A fresh kernel instance with `bytes` of room from its heap base; addresses below are relative to `at`. */
function kernels(bytes: number): { k: HeadKernels; f32: Float32Array; at: number } {
  const k = headKernels();
  const at = k.heapBase();
  ensureMemory(k.memory, at + bytes);
  return { k, f32: new Float32Array(k.memory.buffer), at };
}

const rng = new Rng(5, 77);
const rand = (n: number, scale = 1) => Float32Array.from({ length: n }, () => (rng.uniform() - 0.5) * 2 * scale);

describe('the head SIMD kernels (AssemblyScript)', () => {
  it('each instance has its own memory, 16-byte aligned from heapBase', () => {
    const a = kernels(64), b = kernels(64);
    expect(a.at % 16).toBe(0);
    a.f32[a.at / 4] = 7;
    expect(b.f32[b.at / 4]).toBe(0);
  });

  // d=13 pads rows to 16 floats; class counts cover groups of four, the single-class tail, and both.
  for (const [d, nc] of [[13, 7], [16, 4], [8, 1], [2048, 10]] as const) {
    it(`fwd and bwd match a scalar reference (D=${d}, N=${nc})`, () => {
      const dp = Math.ceil(d / 4) * 4;
      const X = 0, W = X + dp * 4, B = W + nc * dp * 4, Z = B + 64 * 4, GW = Z + 64 * 4, G = GW + nc * dp * 4;
      const { k, f32, at } = kernels(G + 64 * 4);
      const x = rand(d), w = rand(nc * d, 0.1), b = rand(nc), g = rand(nc);
      const o = at / 4;
      f32.set(x, o + X / 4);
      for (let c = 0; c < nc; c++) f32.set(w.subarray(c * d, (c + 1) * d), o + W / 4 + c * dp);
      f32.set(b, o + B / 4);
      f32.set(g, o + G / 4);
      const gw0 = rand(nc * dp);
      for (let c = 0; c < nc; c++) for (let j = d; j < dp; j++) gw0[c * dp + j] = 0;
      f32.set(gw0, o + GW / 4);

      k.fwd(at + X, at + W, at + B, at + Z, dp * 4, nc);
      k.bwd(at + X, at + GW, at + G, dp * 4, nc);
      let zErr = 0, gwErr = 0;
      for (let c = 0; c < nc; c++) {
        let want = b[c]!;
        for (let j = 0; j < d; j++) want += w[c * d + j]! * x[j]!;
        zErr = Math.max(zErr, Math.abs(f32[o + Z / 4 + c]! - want));
        for (let j = 0; j < dp; j++) {
          const gwWant = gw0[c * dp + j]! + (j < d ? g[c]! * x[j]! : 0);
          gwErr = Math.max(gwErr, Math.abs(f32[o + GW / 4 + c * dp + j]! - gwWant));
        }
      }
      expect(zErr).toBeLessThan(1e-5 * Math.sqrt(d));
      expect(gwErr).toBeLessThan(1e-6);
      // Nothing past the last class row is written.
      expect(f32[o + Z / 4 + nc]).toBe(0);
    });
  }

  it('fwd sums each row as four float32 lanes, lanes added (0+1)+(2+3), then the bias (pinned bit for bit)', () => {
    const d = 8, nc = 5, dp = 8;
    const X = 0, W = 32, B = W + nc * dp * 4, Z = B + 32;
    const { k, f32, at } = kernels(Z + 32);
    const o = at / 4;
    const x = rand(d), w = rand(nc * d), b = rand(nc);
    f32.set(x, o + X / 4);
    f32.set(w, o + W / 4);
    f32.set(b, o + B / 4);
    k.fwd(at + X, at + W, at + B, at + Z, dp * 4, nc);
    const f = Math.fround;
    for (let c = 0; c < nc; c++) {
      const lane = [0, 1, 2, 3].map((l) => f(f(f(w[c * d + l]! * x[l]!)) + f(w[c * d + 4 + l]! * x[4 + l]!)));
      const want = f(f(f(lane[0]! + lane[1]!) + f(lane[2]! + lane[3]!)) + b[c]!);
      expect(f32[o + Z / 4 + c]).toBe(want);
    }
  });

  it('adam is bit-identical to the scalar torch-ordered Adam', () => {
    const n = 4 * 37;
    const P = 0, G = n * 4, M = 2 * n * 4, V = 3 * n * 4;
    const { k, f32, at } = kernels(4 * n * 4);
    const p = rand(n, 2);
    p[0] = 1e-30;
    p[1] = -3e4;
    const ref = new ScalarAdam(p.slice());
    f32.set(p, (at + P) / 4);
    for (let step = 1; step <= 6; step++) {
      const g = rand(n, step === 3 ? 1e-6 : 5);
      if (step === 6) g[2] = 0;
      const lr = 1e-3 * 0.5 ** Math.floor((step - 1) / 2);
      ref.step(g, lr);
      f32.set(g, (at + G) / 4);
      k.adam(at + P, at + G, at + M, at + V, n * 4, 1 - 0.9, 0.999, 1 - 0.999, Math.sqrt(1 - 0.999 ** step), 1e-8, -(lr / (1 - 0.9 ** step)));
    }
    const got = f32.slice((at + P) / 4, (at + P) / 4 + n);
    expect(Buffer.from(got.buffer)).toEqual(Buffer.from(ref.p.buffer));
    expect(got[2]).not.toBe(p[2]); // moved by earlier steps' momentum although its last gradients were 0
  });

  it('adam matches the published update over three steps, and moves by about lr on the first', () => {
    const p0 = [0.5, -1.0, 2.0, 0.0];
    const grads = [[0.1, -0.2, 0.3, 0.0], [0.05, 0.4, -0.3, 1e-3], [-0.2, 0.1, 0.25, -2.0]];
    const lr = 0.01;
    const { k, f32, at } = kernels(256);
    const o = at / 4;
    f32.set(p0, o);
    grads.forEach((g, s) => {
      const t = s + 1;
      f32.set(g, o + 4);
      k.adam(at, at + 16, at + 32, at + 48, 16, 0.1, 0.999, 1 - 0.999, Math.sqrt(1 - 0.999 ** t), 1e-8, -(lr / (1 - 0.9 ** t)));
      if (t === 1) for (let i = 0; i < 3; i++) expect(f32[o + i]).toBeCloseTo(p0[i]! - lr * Math.sign(g[i]!), 6);
    });
    const want = publishedAdam(p0, grads, lr);
    for (let i = 0; i < 4; i++) expect(Math.abs(f32[o + i]! - want[i]!)).toBeLessThan(1e-6);
  });

  it('addDecay adds wd·p to the gradient lane-wise', () => {
    const { k, f32, at } = kernels(64);
    const o = at / 4;
    f32.set([1, 2, 3, 4], o);
    f32.set([0.5, -1, 0, 2], o + 4);
    k.addDecay(at + 16, at, 16, 0.25);
    expect([...f32.subarray(o + 4, o + 8)]).toEqual([0.75, -0.5, 0.75, 3]);
  });
});
