// The head's training arithmetic on the WebAssembly SIMD kernels (wasm-kernels.ts); softmax and the
// loss stay in JS, in double, between the forward and backward kernel of each row. Same semantics as
// JsHeadMath; float32 sums in a different order, so results agree to float rounding, not bit for bit.
import type { Head } from './head.js';
import type { Batch, EvalSums, HeadMath } from './math.js';
import { instantiateKernels, type HeadKernels } from './wasm-kernels.js';
import { ADAM_DEFAULTS } from './schedule.js';

const PAGE = 65536;
const MEMORY_LIMIT = 3.5 * 2 ** 30;

const align16 = (bytes: number) => Math.ceil(bytes / 16) * 16;

export class WasmHeadMath implements HeadMath {
  readonly name = 'wasm-simd';
  private readonly k: HeadKernels;
  private readonly d: number;
  private readonly nc: number;
  /** Padded row length in floats (multiple of 4). */
  private readonly dp: number;
  private readonly dp4: number;
  private readonly paramFloats: number;
  private readonly P: number; // [W nc*dp | b ncp], then the same layout for G, M, V
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
  /** First byte past the constructor's allocations: where val rows go. */
  private readonly top: number;
  private valRows = 0;
  private valFor: Float32Array | undefined;
  private f32: Float32Array;
  private t = 0;

  private constructor(init: Head, private readonly aug: Float32Array, private readonly clean: Float32Array | null, maxBatch: number, k: HeadKernels) {
    this.k = k;
    this.d = init.dim;
    this.nc = init.classes.length;
    this.dp = Math.ceil(this.d / 4) * 4;
    this.dp4 = this.dp * 4;
    const ncp = Math.ceil(this.nc / 4) * 4;
    this.paramFloats = this.nc * this.dp + ncp;
    const pBytes = this.paramFloats * 4;
    let top = 0;
    const take = (bytes: number) => { const at = top; top += align16(bytes); return at; };
    this.P = take(pBytes);
    this.G = take(pBytes);
    this.M = take(pBytes);
    this.V = take(pBytes);
    this.Z = take(ncp * 4);
    this.stage = take(maxBatch * this.dp4);
    this.top = top;
    this.grow(top);
    this.f32 = new Float32Array(this.k.memory.buffer);
    const f = this.f32;
    for (let c = 0; c < this.nc; c++) f.set(init.weight.subarray(c * this.d, (c + 1) * this.d), (this.P >>> 2) + c * this.dp);
    f.set(init.bias, (this.P >>> 2) + this.nc * this.dp);
  }

  /** null where WebAssembly SIMD is not available. */
  static create(init: Head, aug: Float32Array, clean: Float32Array | null, maxBatch: number): WasmHeadMath | null {
    const k = instantiateKernels();
    return k ? new WasmHeadMath(init, aug, clean, maxBatch, k) : null;
  }

  private grow(bytes: number): void {
    if (bytes > MEMORY_LIMIT) throw new Error(`head training needs ${(bytes / 2 ** 30).toFixed(1)} GiB of wasm memory (limit ${MEMORY_LIMIT / 2 ** 30} GiB)`);
    const have = this.k.memory.buffer.byteLength;
    if (bytes > have) this.k.memory.grow(Math.ceil((bytes - have) / PAGE));
    this.f32 = new Float32Array(this.k.memory.buffer);
  }

  private copyRows(src: Float32Array, rows: number, base: number): void {
    const { d, dp } = this;
    const f = this.f32;
    if (d === dp) {
      f.set(src.subarray(0, rows * d), base >>> 2);
      return;
    }
    for (let r = 0; r < rows; r++) f.set(src.subarray(r * d, (r + 1) * d), (base >>> 2) + r * dp);
  }

  /** Copies batch row j into the staging buffer; returns its byte address in wasm memory. */
  private rowAddress(batch: Batch, j: number): number {
    const src = batch.fromClean[j] === 1 ? this.clean! : this.aug;
    const o = batch.offs[j]!;
    const at = this.stage + j * this.dp4;
    this.f32.set(src.subarray(o, o + this.d), at >>> 2);
    return at;
  }

  trainStep(batch: Batch, lr: number): number {
    const { nc, f32, k, dp4, P, G, Z } = this;
    const z = Z >>> 2;
    const gb = (G >>> 2) + nc * this.dp;
    f32.fill(0, G >>> 2, (G >>> 2) + this.paramFloats);
    const inv = 1 / batch.count;
    const W = P, B = P + nc * dp4;
    let lossSum = 0;
    for (let j = 0; j < batch.count; j++) {
      const x = this.rowAddress(batch, j);
      const y = batch.labels[j]!;
      k.fwd(x, W, B, Z, dp4, nc);
      let m = -Infinity;
      for (let c = 0; c < nc; c++) if (f32[z + c]! > m) m = f32[z + c]!;
      let s = 0;
      for (let c = 0; c < nc; c++) s += Math.exp(f32[z + c]! - m);
      lossSum += m + Math.log(s) - f32[z + y]!;
      // d(mean CE)/d(logit c) = (p_c - [c = y]) / B
      for (let c = 0; c < nc; c++) {
        const g = (Math.exp(f32[z + c]! - m) / s - (c === y ? 1 : 0)) * inv;
        f32[z + c] = g;
        f32[gb + c] += f32[z + c]!;
      }
      k.bwd(x, G, Z, dp4, nc);
    }
    this.t++;
    const { beta1, beta2, eps } = ADAM_DEFAULTS;
    const bc1 = 1 - beta1 ** this.t;
    const bc2 = 1 - beta2 ** this.t;
    k.adam(P, G, this.M, this.V, this.paramFloats * 4, 1 - beta1, beta2, 1 - beta2, Math.sqrt(bc2), eps, -(lr / bc1));
    return lossSum;
  }

  evaluate(x: Float32Array, labels: Int32Array, n: number): EvalSums {
    if (this.valFor !== x || this.valRows !== n) {
      // Val rows live after everything else, copied once per evaluated array (once per run in practice).
      this.grow(this.top + n * this.dp4);
      this.copyRows(x, n, this.top);
      this.valFor = x;
      this.valRows = n;
    }
    const { nc, f32, k, dp4, P, Z } = this;
    const z = Z >>> 2;
    let lossSum = 0;
    let correct = 0;
    for (let i = 0; i < n; i++) {
      k.fwd(this.top + i * dp4, P, P + nc * dp4, Z, dp4, nc);
      const y = labels[i]!;
      let arg = 0;
      for (let c = 1; c < nc; c++) if (f32[z + c]! > f32[z + arg]!) arg = c;
      if (arg === y) correct++;
      const m = f32[z + arg]!;
      let s = 0;
      for (let c = 0; c < nc; c++) s += Math.exp(f32[z + c]! - m);
      lossSum += m + Math.log(s) - f32[z + y]!;
    }
    return { lossSum, correct };
  }

  read(into: Head): void {
    const f = this.f32;
    const p = this.P >>> 2;
    for (let c = 0; c < this.nc; c++) into.weight.set(f.subarray(p + c * this.dp, p + c * this.dp + this.d), c * this.d);
    into.bias.set(f.subarray(p + this.nc * this.dp, p + this.nc * this.dp + this.nc));
  }

  dispose(): void {}
}
