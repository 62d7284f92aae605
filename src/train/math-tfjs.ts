// The head's training arithmetic in TensorFlow.js ops, same semantics as JsHeadMath (math.ts):
// softmax cross-entropy, torch-ordered Adam in float32. Kept beside the plain version because the
// issue asks for tfjs on the head and because tfjs-node / tfjs-node-gpu (not installable here) may
// win elsewhere; bench/train.mjs measures both. Every step runs inside tf.tidy, and the only tensors
// alive between steps are the parameters, Adam's moments and the cached validation features.
import type * as TF from '@tensorflow/tfjs';
import { loadTf, type TfBackendName } from '../tfjs.js';
import type { Head } from './head.js';
import type { Batch, EvalSums, HeadMath } from './math.js';
import { ADAM_DEFAULTS } from './schedule.js';

export const DEFAULT_TF_ORDER: TfBackendName[] = ['tfjs-node-gpu', 'tfjs-node', 'wasm', 'cpu'];

export class TfHeadMath implements HeadMath {
  readonly name: string;
  private t = 0;
  private readonly buf: Float32Array;
  private valX: Float32Array | undefined;
  private valT: { x: TF.Tensor2D; y: TF.Tensor1D } | undefined;

  private constructor(
    private readonly tf: typeof TF,
    backend: string,
    private readonly d: number,
    private readonly nc: number,
    private readonly w: TF.Variable, // [D, N]: x·W needs no transpose, tfjs' fast matMul path
    private readonly b: TF.Variable, // [N]
    private readonly mw: TF.Variable,
    private readonly vw: TF.Variable,
    private readonly mb: TF.Variable,
    private readonly vb: TF.Variable,
    private readonly aug: Float32Array,
    private readonly clean: Float32Array | null,
    maxBatch: number,
  ) {
    this.name = `tfjs ${backend}`;
    this.buf = new Float32Array(maxBatch * d);
  }

  static async create(init: Head, aug: Float32Array, clean: Float32Array | null, maxBatch: number, order: TfBackendName[] = DEFAULT_TF_ORDER): Promise<TfHeadMath> {
    const { tf, backend } = await loadTf(order, 1);
    const d = init.dim, nc = init.classes.length;
    const wt = new Float32Array(d * nc);
    for (let c = 0; c < nc; c++) for (let k = 0; k < d; k++) wt[k * nc + c] = init.weight[c * d + k]!;
    const v = (x: TF.Tensor) => { const r = tf.variable(x); x.dispose(); return r; };
    return new TfHeadMath(tf, backend, d, nc,
      v(tf.tensor2d(wt, [d, nc])), v(tf.tensor1d(init.bias)),
      v(tf.zeros([d, nc])), v(tf.zeros([d, nc])), v(tf.zeros([nc])), v(tf.zeros([nc])),
      aug, clean, maxBatch);
  }

  private adam(p: TF.Variable, g: TF.Tensor, m: TF.Variable, v: TF.Variable, lr: number): void {
    const tf = this.tf;
    const { beta1, beta2, eps } = ADAM_DEFAULTS;
    const bc1 = 1 - beta1 ** this.t;
    const bc2 = 1 - beta2 ** this.t;
    const mNew = tf.add(m, tf.mul(tf.sub(g, m), 1 - beta1));
    const vNew = tf.add(tf.mul(v, beta2), tf.mul(tf.mul(g, g), 1 - beta2));
    const denom = tf.add(tf.div(tf.sqrt(vNew), Math.sqrt(bc2)), eps);
    m.assign(mNew);
    v.assign(vNew);
    p.assign(tf.add(p, tf.mul(tf.div(mNew, denom), -(lr / bc1))));
  }

  trainStep(batch: Batch, lr: number): number {
    const { tf, d, nc } = this;
    const nb = batch.count;
    for (let j = 0; j < nb; j++) {
      const x = batch.fromClean[j] ? this.clean! : this.aug;
      const o = batch.offs[j]!;
      this.buf.set(x.subarray(o, o + d), j * d);
    }
    this.t++;
    const loss = tf.tidy(() => {
      const xb = tf.tensor2d(this.buf.subarray(0, nb * d), [nb, d]);
      const y = tf.oneHot(tf.tensor1d(batch.labels.subarray(0, nb), 'int32'), nc).toFloat();
      const lsm = tf.logSoftmax(tf.add(tf.matMul(xb, this.w), this.b));
      const lossSum = tf.neg(tf.sum(tf.mul(y, lsm)));
      const g = tf.div(tf.sub(tf.exp(lsm), y), nb);
      const gw = tf.matMul(tf.transpose(xb), g);
      const gb = tf.sum(g, 0);
      this.adam(this.w, gw, this.mw, this.vw, lr);
      this.adam(this.b, gb, this.mb, this.vb, lr);
      return lossSum;
    });
    const v = loss.dataSync()[0]!;
    loss.dispose();
    return v;
  }

  evaluate(x: Float32Array, labels: Int32Array, n: number): EvalSums {
    const tf = this.tf;
    if (this.valX !== x || !this.valT || this.valT.y.shape[0] !== n) {
      this.disposeVal();
      this.valX = x;
      this.valT = { x: tf.tensor2d(x.subarray(0, n * this.d), [n, this.d]), y: tf.tensor1d(labels.subarray(0, n), 'int32') };
    }
    const { x: xt, y } = this.valT;
    const [lossT, correctT] = tf.tidy(() => {
      const logits = tf.add(tf.matMul(xt, this.w), this.b);
      const lsm = tf.logSoftmax(logits);
      const oh = tf.oneHot(y, this.nc).toFloat();
      return [tf.neg(tf.sum(tf.mul(oh, lsm))), tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), y), 'int32'))];
    });
    const lossSum = lossT!.dataSync()[0]!;
    const correct = correctT!.dataSync()[0]!;
    tf.dispose([lossT!, correctT!]);
    return { lossSum, correct };
  }

  read(into: Head): void {
    const w = this.w.dataSync();
    const { d, nc } = this;
    for (let c = 0; c < nc; c++) for (let k = 0; k < d; k++) into.weight[c * d + k] = w[k * nc + c]!;
    into.bias.set(this.b.dataSync());
  }

  private disposeVal(): void {
    if (this.valT) this.tf.dispose([this.valT.x, this.valT.y]);
    this.valT = undefined;
    this.valX = undefined;
  }

  dispose(): void {
    this.disposeVal();
    this.tf.dispose([this.w, this.b, this.mw, this.vw, this.mb, this.vb]);
  }
}
