// The linear head's three hot loops in WebAssembly SIMD (f32x4), compiled by AssemblyScript at build
// time (npm run build:wasm -> dist/assembly/head.wasm) and driven by src/head/engine.ts. V8 runs
// scalar JS at about one multiply-add per cycle; f32x4 does four.
//
// All addresses are byte offsets into this module's memory, 16-byte aligned, at or above heapBase().
// `dp4` is the padded row length in bytes, a multiple of 16 (>= 16); rows are zero-padded. The order
// of every float operation is fixed (the tests pin the results bit for bit), so do not reassociate.

/** First byte the caller may use. */
export function heapBase(): usize {
  return (__heap_base + 15) & ~15;
}

/** z[c] = b[c] + Σ_k w[c][k]·x[k] for c < nc: logits of one feature row. */
export function fwd(x: usize, w: usize, b: usize, z: usize, dp4: usize, nc: u32): void {
  let c: u32 = 0;
  let wr = w;
  // Four classes share each load of x, then the rest one at a time.
  for (; c + 4 <= nc; c += 4, wr += dp4 * 4) {
    const r0 = wr, r1 = wr + dp4, r2 = wr + dp4 * 2, r3 = wr + dp4 * 3;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let k: usize = 0;
    do {
      const xv = v128.load(x + k);
      a0 = f32x4.add(a0, f32x4.mul(v128.load(r0 + k), xv));
      a1 = f32x4.add(a1, f32x4.mul(v128.load(r1 + k), xv));
      a2 = f32x4.add(a2, f32x4.mul(v128.load(r2 + k), xv));
      a3 = f32x4.add(a3, f32x4.mul(v128.load(r3 + k), xv));
      k += 16;
    } while (k < dp4);
    const zc = z + (<usize>c << 2), bc = b + (<usize>c << 2);
    store<f32>(zc, hsum(a0) + load<f32>(bc, 0), 0);
    store<f32>(zc, hsum(a1) + load<f32>(bc, 4), 4);
    store<f32>(zc, hsum(a2) + load<f32>(bc, 8), 8);
    store<f32>(zc, hsum(a3) + load<f32>(bc, 12), 12);
  }
  for (; c < nc; c++, wr += dp4) {
    let a0 = f32x4.splat(0);
    let k: usize = 0;
    do {
      a0 = f32x4.add(a0, f32x4.mul(v128.load(wr + k), v128.load(x + k)));
      k += 16;
    } while (k < dp4);
    store<f32>(z + (<usize>c << 2), hsum(a0) + load<f32>(b + (<usize>c << 2)));
  }
}

/** (lane0 + lane1) + (lane2 + lane3) */
// @ts-ignore: decorator
@inline function hsum(a: v128): f32 {
  return (f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1)) + (f32x4.extract_lane(a, 2) + f32x4.extract_lane(a, 3));
}

/** gw[c][k] += g[c]·x[k] for c < nc: one row's contribution to the weight gradient. */
export function bwd(x: usize, gw: usize, g: usize, dp4: usize, nc: u32): void {
  let c: u32 = 0;
  let wr = gw;
  for (; c + 4 <= nc; c += 4, wr += dp4 * 4) {
    const r0 = wr, r1 = wr + dp4, r2 = wr + dp4 * 2, r3 = wr + dp4 * 3;
    const gc = g + (<usize>c << 2);
    const g0 = f32x4.splat(load<f32>(gc, 0)), g1 = f32x4.splat(load<f32>(gc, 4));
    const g2 = f32x4.splat(load<f32>(gc, 8)), g3 = f32x4.splat(load<f32>(gc, 12));
    let k: usize = 0;
    do {
      const xv = v128.load(x + k);
      v128.store(r0 + k, f32x4.add(v128.load(r0 + k), f32x4.mul(g0, xv)));
      v128.store(r1 + k, f32x4.add(v128.load(r1 + k), f32x4.mul(g1, xv)));
      v128.store(r2 + k, f32x4.add(v128.load(r2 + k), f32x4.mul(g2, xv)));
      v128.store(r3 + k, f32x4.add(v128.load(r3 + k), f32x4.mul(g3, xv)));
      k += 16;
    } while (k < dp4);
  }
  for (; c < nc; c++, wr += dp4) {
    const g0 = f32x4.splat(load<f32>(g + (<usize>c << 2)));
    let k: usize = 0;
    do {
      v128.store(wr + k, f32x4.add(v128.load(wr + k), f32x4.mul(g0, v128.load(x + k))));
      k += 16;
    } while (k < dp4);
  }
}

/** g[i] += wd·p[i] over nbytes (a multiple of 16): the L2 penalty's gradient (torch's coupled weight decay). */
export function addDecay(g: usize, p: usize, nbytes: usize, wd: f32): void {
  const w = f32x4.splat(wd);
  for (let i: usize = 0; i < nbytes; i += 16) v128.store(g + i, f32x4.add(v128.load(g + i), f32x4.mul(w, v128.load(p + i))));
}

/**
 * torch.optim.Adam's update (single-tensor path, no weight decay, no amsgrad), lane-wise over nbytes
 * (a multiple of 16), every operation rounded to float32 in torch's order:
 *   m = m + w1·(g - m)                        (lerp with w1 = 1 - β1)
 *   v = v·b2 + w2·(g·g)                       (b2 = β2, w2 = 1 - β2)
 *   p = p + stepSize·(m / (sqrt(v)/bc2sqrt + eps))   (stepSize = -lr/(1 - β1^t), bc2sqrt = sqrt(1 - β2^t))
 */
export function adam(p: usize, g: usize, m: usize, v: usize, nbytes: usize, w1: f32, b2: f32, w2: f32, bc2sqrt: f32, eps: f32, stepSize: f32): void {
  const W1 = f32x4.splat(w1), B2 = f32x4.splat(b2), W2 = f32x4.splat(w2);
  const BC = f32x4.splat(bc2sqrt), EPS = f32x4.splat(eps), SS = f32x4.splat(stepSize);
  for (let i: usize = 0; i < nbytes; i += 16) {
    const gi = v128.load(g + i);
    let mi = v128.load(m + i);
    mi = f32x4.add(mi, f32x4.mul(W1, f32x4.sub(gi, mi)));
    v128.store(m + i, mi);
    const vi = f32x4.add(f32x4.mul(v128.load(v + i), B2), f32x4.mul(W2, f32x4.mul(gi, gi)));
    v128.store(v + i, vi);
    const denom = f32x4.add(f32x4.div(f32x4.sqrt(vi), BC), EPS);
    v128.store(p + i, f32x4.add(v128.load(p + i), f32x4.mul(SS, f32x4.div(mi, denom))));
  }
}
