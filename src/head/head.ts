// The linear head, Linear(D, N), optionally behind a fixed feature transform, and its initial values.
import { Rng, Stream } from '../random.js';

/**
 * A feature transform applied to each row BEFORE the linear layer, in this order:
 * x -> sign(x)·|x|^power (when `power` is set) -> x / ||x||_2 (when `l2`). Fitted statistics
 * (standardisation) never appear here: they are folded into the weight and bias when a head is saved.
 */
export interface HeadTransform {
  power?: number;
  l2?: boolean;
}

export interface Head {
  classes: string[];
  dim: number;
  /** N*D row-major, like torch's Linear.weight. */
  weight: Float32Array;
  /** N. */
  bias: Float32Array;
  /** Absent: the plain linear head. */
  transform?: HeadTransform;
}

/**
 * PyTorch's default Linear init: kaiming_uniform_(a=sqrt(5)) on the weight reduces to
 * U(-1/sqrt(D), 1/sqrt(D)); the bias is U(-1/sqrt(D), 1/sqrt(D)). Weight first, then bias, as torch draws them.
 */
export function initHead(classes: string[], dim: number, seed: number): Head {
  const n = classes.length;
  const rng = new Rng(seed, Stream.init);
  const bound = 1 / Math.sqrt(dim);
  const weight = new Float32Array(n * dim);
  for (let i = 0; i < weight.length; i++) weight[i] = -bound + 2 * bound * rng.uniform();
  const bias = new Float32Array(n);
  for (let i = 0; i < n; i++) bias[i] = -bound + 2 * bound * rng.uniform();
  return { classes: [...classes], dim, weight, bias };
}

export function cloneHead(h: Head): Head {
  return {
    classes: [...h.classes],
    dim: h.dim,
    weight: h.weight.slice(),
    bias: h.bias.slice(),
    ...(h.transform ? { transform: { ...h.transform } } : {}),
  };
}
