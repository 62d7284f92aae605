import { describe, expect, it } from 'vitest';
import { HeadEngine, type Batch } from '../../src/head/engine.js';
import { initHead } from '../../src/head/head.js';
import { Rng } from '../../src/random.js';
import { ScalarAdam } from './adam-reference.js';

const rng = new Rng(3, 9);
const rand = (n: number, s = 1) => Float32Array.from({ length: n }, () => (rng.uniform() - 0.5) * 2 * s);

/** Mean loss over rows in double, for finite differences: CE with label smoothing eps. */
function meanLoss(w: Float64Array, x: Float32Array, y: Int32Array, n: number, d: number, nc: number, eps: number): number {
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const z = Array.from({ length: nc }, (_, c) => {
      let s = w[nc * d + c]!;
      for (let k = 0; k < d; k++) s += w[c * d + k]! * x[i * d + k]!;
      return s;
    });
    const m = Math.max(...z);
    const lse = m + Math.log(z.reduce((a, v) => a + Math.exp(v - m), 0));
    for (let c = 0; c < nc; c++) sum += ((c === y[i] ? 1 - eps : 0) + eps / nc) * (lse - z[c]!);
  }
  return sum;
}

describe('HeadEngine', () => {
  const d = 9, nc = 6, n = 12;
  const x = rand(n * d, 2);
  const y = Int32Array.from({ length: n }, (_, i) => (i * 5) % nc);

  for (const eps of [0, 0.1]) {
    it(`lossAndGradient is the summed cross-entropy and its gradient (label smoothing ${eps})`, () => {
      const e = new HeadEngine(initHead(Array.from({ length: nc }, (_, i) => `c${i}`), d, 1));
      const w = new Float64Array(nc * d + nc);
      e.readFlat(w);
      const grad = new Float64Array(w.length);
      const loss = e.lossAndGradient(x, y, n, grad, eps);
      expect(loss).toBeCloseTo(meanLoss(w, x, y, n, d, nc, eps), 4);
      for (const j of [0, 5, d + 3, nc * d - 1, nc * d, nc * d + nc - 1]) {
        const h = 1e-4;
        const wp = w.slice(), wm = w.slice();
        wp[j] += h;
        wm[j] -= h;
        const num = (meanLoss(wp, x, y, n, d, nc, eps) - meanLoss(wm, x, y, n, d, nc, eps)) / (2 * h);
        expect(grad[j]).toBeCloseTo(num, 3);
      }
    });
  }

  it('writeFlat/readFlat round-trip the parameters', () => {
    const e = new HeadEngine(initHead(['a', 'b', 'c'], 5, 0));
    const w = Float64Array.from({ length: 18 }, (_, i) => i / 4);
    e.writeFlat(w);
    const back = new Float64Array(18);
    e.readFlat(back);
    expect([...back]).toEqual([...w]);
  });

  it('an Adam step with weight decay adds wd·W to the weight gradient only (not the bias)', () => {
    const classes = Array.from({ length: nc }, (_, i) => `c${i}`);
    const init = initHead(classes, d, 4);
    const wd = 0.3;
    const engine = new HeadEngine(init, { maxBatch: n, aug: x });
    const probe = new HeadEngine(init);
    const g = new Float64Array(nc * d + nc);
    probe.lossAndGradient(x, y, n, g);
    const batch: Batch = { count: n, fromClean: new Uint8Array(n), offs: Float64Array.from({ length: n }, (_, i) => i * d), labels: y };
    engine.trainStep(batch, 1e-2, { weightDecay: wd });
    const p = new Float32Array(nc * d + nc);
    p.set(init.weight);
    p.set(init.bias, nc * d);
    const g32 = Float32Array.from(g, (v, i) => v / n + (i < nc * d ? wd * p[i]! : 0));
    new ScalarAdam(p).step(g32, 1e-2);
    const got = initHead(classes, d, 0);
    engine.read(got);
    for (let i = 0; i < nc * d; i++) expect(got.weight[i]).toBeCloseTo(p[i]!, 6);
    for (let c = 0; c < nc; c++) expect(got.bias[c]).toBeCloseTo(p[nc * d + c]!, 6);
  });

  it('refuses a batch larger than it was made for and rows too short', () => {
    const e = new HeadEngine(initHead(['a', 'b'], 3, 0), { maxBatch: 2, aug: new Float32Array(9) });
    const b: Batch = { count: 3, fromClean: new Uint8Array(3), offs: new Float64Array(3), labels: new Int32Array(3) };
    expect(() => e.trainStep(b, 1e-3)).toThrow(/batch of 3 rows, engine made for 2/);
    expect(() => e.logits(new Float32Array(5), 2)).toThrow(/2 rows of 3 need 6 floats, got 5/);
  });
});
