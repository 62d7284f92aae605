// Softmax cross-entropy on logit rows, in double: the one definition training, the sweep and eval use.

/** log(sum(exp(z[o..o+nc)))), max-subtracted so that large logits do not overflow. */
export function logSumExp(z: ArrayLike<number>, o: number, nc: number): number {
  let m = -Infinity;
  for (let c = 0; c < nc; c++) if (z[o + c]! > m) m = z[o + c]!;
  let s = 0;
  for (let c = 0; c < nc; c++) s += Math.exp(z[o + c]! - m);
  return m + Math.log(s);
}

/** Cross-entropy of one logit row z[o..o+nc) against label y. */
export function crossEntropy(z: ArrayLike<number>, o: number, nc: number, y: number): number {
  return logSumExp(z, o, nc) - z[o + y]!;
}

/** Arg-max of one row; ties go to the lower class index. */
export function argmax(z: ArrayLike<number>, o: number, nc: number): number {
  let a = 0;
  for (let c = 1; c < nc; c++) if (z[o + c]! > z[o + a]!) a = c;
  return a;
}

/** Row-wise softmax of n*N scores. */
export function softmaxRows(logits: ArrayLike<number>, n: number, nc: number): Float32Array {
  const out = new Float32Array(n * nc);
  for (let i = 0; i < n; i++) {
    const o = i * nc;
    const lse = logSumExp(logits, o, nc);
    for (let c = 0; c < nc; c++) out[o + c] = Math.exp(logits[o + c]! - lse);
  }
  return out;
}
