// The optimiser and learning-rate schedule of the seed's recipe, written to match PyTorch:
// torch.optim.Adam (single-tensor CPU path, no weight decay, no amsgrad) and torch.optim.lr_scheduler.StepLR.

export interface AdamOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
}

const f = Math.fround;

/** torch.optim.Adam's defaults, the recipe's; every head-math backend uses these. */
export const ADAM_DEFAULTS = { beta1: 0.9, beta2: 0.999, eps: 1e-8 } as const;

/**
 * Adam over float32 parameters, updated in place. Per element, in torch's order and with each
 * tensor op rounded to float32 as torch does (its vectorised kernels may fuse a multiply-add, so the
 * last bit can differ):
 *   m = lerp(m, g, 1-β1) = m + (1-β1)(g-m)
 *   v = β2·v + (1-β2)·g²
 *   p = p - (lr / (1-β1^t)) · m / (sqrt(v) / sqrt(1-β2^t) + eps)
 * The bias corrections are computed in double, as torch does in Python.
 */
export class Adam {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  /** Number of updates taken so far (torch's `step`). */
  t = 0;
  private readonly m: Float32Array[];
  private readonly v: Float32Array[];

  constructor(readonly params: Float32Array[], opts: AdamOptions = {}) {
    this.beta1 = opts.beta1 ?? ADAM_DEFAULTS.beta1;
    this.beta2 = opts.beta2 ?? ADAM_DEFAULTS.beta2;
    this.eps = opts.eps ?? ADAM_DEFAULTS.eps;
    this.m = params.map((p) => new Float32Array(p.length));
    this.v = params.map((p) => new Float32Array(p.length));
  }

  /** One update of every parameter from its gradient (same order and lengths as the params). */
  step(grads: Float32Array[], lr: number): void {
    if (grads.length !== this.params.length) throw new Error(`Adam.step: ${grads.length} gradients for ${this.params.length} parameters`);
    this.t++;
    const bc1 = 1 - this.beta1 ** this.t;
    const bc2 = 1 - this.beta2 ** this.t;
    const stepSize = f(-(lr / bc1));
    const bc2Sqrt = f(Math.sqrt(bc2));
    const w1 = f(1 - this.beta1);
    const b2 = f(this.beta2);
    const w2 = f(1 - this.beta2);
    const eps = f(this.eps);
    for (let k = 0; k < this.params.length; k++) {
      const p = this.params[k]!, g = grads[k]!, m = this.m[k]!, v = this.v[k]!;
      if (g.length !== p.length) throw new Error(`Adam.step: gradient ${k} has ${g.length} values for ${p.length} parameters`);
      for (let i = 0; i < p.length; i++) {
        const gi = g[i]!;
        const mi = f(m[i]! + f(w1 * f(gi - m[i]!)));
        const vi = f(f(v[i]! * b2) + f(w2 * f(gi * gi)));
        m[i] = mi;
        v[i] = vi;
        const denom = f(f(f(Math.sqrt(vi)) / bc2Sqrt) + eps);
        p[i] = f(p[i]! + f(stepSize * f(mi / denom)));
      }
    }
  }
}

export interface StepLrOptions {
  lr: number;
  stepSize: number;
  gamma: number;
}

/**
 * StepLR's learning rate during 1-based epoch `epoch`: lr·γ^floor((epoch-1)/stepSize). Computed by
 * repeated multiplication, as torch's scheduler does when it steps, so a non-power-of-two γ rounds the same way.
 */
export function stepLr(epoch: number, o: StepLrOptions): number {
  if (!Number.isInteger(epoch) || epoch < 1) throw new Error(`epoch must be a positive integer, got ${epoch}`);
  const decays = Math.floor((epoch - 1) / o.stepSize);
  let lr = o.lr;
  for (let i = 0; i < decays; i++) lr *= o.gamma;
  return lr;
}
