// The linear head's arithmetic: forward, softmax cross-entropy, backward and Adam, one implementation
// for training, the sweep, eval and predict. The hot loops are the SIMD kernels (kernels.ts); softmax
// and the loss run here in double, between the forward and backward kernel of each row.
//
// Memory of the kernel instance: [P | G | M | V] (each W nc*dp then b ncp floats), Z (logits of one
// row), a staging area of maxBatch rows, then "resident" row sets (val rows, a full-batch training set)
// copied once and reused while the same array is passed again.
import { align16, ensureMemory } from '../wasm.js';
import type { Head } from './head.js';
import { headKernels, type HeadKernels } from './kernels.js';
import { argmax, crossEntropy } from './loss.js';

/** torch.optim.Adam's defaults, the recipe's. */
export const ADAM_DEFAULTS = { beta1: 0.9, beta2: 0.999, eps: 1e-8 } as const;

/**
 * A batch of training rows. Row j is `aug` at `offs[j]` when `fromClean[j]` is 0, else the clean array
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

export interface StepOptions {
  /** L2 penalty on the weight (not the bias), added to the gradient as torch's Adam weight_decay does. */
  weightDecay?: number;
  /** torch's CrossEntropyLoss(label_smoothing): targets (1-ε)·onehot + ε/N. */
  labelSmoothing?: number;
}

export interface EngineOptions {
  /** Largest batch trainStep will see. */
  maxBatch?: number;
  /** Training rows (what Batch offsets point into). */
  aug?: Float32Array;
  clean?: Float32Array | null;
}

interface Resident {
  rows: Float32Array;
  n: number;
  at: number;
}

export class HeadEngine {
  readonly name = 'wasm-simd';
  private readonly k: HeadKernels;
  private readonly d: number;
  private readonly nc: number;
  /** Padded row length in floats (multiple of 4) and in bytes. */
  private readonly dp: number;
  private readonly dp4: number;
  /** Floats of one parameter block: W (nc*dp) then b (padded to 4). */
  readonly paramFloats: number;
  private readonly P: number;
  private readonly G: number;
  private readonly M: number;
  private readonly V: number;
  private readonly Z: number;
  /**
   * Each batch's rows are copied into this small buffer rather than keeping all train features in wasm
   * memory: measured here, first-touching fresh memory costs ~3 ms/MB (a 131 MB copy took 0.5 s),
   * while re-copying 64 rows per step into a cache-warm buffer costs ~0.05 s over 50 epochs.
   */
  private readonly stage: number;
  private readonly maxBatch: number;
  /** First byte past the constructor's allocations: where resident rows go. */
  private readonly top: number;
  private resident: Resident[] = [];
  private f32: Float32Array;
  private aug: Float32Array;
  private clean: Float32Array | null;
  private t = 0;

  constructor(init: Head, o: EngineOptions = {}) {
    this.k = headKernels();
    this.d = init.dim;
    this.nc = init.classes.length;
    this.dp = Math.ceil(this.d / 4) * 4;
    this.dp4 = this.dp * 4;
    const ncp = Math.ceil(this.nc / 4) * 4;
    this.paramFloats = this.nc * this.dp + ncp;
    const pBytes = this.paramFloats * 4;
    this.maxBatch = Math.max(1, o.maxBatch ?? 1);
    let top = this.k.heapBase();
    const take = (bytes: number) => { const at = top; top += align16(bytes); return at; };
    this.P = take(pBytes);
    this.G = take(pBytes);
    this.M = take(pBytes);
    this.V = take(pBytes);
    this.Z = take(ncp * 4);
    this.stage = take(this.maxBatch * this.dp4);
    this.top = top;
    this.aug = o.aug ?? new Float32Array(0);
    this.clean = o.clean ?? null;
    ensureMemory(this.k.memory, top);
    this.f32 = new Float32Array(this.k.memory.buffer);
    this.write(init);
  }

  private grow(bytes: number): void {
    ensureMemory(this.k.memory, bytes);
    if (this.f32.buffer !== this.k.memory.buffer) this.f32 = new Float32Array(this.k.memory.buffer);
  }

  /** Sets the parameters (weight and bias; the transform is not the engine's business). */
  write(h: Head): void {
    if (h.dim !== this.d || h.classes.length !== this.nc) throw new Error(`HeadEngine: a ${h.classes.length}x${h.dim} head in a ${this.nc}x${this.d} engine`);
    const f = this.f32;
    const p = this.P >>> 2;
    for (let c = 0; c < this.nc; c++) f.set(h.weight.subarray(c * this.d, (c + 1) * this.d), p + c * this.dp);
    f.set(h.bias, p + this.nc * this.dp);
  }

