// The most confident mistakes: the images the head got wrong with the highest probability on its
// (wrong) answer, what people open a classification report to look at.
import { softmaxRows } from '../head/loss.js';

export interface Mistake {
  /** Row of the image in the evaluated split. */
  row: number;
  truth: number;
  predicted: number;
  /** Probability of the predicted class. */
  prob: number;
  /** Probability of the true class. */
  trueProb: number;
}

/**
 * The `k` wrong rows with the highest predicted-class probability (softmax of `logits`, n*N), most
 * confident first; ties go to the earlier row. The predicted class is the arg-max with ties to the
 * lower index, as in the metrics.
 */
export function confidentMistakes(logits: Float32Array, labels: ArrayLike<number>, nc: number, k: number): Mistake[] {
  const n = labels.length;
  if (logits.length !== n * nc) throw new Error(`logits hold ${logits.length} values, expected ${n} rows x ${nc} classes`);
  const probs = softmaxRows(logits, n, nc);
  const wrong: Mistake[] = [];
  for (let i = 0; i < n; i++) {
    const o = i * nc;
    let p = 0;
    for (let c = 1; c < nc; c++) if (logits[o + c]! > logits[o + p]!) p = c;
    const y = labels[i]!;
    if (p !== y) wrong.push({ row: i, truth: y, predicted: p, prob: probs[o + p]!, trueProb: probs[o + y]! });
  }
  wrong.sort((a, b) => b.prob - a.prob || a.row - b.row);
  return wrong.slice(0, Math.max(0, k));
}
