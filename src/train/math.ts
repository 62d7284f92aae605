// The head's arithmetic during training, behind one small interface so that the epoch loop does not
// care where it runs. Two implementations: plain typed arrays here (the default: measured fastest on
// this workload, see bench/train.mjs) and TensorFlow.js in math-tfjs.ts.
import type { Head } from './head.js';
import { Adam } from './schedule.js';

/**
 * A batch of training rows. Row j is `aug` at `offs[j]` when `clean[j]` is 0, else the clean array
 * at `offs[j]`; its label is `labels[j]`. Only the first `count` entries are used.
 */
export interface Batch {
  count: number;
  fromClean: Uint8Array;
  offs: Float64Array;
  labels: Int32Array;
}

export interface EvalSums {
  /** Sum over rows of the cross-entropy. */
  lossSum: number;
  /** Rows whose arg-max logit is the label (ties go to the lower class index). */
  correct: number;
}

export interface HeadMath {
  /** e.g. "js" or "tfjs wasm". */
  readonly name: string;
  /** One Adam step on the batch's mean cross-entropy; returns the batch's SUM of cross-entropies (before the step). */
  trainStep(batch: Batch, lr: number): number;
  /** Loss and correct count of the current parameters on `n` rows packed in `x` (n*D) with `labels`. */
  evaluate(x: Float32Array, labels: Int32Array, n: number): EvalSums;
  /** Copies the current parameters into `into`. */
  read(into: Head): void;
  dispose(): void;
}

/**
 * Plain Float32Array math. Per row, the forward pass, softmax and gradient run back to back while the
 * row is in L1 cache; four classes share each load of a feature value.
 */
export class JsHeadMath implements HeadMath {
  readonly name = 'js';
  private readonly d: number;
  private readonly nc: number;
  private readonly w: Float32Array;
  private readonly b: Float32Array;
  private readonly gw: Float32Array;
  private readonly gb: Float32Array;
  private readonly z: Float64Array;
  private readonly adam: Adam;

  constructor(init: Head, private readonly aug: Float32Array, private readonly clean: Float32Array | null) {
    this.d = init.dim;
    this.nc = init.classes.length;
    this.w = init.weight.slice();
    this.b = init.bias.slice();
    this.gw = new Float32Array(this.w.length);
    this.gb = new Float32Array(this.nc);
    this.z = new Float64Array(this.nc);
    this.adam = new Adam([this.w, this.b]);
  }

  /** Logits of one row into this.z. */
  private forward(x: Float32Array, xo: number): void {
    const { d, nc, w, b, z } = this;
    let c = 0;
    for (; c + 4 <= nc; c += 4) {
      const w0 = c * d, w1 = w0 + d, w2 = w1 + d, w3 = w2 + d;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let k = 0; k < d; k++) {
        const xv = x[xo + k]!;
        s0 += w[w0 + k]! * xv;
        s1 += w[w1 + k]! * xv;
        s2 += w[w2 + k]! * xv;
        s3 += w[w3 + k]! * xv;
      }
      z[c] = s0 + b[c]!;
      z[c + 1] = s1 + b[c + 1]!;
      z[c + 2] = s2 + b[c + 2]!;
      z[c + 3] = s3 + b[c + 3]!;
    }
    for (; c < nc; c++) {
      const w0 = c * d;
      let s0 = 0, s1 = 0;
      let k = 0;
      for (; k + 1 < d; k += 2) {
        s0 += w[w0 + k]! * x[xo + k]!;
        s1 += w[w0 + k + 1]! * x[xo + k + 1]!;
      }
      if (k < d) s0 += w[w0 + k]! * x[xo + k]!;
      z[c] = s0 + s1 + b[c]!;
    }
  }

  /** Turns this.z into softmax probabilities in place; returns log-sum-exp of the logits. */
  private softmax(): number {
    const { nc, z } = this;
    let m = -Infinity;
    for (let c = 0; c < nc; c++) if (z[c]! > m) m = z[c]!;
    let s = 0;
    for (let c = 0; c < nc; c++) {
      const e = Math.exp(z[c]! - m);
      z[c] = e;
      s += e;
    }
    for (let c = 0; c < nc; c++) z[c] = z[c]! / s;
    return m + Math.log(s);
  }

  trainStep(batch: Batch, lr: number): number {
    const { d, nc, gw, gb, z } = this;
    gw.fill(0);
    gb.fill(0);
    const inv = 1 / batch.count;
    let lossSum = 0;
    for (let j = 0; j < batch.count; j++) {
      const x = batch.fromClean[j] ? this.clean! : this.aug;
      const xo = batch.offs[j]!;
      const y = batch.labels[j]!;
      this.forward(x, xo);
      const zy = z[y]!;
      lossSum += this.softmax() - zy;
      // d(mean CE)/d(logit c) = (p_c - [c = y]) / B
      for (let c = 0; c < nc; c++) z[c] = (z[c]! - (c === y ? 1 : 0)) * inv;
      let c = 0;
      for (; c + 4 <= nc; c += 4) {
        const w0 = c * d, w1 = w0 + d, w2 = w1 + d, w3 = w2 + d;
        const g0 = z[c]!, g1 = z[c + 1]!, g2 = z[c + 2]!, g3 = z[c + 3]!;
        for (let k = 0; k < d; k++) {
          const xv = x[xo + k]!;
          gw[w0 + k] += g0 * xv;
          gw[w1 + k] += g1 * xv;
          gw[w2 + k] += g2 * xv;
          gw[w3 + k] += g3 * xv;
        }
      }
      for (; c < nc; c++) {
        const w0 = c * d;
        const g0 = z[c]!;
        for (let k = 0; k < d; k++) gw[w0 + k] += g0 * x[xo + k]!;
      }
      for (let c2 = 0; c2 < nc; c2++) gb[c2] += z[c2]!;
    }
    this.adam.step([gw, gb], lr);
    return lossSum;
  }

  evaluate(x: Float32Array, labels: Int32Array, n: number): EvalSums {
    const { d, nc, z } = this;
    let lossSum = 0;
    let correct = 0;
    for (let i = 0; i < n; i++) {
      this.forward(x, i * d);
      const y = labels[i]!;
      let arg = 0;
      for (let c = 1; c < nc; c++) if (z[c]! > z[arg]!) arg = c;
      if (arg === y) correct++;
      const zy = z[y]!;
      lossSum += this.softmax() - zy;
    }
    return { lossSum, correct };
  }

  read(into: Head): void {
    into.weight.set(this.w);
    into.bias.set(this.b);
  }

  dispose(): void {}
}
