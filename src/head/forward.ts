// The forward pass of a saved head, for eval and predict: the head's transform, then the same kernel
// training evaluates with (so eval's accuracy of a head is the accuracy training recorded for it).
import { HeadEngine } from './engine.js';
import type { Head } from './head.js';
import { applyTransform } from './transform.js';

/** A head ready to score feature rows; build it once and call logits() as often as needed. */
export class HeadForward {
  private readonly engine: HeadEngine;

  constructor(readonly head: Head) {
    this.engine = new HeadEngine(head);
  }

  /** Logits (n*N) of `n` raw feature rows packed in `x` (n*D). */
  logits(x: Float32Array, n: number): Float32Array {
    return this.engine.logits(applyTransform(this.head.transform, x, n, this.head.dim), n);
  }
}

/** Logits (n*N) of `n` raw feature rows packed in `x` (n*D). */
export function headLogits(head: Head, x: Float32Array, n: number): Float32Array {
  return new HeadForward(head).logits(x, n);
}
