// Scalar references for the Adam kernel, kept in the tests only (production has one Adam: the kernel).
const f = Math.fround;

/**
 * torch.optim.Adam (single-tensor CPU path) over float32, each tensor op rounded to float32 as torch
 * does, in torch's order; bias corrections in double as torch computes them in Python.
 */
export class ScalarAdam {
  t = 0;
  private readonly m: Float32Array;
  private readonly v: Float32Array;

  constructor(readonly p: Float32Array, readonly beta1 = 0.9, readonly beta2 = 0.999, readonly eps = 1e-8) {
    this.m = new Float32Array(p.length);
    this.v = new Float32Array(p.length);
  }

  step(g: Float32Array, lr: number): void {
    this.t++;
    const stepSize = f(-(lr / (1 - this.beta1 ** this.t)));
    const bc2Sqrt = f(Math.sqrt(1 - this.beta2 ** this.t));
    const w1 = f(1 - this.beta1), b2 = f(this.beta2), w2 = f(1 - this.beta2), eps = f(this.eps);
    const { p, m, v } = this;
    for (let i = 0; i < p.length; i++) {
      const gi = g[i]!;
      const mi = f(m[i]! + f(w1 * f(gi - m[i]!)));
      const vi = f(f(v[i]! * b2) + f(w2 * f(gi * gi)));
      m[i] = mi;
      v[i] = vi;
      p[i] = f(p[i]! + f(stepSize * f(mi / f(f(f(Math.sqrt(vi)) / bc2Sqrt) + eps))));
    }
  }
}

/** The published algorithm (Kingma & Ba; torch.optim.Adam docs), in double precision. */
export function publishedAdam(p0: number[], grads: number[][], lr: number): number[] {
  const b1 = 0.9, b2 = 0.999, eps = 1e-8;
  const p = [...p0], m = p0.map(() => 0), v = p0.map(() => 0);
  grads.forEach((g, step) => {
    const t = step + 1;
    for (let i = 0; i < p.length; i++) {
      m[i] = b1 * m[i]! + (1 - b1) * g[i]!;
      v[i] = b2 * v[i]! + (1 - b2) * g[i]! * g[i]!;
      p[i] = p[i]! - (lr * (m[i]! / (1 - b1 ** t))) / (Math.sqrt(v[i]! / (1 - b2 ** t)) + eps);
    }
  });
  return p;
}