  /** Copies the current parameters into `into`. */
  read(into: Head): void {
    const f = this.f32;
    const p = this.P >>> 2;
    for (let c = 0; c < this.nc; c++) into.weight.set(f.subarray(p + c * this.dp, p + c * this.dp + this.d), c * this.d);
    into.bias.set(f.subarray(p + this.nc * this.dp, p + this.nc * this.dp + this.nc));
  }

  /** The parameters as one unpadded vector [W (nc*d) | b (nc)], for optimisers that want a flat vector. */
  readFlat(into: Float64Array): void {
    const { d, nc, dp, f32: f } = this;
    const p = this.P >>> 2;
    for (let c = 0; c < nc; c++) for (let k = 0; k < d; k++) into[c * d + k] = f[p + c * dp + k]!;
    for (let c = 0; c < nc; c++) into[nc * d + c] = f[p + nc * dp + c]!;
  }

  writeFlat(from: Float64Array): void {
    const { d, nc, dp, f32: f } = this;
    const p = this.P >>> 2;
    for (let c = 0; c < nc; c++) for (let k = 0; k < d; k++) f[p + c * dp + k] = from[c * d + k]!;
    for (let c = 0; c < nc; c++) f[p + nc * dp + c] = from[nc * d + c]!;
  }

  /** Rows of `x` (n*d) in wasm memory, copied once while the same array keeps coming back. */
  private residentRows(x: Float32Array, n: number): number {
    const hit = this.resident.find((r) => r.rows === x && r.n === n);
    if (hit) return hit.at;
    const at = this.resident.length > 0 ? this.resident[this.resident.length - 1]!.at + align16(this.resident[this.resident.length - 1]!.n * this.dp4) : this.top;
    if (this.resident.length >= 4) {
      // Callers alternate between at most a few sets (val, train); start over past that.
      this.resident = [];
      return this.residentRows(x, n);
    }
    if (x.length < n * this.d) throw new Error(`HeadEngine: ${n} rows of ${this.d} need ${n * this.d} floats, got ${x.length}`);
    this.grow(at + n * this.dp4);
    const f = this.f32;
    const { d, dp } = this;
    if (d === dp) f.set(x.subarray(0, n * d), at >>> 2);
    else for (let r = 0; r < n; r++) f.set(x.subarray(r * d, (r + 1) * d), (at >>> 2) + r * dp);
    this.resident.push({ rows: x, n, at });
    return at;
  }

  /** Copies batch row j into the staging buffer; returns its byte address. */
  private stageRow(batch: Batch, j: number): number {
    const src = batch.fromClean[j] === 1 ? this.clean! : this.aug;
    const o = batch.offs[j]!;
    const at = this.stage + j * this.dp4;
    this.f32.set(src.subarray(o, o + this.d), at >>> 2);
    return at;
  }

  /**
   * Softmax of the logits in Z for label y, turned in place into d(loss)/d(logit)·scale, which is
   * also added to the bias gradient; returns the row's loss.
   */
  private lossGrad(y: number, scale: number, smoothing: number): number {
    const { nc, f32 } = this;
    const z = this.Z >>> 2;
    const gb = (this.G >>> 2) + nc * this.dp;
    let m = -Infinity;
    for (let c = 0; c < nc; c++) if (f32[z + c]! > m) m = f32[z + c]!;
    let s = 0;
    for (let c = 0; c < nc; c++) s += Math.exp(f32[z + c]! - m);
    const lse = m + Math.log(s);
    let loss: number;
    if (smoothing === 0) {
      loss = lse - f32[z + y]!;
      // d(mean CE)/d(logit c) = (p_c - [c = y]) / B
      for (let c = 0; c < nc; c++) {
        f32[z + c] = (Math.exp(f32[z + c]! - m) / s - (c === y ? 1 : 0)) * scale;
        f32[gb + c] += f32[z + c]!;
      }
    } else {
      // targets q_c = (1-ε)[c = y] + ε/N; loss = Σ q_c·(lse - z_c); gradient p_c - q_c
      const off = smoothing / nc;
      let zSum = 0;
      for (let c = 0; c < nc; c++) zSum += f32[z + c]!;
      loss = lse - (1 - smoothing) * f32[z + y]! - off * zSum;
      for (let c = 0; c < nc; c++) {
        f32[z + c] = (Math.exp(f32[z + c]! - m) / s - (c === y ? 1 - smoothing + off : off)) * scale;
        f32[gb + c] += f32[z + c]!;
      }
    }
    return loss;
  }

