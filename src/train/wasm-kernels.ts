// The head's three hot loops as WebAssembly SIMD (f32x4), assembled from opcodes (src/wasm/assembler.ts)
// so that no toolchain or binary blob is needed. Measured on this machine (bench/train.mjs): the plain-JS loops
// and tfjs (wasm backend) both need ~6 s for the recipe's 50 epochs on food101-10's shape; these
// kernels bring it under the 2 s goal, because V8 runs scalar JS at ~1 multiply-add per cycle
// while f32x4 does four.
//
// Kernels (all addresses are byte offsets into the module's exported memory, 16-byte aligned; `dp4` is
// the padded row length in bytes, a multiple of 16; rows are zero-padded):
//   fwd(x, w, b, z, dp4, nc):  z[c] = b[c] + Σ_k w[c][k]·x[k]            for c < nc  (one feature row)
//   bwd(x, gw, g, dp4, nc):    gw[c][k] += g[c]·x[k]                       for c < nc
//   adam(p, g, m, v, nbytes, w1, b2, w2, bc2sqrt, eps, stepSize):  torch's Adam update, lane-wise,
//     each op rounded to float32 exactly like the scalar Adam in schedule.ts (IEEE ops are exact per lane).

import { Code, F32, I32, V128, compileKernels, type WasmMemory } from '../wasm/assembler.js';

export type { WasmMemory };

/** Loops over classes in groups of G (4, then 1 for the rest), each group in one pass over the row. */
function classGroups(code: Code, c: number, nc: number, wr: number, dp4: number, groupBody: (G: number) => void): void {
  for (const G of [4, 1]) {
    code.block().loop();
    code.get(c).i32(G).add().get(nc).gtU().brIf(1);
    groupBody(G);
    code.get(c).i32(G).add().set(c);
    code.get(wr).get(dp4).i32(G).mul().add().set(wr);
    code.br(0).end().end();
  }
}

function fwd(): Code {
  const [x, w, b, z, dp4, nc] = [0, 1, 2, 3, 4, 5];
  const code = new Code(6);
  const c = code.local(I32), k = code.local(I32), wr = code.local(I32);
  const r = [code.local(I32), code.local(I32), code.local(I32), code.local(I32)];
  const xv = code.local(V128);
  const a = [code.local(V128), code.local(V128), code.local(V128), code.local(V128)];
  code.i32(0).set(c).get(w).set(wr);
  classGroups(code, c, nc, wr, dp4, (G) => {
    for (let i = 0; i < G; i++) {
      code.get(wr);
      if (i > 0) code.get(dp4).i32(i).mul().add();
      code.set(r[i]!);
      code.vZero().set(a[i]!);
    }
    code.i32(0).set(k);
    code.loop();
    code.get(x).get(k).add().vLoad().set(xv);
    for (let i = 0; i < G; i++) {
      code.get(a[i]!).get(r[i]!).get(k).add().vLoad().get(xv).vMul().vAdd().set(a[i]!);
    }
    code.get(k).i32(16).add().tee(k).get(dp4).ltU().brIf(0);
    code.end();
    for (let i = 0; i < G; i++) {
      code.get(z).get(c).i32(4).mul().add();
      code.get(a[i]!).lane(0).get(a[i]!).lane(1).f32Add();
      code.get(a[i]!).lane(2).get(a[i]!).lane(3).f32Add().f32Add();
      code.get(b).get(c).i32(4).mul().add().f32Load(4 * i).f32Add();
      code.f32Store(4 * i);
    }
  });
  return code;
}

function bwd(): Code {
  const [x, gw, g, dp4, nc] = [0, 1, 2, 3, 4];
  const code = new Code(5);
  const c = code.local(I32), k = code.local(I32), wr = code.local(I32), t = code.local(I32);
  const r = [code.local(I32), code.local(I32), code.local(I32), code.local(I32)];
  const xv = code.local(V128);
  const gv = [code.local(V128), code.local(V128), code.local(V128), code.local(V128)];
  code.i32(0).set(c).get(gw).set(wr);
  classGroups(code, c, nc, wr, dp4, (G) => {
    for (let i = 0; i < G; i++) {
      code.get(wr);
      if (i > 0) code.get(dp4).i32(i).mul().add();
      code.set(r[i]!);
      code.get(g).get(c).i32(4).mul().add().f32Load(4 * i).splat().set(gv[i]!);
    }
    code.i32(0).set(k);
    code.loop();
    code.get(x).get(k).add().vLoad().set(xv);
    for (let i = 0; i < G; i++) {
      code.get(r[i]!).get(k).add().tee(t).get(t).vLoad().get(gv[i]!).get(xv).vMul().vAdd().vStore();
    }
    code.get(k).i32(16).add().tee(k).get(dp4).ltU().brIf(0);
    code.end();
  });
  return code;
}

function adam(): Code {
  const [p, g, m, v, nbytes, w1, b2, w2, bc2s, eps, step] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const code = new Code(11);
  const i = code.local(I32);
  const [W1, B2, W2, BC, EPS, SS, gi, mi, vi] = Array.from({ length: 9 }, () => code.local(V128)) as [number, number, number, number, number, number, number, number, number];
  for (const [s, vv] of [[w1, W1], [b2, B2], [w2, W2], [bc2s, BC], [eps, EPS], [step, SS]] as const) code.get(s).splat().set(vv);
  code.i32(0).set(i);
  code.block().loop();
  code.get(i).get(nbytes).geU().brIf(1);
  code.get(g).get(i).add().vLoad().set(gi);
  // m = m + w1·(g - m)
  code.get(m).get(i).add().vLoad().set(mi);
  code.get(mi).get(W1).get(gi).get(mi).vSub().vMul().vAdd().set(mi);
  code.get(m).get(i).add().get(mi).vStore();
  // v = v·b2 + w2·(g·g)
  code.get(v).get(i).add().vLoad().get(B2).vMul().get(W2).get(gi).get(gi).vMul().vMul().vAdd().set(vi);
  code.get(v).get(i).add().get(vi).vStore();
  // p = p + step·(m / (sqrt(v)/bc2sqrt + eps))
  code.get(p).get(i).add();
  code.get(p).get(i).add().vLoad();
  code.get(SS).get(mi).get(vi).vSqrt().get(BC).vDiv().get(EPS).vAdd().vDiv().vMul();
  code.vAdd().vStore();
  code.get(i).i32(16).add().set(i);
  code.br(0).end().end();
  return code;
}

export interface HeadKernels {
  memory: WasmMemory;
  fwd(x: number, w: number, b: number, z: number, dp4: number, nc: number): void;
  bwd(x: number, gw: number, g: number, dp4: number, nc: number): void;
  adam(p: number, g: number, m: number, v: number, nbytes: number, w1: number, b2: number, w2: number, bc2sqrt: number, eps: number, stepSize: number): void;
}

/** A fresh instance of the kernels (own memory), or null where WebAssembly SIMD is unavailable. */
export const instantiateKernels = compileKernels<HeadKernels>(() => [
  { name: 'fwd', params: [I32, I32, I32, I32, I32, I32], code: fwd() },
  { name: 'bwd', params: [I32, I32, I32, I32, I32], code: bwd() },
  { name: 'adam', params: [I32, I32, I32, I32, I32, F32, F32, F32, F32, F32, F32], code: adam() },
]);
