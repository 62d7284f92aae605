// Full-batch L-BFGS, and with it the classic linear probe: multinomial logistic regression with an L2
// penalty on the weight (not the bias), as scikit-learn's LogisticRegression(solver='lbfgs') fits it.
// No well-kept L-BFGS exists on npm, so this is a small one (Nocedal & Wright, algorithms 7.4/7.5 with
// a backtracking Armijo line search; the objective is convex, so a curvature check that skips bad
// pairs is enough). The loss and gradient run on the head's kernels (src/head/engine.ts).
import { HeadEngine } from '../head/engine.js';
import type { Head } from '../head/head.js';

export interface LbfgsOptions {
  /** Stop when max |gradient| <= tol (scikit-learn's criterion). Default 1e-5. */
  tol?: number;
  maxIter?: number;
  /** Correction pairs kept (default 10). */
  memory?: number;
}

export interface LbfgsResult {
  x: Float64Array;
  f: number;
  iterations: number;
  evaluations: number;
  converged: boolean;
}

const dot = (a: Float64Array, b: Float64Array) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};
const maxAbs = (a: Float64Array) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
};

/** Minimises f from x0; `fg(x, g)` returns f(x) and writes its gradient into g. */
export function lbfgs(fg: (x: Float64Array, g: Float64Array) => number, x0: Float64Array, o: LbfgsOptions = {}): LbfgsResult {
  const tol = o.tol ?? 1e-5, maxIter = o.maxIter ?? 500, mem = o.memory ?? 10;
  const n = x0.length;
  let x = x0.slice();
  let g = new Float64Array(n);
  let f = fg(x, g);
  let evaluations = 1;
  const S: Float64Array[] = [], Y: Float64Array[] = [], rho: number[] = [];
  const d = new Float64Array(n);
  const alpha = new Float64Array(mem);
  let it = 0;
  for (; it < maxIter; it++) {
    if (maxAbs(g) <= tol) return { x, f, iterations: it, evaluations, converged: true };
    // Two-loop recursion: d = -H·g
    for (let i = 0; i < n; i++) d[i] = -g[i]!;
    for (let j = S.length - 1; j >= 0; j--) {
      const a = rho[j]! * dot(S[j]!, d);
      alpha[j] = a;
      const y = Y[j]!;
      for (let i = 0; i < n; i++) d[i] -= a * y[i]!;
    }
    if (S.length > 0) {
      const last = S.length - 1;
      const gamma = dot(S[last]!, Y[last]!) / dot(Y[last]!, Y[last]!);
      for (let i = 0; i < n; i++) d[i] *= gamma;
    } else {
      // First step: a unit-length move, as in scikit-learn's scipy backend.
      const norm = Math.sqrt(dot(d, d));
      if (norm > 0) for (let i = 0; i < n; i++) d[i] /= norm;
    }
    for (let j = 0; j < S.length; j++) {
      const b = rho[j]! * dot(Y[j]!, d);
      const s = S[j]!;
      for (let i = 0; i < n; i++) d[i] += (alpha[j]! - b) * s[i]!;
    }
    let slope = dot(g, d);
    if (!(slope < 0)) {
      // Not a descent direction (rounding): restart from steepest descent.
      S.length = Y.length = rho.length = 0;
      for (let i = 0; i < n; i++) d[i] = -g[i]!;
      slope = dot(g, d);
    }
    // Backtracking Armijo line search.
    let step = 1;
    const xn = new Float64Array(n);
    const gn = new Float64Array(n);
    let fn = Infinity;
    for (let tries = 0; tries < 40; tries++) {
      for (let i = 0; i < n; i++) xn[i] = x[i]! + step * d[i]!;
      fn = fg(xn, gn);
      evaluations++;
      if (fn <= f + 1e-4 * step * slope) break;
      step *= 0.5;
    }
    if (!(fn <= f + 1e-4 * step * slope)) return { x, f, iterations: it, evaluations, converged: false };
    const s = new Float64Array(n), y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      s[i] = xn[i]! - x[i]!;
      y[i] = gn[i]! - g[i]!;
    }
    const sy = dot(s, y);
    if (sy > 1e-12 * Math.sqrt(dot(s, s) * dot(y, y))) {
      if (S.length === mem) {
        S.shift();
        Y.shift();
        rho.shift();
      }
      S.push(s);
      Y.push(y);
      rho.push(1 / sy);
    }
    const fPrev = f;
    x = xn;
    g = gn;
    f = fn;
    // Relative decrease at float precision of the data term: nothing more to gain.
    if (Math.abs(fPrev - f) <= 1e-12 * Math.max(Math.abs(fPrev), Math.abs(f), 1)) {
      return { x, f, iterations: it + 1, evaluations, converged: maxAbs(g) <= tol };
    }
  }
  return { x, f, iterations: it, evaluations, converged: maxAbs(g) <= tol };
}

export interface LogisticOptions extends LbfgsOptions {
  /** λ of the objective mean(CE) + λ/2·||W||² (scikit-learn's C is 1/(λ·n)). */
  l2: number;
  /** Starting parameters (a warm start along a path of penalties); default zeros. */
  init?: Head;
}

export interface LogisticFit {
  head: Head;
  /** Mean cross-entropy on the training rows at the solution (without the penalty). */
  loss: number;
  iterations: number;
  evaluations: number;
  converged: boolean;
}

/**
 * Multinomial logistic regression on `n` rows of `x` (n*D) with `labels`, by full-batch L-BFGS on
 * mean(CE) + λ/2·||W||² (the bias is not penalised).
 */
export function fitLogistic(x: Float32Array, labels: Int32Array, n: number, classes: string[], dim: number, o: LogisticOptions): LogisticFit {
  const nc = classes.length;
  const start: Head = o.init ?? { classes, dim, weight: new Float32Array(nc * dim), bias: new Float32Array(nc) };
  const engine = new HeadEngine(start);
  const nw = nc * dim;
  const x0 = new Float64Array(nw + nc);
  engine.readFlat(x0);
  let dataLoss = 0;
  const fg = (w: Float64Array, g: Float64Array): number => {
    engine.writeFlat(w);
    dataLoss = engine.lossAndGradient(x, labels, n, g) / n;
    let pen = 0;
    for (let i = 0; i < g.length; i++) g[i] = g[i]! / n;
    for (let i = 0; i < nw; i++) {
      pen += w[i]! * w[i]!;
      g[i] += o.l2 * w[i]!;
    }
    return dataLoss + 0.5 * o.l2 * pen;
  };
  const r = lbfgs(fg, x0, o);
  engine.writeFlat(r.x);
  const head: Head = { classes: [...classes], dim, weight: new Float32Array(nw), bias: new Float32Array(nc) };
  engine.read(head);
  const g = new Float64Array(x0.length);
  const loss = engine.lossAndGradient(x, labels, n, g) / n;
  return { head, loss, iterations: r.iterations, evaluations: r.evaluations, converged: r.converged };
}