  /** One Adam step on the batch's mean loss; returns the batch's SUM of losses (before the step). */
  trainStep(batch: Batch, lr: number, o: StepOptions = {}): number {
    if (batch.count > this.maxBatch) throw new Error(`HeadEngine: batch of ${batch.count} rows, engine made for ${this.maxBatch}`);
    const { nc, f32, k, dp4, P, G, Z } = this;
    f32.fill(0, G >>> 2, (G >>> 2) + this.paramFloats);
    const inv = 1 / batch.count;
    const smoothing = o.labelSmoothing ?? 0;
    let lossSum = 0;
    for (let j = 0; j < batch.count; j++) {
      const x = this.stageRow(batch, j);
      k.fwd(x, P, P + nc * dp4, Z, dp4, nc);
      lossSum += this.lossGrad(batch.labels[j]!, inv, smoothing);
      k.bwd(x, G, Z, dp4, nc);
    }
    this.adamStep(lr, o.weightDecay ?? 0);
    return lossSum;
  }

  /** Adam on the gradient in G (torch's order, bias corrections in double). */
  private adamStep(lr: number, weightDecay: number): void {
    const { P, G } = this;
    if (weightDecay !== 0) this.k.addDecay(G, P, this.nc * this.dp4, weightDecay);
    this.t++;
    const { beta1, beta2, eps } = ADAM_DEFAULTS;
    const bc1 = 1 - beta1 ** this.t;
    const bc2 = 1 - beta2 ** this.t;
    this.k.adam(P, G, this.M, this.V, this.paramFloats * 4, 1 - beta1, beta2, 1 - beta2, Math.sqrt(bc2), eps, -(lr / bc1));
  }

  /**
   * Full-batch objective at the current parameters: the SUM over `n` rows of `x` of the loss, and its
   * gradient (unpadded [W | b], like readFlat) into `grad`. For full-batch optimisers (L-BFGS).
   */
  lossAndGradient(x: Float32Array, labels: Int32Array, n: number, grad: Float64Array, smoothing = 0): number {
    const base = this.residentRows(x, n);
    const { nc, d, dp, f32, k, dp4, P, G, Z } = this;
    f32.fill(0, G >>> 2, (G >>> 2) + this.paramFloats);
    let lossSum = 0;
    for (let i = 0; i < n; i++) {
      const r = base + i * dp4;
      k.fwd(r, P, P + nc * dp4, Z, dp4, nc);
      lossSum += this.lossGrad(labels[i]!, 1, smoothing);
      k.bwd(r, G, Z, dp4, nc);
    }
    const g = G >>> 2;
    for (let c = 0; c < nc; c++) for (let j = 0; j < d; j++) grad[c * d + j] = f32[g + c * dp + j]!;
    for (let c = 0; c < nc; c++) grad[nc * d + c] = f32[g + nc * dp + c]!;
    return lossSum;
  }

  /** Loss and correct count of the current parameters on `n` rows packed in `x` (n*D) with `labels`. */
  evaluate(x: Float32Array, labels: Int32Array, n: number): EvalSums {
    const base = this.residentRows(x, n);
    const { nc, f32, k, dp4, P, Z } = this;
    const z = Z >>> 2;
    let lossSum = 0;
    let correct = 0;
    for (let i = 0; i < n; i++) {
      k.fwd(base + i * dp4, P, P + nc * dp4, Z, dp4, nc);
      const y = labels[i]!;
      if (argmax(f32, z, nc) === y) correct++;
      lossSum += crossEntropy(f32, z, nc, y);
    }
    return { lossSum, correct };
  }

  /** Logits (n*N) of the current parameters for `n` rows packed in `x`, through the staging area. */
  logits(x: Float32Array, n: number): Float32Array {
    const { d, nc, dp4, f32, k, P, Z } = this;
    if (x.length < n * d) throw new Error(`logits: ${n} rows of ${d} need ${n * d} floats, got ${x.length}`);
    const out = new Float32Array(n * nc);
    const z = Z >>> 2;
    for (let i = 0; i < n; i++) {
      f32.set(x.subarray(i * d, (i + 1) * d), this.stage >>> 2);
      k.fwd(this.stage, P, P + nc * dp4, Z, dp4, nc);
      out.set(f32.subarray(z, z + nc), i * nc);
    }
    return out;
  }
}
