// 3x3 stride-1 convolutions as Winograd F(2x2, 3x3), written in ONNX ops on NHWC tensors, for the CPU
// engine's deep stages. A direct convolution spends 9 multiply-adds per input channel per output
// pixel; Winograd spends 4 (16 per 2x2 output tile), as 16 matrix products [tiles, C] x [C, C'] that
// onnxruntime runs on its GEMM, plus input and output transforms made of additions only. Measured
// on the SPR Xeon of the README (three chained convolutions per stage, batch 8, one thread, a one-off
// script): resnet18's layer4 convolutions ran 1.55x as fast and layer3's 1.22x; layer2's 0.65x and
// layer1's 0.36x (128 and 64 channels on larger maps: the transforms' memory traffic outweighs the
// saved arithmetic), so those stay direct (WINOGRAD_MIN_CHANNELS). The whole engine: bench/extract.mjs
// and bench/engines.mjs print Winograd ÷ direct.
//
// Numerics: the transforms use only 0, ±1 and ±0.5, so the result differs from a direct convolution
// by float rounding alone: one convolution within 1e-6 relative, resnet18's features ~2e-7 (tests:
// test/backbone/winograd.test.ts; PyTorch's reference features still within 1e-4).
//
// Tiles: the input is padded by 1 on the top/left and by 1 (even size) or 2 (odd) on the bottom/right,
// so that t = ceil(H/2) tiles cover it; the 2t x 2t result is cropped back to H x W. Sizes are read
// from the tensor at run time (the engine's graph has a dynamic input size).
import type { FoldedBlock, FoldedConv } from './spec.js';

/** What this module needs of onnx-graph.ts's OnnxGraph (structural: that module imports this one). */
export interface OnnxGraph {
  node(op: string, inputs: string[], outputs: string[], attrs?: Record<string, number | number[]>): string;
  init(name: string, dims: number[], t: Float32Array | { type: 'int64'; data: BigInt64Array }): string;
}

/** Below this many input or output channels a convolution stays direct (see the file comment). */
export const WINOGRAD_MIN_CHANNELS = 256;

/**
 * Whether a residual block runs as Winograd: a basic block (resnet18/34: two 3x3 convolutions) with
 * a convolution useWinograd takes. Bottleneck blocks (resnet50) stay direct: their 3x3 convolution
 * sits between 1x1 ones, and even with those as GEMMs on NHWC (no transposes) resnet50-keras ran
 * 1.03x at 224 and 0.95x at 288 (SPR), not worth a second graph.
 */
export function winogradBlock(b: FoldedBlock): boolean {
  return b.convs.length === 2 && b.convs.every((c) => c.k === 3) && b.convs.some(useWinograd);
}

/** Whether `c` runs as Winograd in a Winograd block. */
export function useWinograd(c: FoldedConv): boolean {
  return c.k === 3 && c.stride === 1 && c.pad === 1 && c.inC >= WINOGRAD_MIN_CHANNELS && c.outC >= WINOGRAD_MIN_CHANNELS;
}

// F(2x2, 3x3): Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A on 4x4 input tiles d with stride 2.
const BT = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]] as const;
const G = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]] as const;
const AT = [[1, 1, 1, 0], [0, 1, -1, -1]] as const;
/** The one product whose coefficient is 1 in every output pixel: the bias is added there, once per tile. */
const BIAS_TERM = 1 * 4 + 1;

/** The 16 transformed kernels, U[a*4+b] = (G g Gᵀ)[a][b] for every (in, out) channel pair, each [inC, outC]. */
export function winogradWeights(c: FoldedConv): Float32Array[] {
  const { inC, outC, weight } = c;
  const u = Array.from({ length: 16 }, () => new Float32Array(inC * outC));
  const gg = new Float64Array(12);
  for (let o = 0; o < outC; o++) {
    for (let i = 0; i < inC; i++) {
      const w = (r: number, s: number) => weight[((o * inC + i) * 3 + r) * 3 + s]!;
      // gg = G g (4x3), then (G g) Gᵀ (4x4); in float64, rounded once.
      for (let a = 0; a < 4; a++) for (let s = 0; s < 3; s++) gg[a * 3 + s] = G[a]![0]! * w(0, s) + G[a]![1]! * w(1, s) + G[a]![2]! * w(2, s);
      for (let a = 0; a < 4; a++) {
        for (let b = 0; b < 4; b++) {
          u[a * 4 + b]![i * outC + o] = gg[a * 3]! * G[b]![0]! + gg[a * 3 + 1]! * G[b]![1]! + gg[a * 3 + 2]! * G[b]![2]!;
        }
      }
    }
  }
  return u;
}

const int64 = (...v: number[]) => ({ type: 'int64' as const, data: BigInt64Array.from(v.map(BigInt)) });

/**
 * Σ coef·x over terms with coefficients ±1 (at least one +1), in as few element-wise ops as the
 * graph allows: one Sum of the positive terms, one Sub of the negative ones.
 */
function combine(g: OnnxGraph, terms: [number, string][], out: string): string {
  const pos = terms.filter(([k]) => k === 1).map(([, x]) => x);
  const neg = terms.filter(([k]) => k === -1).map(([, x]) => x);
  if (pos.length === 0 || pos.length + neg.length !== terms.length) throw new Error(`winograd: unsupported combination for ${out}`);
  if (neg.length === 0) return pos.length === 1 ? pos[0]! : g.node(pos.length === 2 ? 'Add' : 'Sum', pos, [out]);
  const p = pos.length === 1 ? pos[0]! : g.node(pos.length === 2 ? 'Add' : 'Sum', pos, [`${out}.pos`]);
  const n = neg.length === 1 ? neg[0]! : g.node(neg.length === 2 ? 'Add' : 'Sum', neg, [`${out}.neg`]);
  return g.node('Sub', [p, n], [out]);
}

/** Rows `matrix` · xs: one combination per row, over the nonzero coefficients. */
function applyRows(g: OnnxGraph, matrix: readonly (readonly number[])[], xs: string[], out: string): string[] {
  return matrix.map((row, r) => combine(g, row.flatMap((k, j) => (k === 0 ? [] : [[k, xs[j]!] as [number, string]])), `${out}${r}`));
}

/** The padded input's 4 overlapping stride-2 phases along `axis` (rows k, k+2, …, k+2t-2 for k = 0..3). */
function phases(g: OnnxGraph, x: string, axis: number, name: string): string[] {
  const ax = g.init(`${name}.axis`, [1], int64(axis));
  const step = g.init(`${name}.step`, [1], int64(2));
  // The padded length is 2t+2, so phase k ends (exclusive) 3-k before the end; the last runs to the end.
  return [0, 1, 2, 3].map((k) => g.node('Slice', [
    x, g.init(`${name}.start${k}`, [1], int64(k)), g.init(`${name}.end${k}`, [1], int64(k < 3 ? k - 3 : 2 ** 62)), ax, step,
  ], [`${name}.${k}`]));
}

/** Per spatial size (one per stage): the input's [H, W] and the pads that make it 2t+2 on each side. */
export interface TileGeometry {
  hw: string;
  pads: string;
}

/** The geometry of NHWC tensor `x`, computed in the graph. */
export function tileGeometry(g: OnnxGraph, x: string, name: string): TileGeometry {
  const shape = g.node('Shape', [x], [`${name}.shape`]);
  const hw = g.node('Slice', [shape, g.init(`${name}.hw.start`, [1], int64(1)), g.init(`${name}.hw.end`, [1], int64(3))], [`${name}.hw`]);
  const odd = g.node('Mod', [hw, g.init(`${name}.two`, [1], int64(2))], [`${name}.odd`]);
  const after = g.node('Add', [odd, g.init(`${name}.one`, [1], int64(1))], [`${name}.after`]);
  // Pad's order is all begins then all ends: [0, 1, 1, 0,  0, 1+H%2, 1+W%2, 0] on N, H, W, C.
  const pads = g.node('Concat', [g.init(`${name}.begin`, [5], int64(0, 1, 1, 0, 0)), after, g.init(`${name}.zero`, [1], int64(0))], [`${name}.pads`], { axis: 0 });
  return { hw, pads };
}

/**
 * The convolution `c` (with its bias, before any activation) of NHWC tensor `x` of geometry `geo`,
 * as Winograd F(2x2, 3x3); returns the NHWC output's name.
 */
export function appendWinogradConv(g: OnnxGraph, x: string, c: FoldedConv, geo: TileGeometry): string {
  const name = `${c.conv}.wino`;
  const padded = g.node('Pad', [x, geo.pads], [`${name}.pad`]);
  // Input transform Bᵀ d B: along the rows, then along the columns of each row result.
  const rows = applyRows(g, BT, phases(g, padded, 1, `${name}.r`), `${name}.v`);
  const tiles = rows.flatMap((v, a) => applyRows(g, BT, phases(g, v, 2, `${name}.c${a}`), `${name}.u${a}`));
  // 16 products [N, t, t, C] x [C, C'] (MatMul folds the leading dims; the constant B is prepacked once).
  const u = winogradWeights(c);
  const m = tiles.map((v, i) => g.node('MatMul', [v, g.init(`${name}.w${i}`, [c.inC, c.outC], u[i]!)], [`${name}.m${i}`]));
  m[BIAS_TERM] = g.node('Add', [m[BIAS_TERM]!, g.init(`${c.conv}.b`, [c.outC], c.bias)], [`${name}.mb`]);
  // Output transform Aᵀ m A, then the four outputs of every tile interleaved into [N, 2t, 2t, C'].
  const z = [0, 1, 2, 3].map((b) => applyRows(g, AT, [0, 1, 2, 3].map((a) => m[a * 4 + b]!), `${name}.z${b}_`));
  const y = [0, 1].map((r) => applyRows(g, AT, z.map((zb) => zb[r]!), `${name}.y${r}_`));
  const axes = g.init(`${name}.unsq`, [2], int64(2, 4));
  const up = (v: string, tag: string) => g.node('Unsqueeze', [v, axes], [`${name}.up${tag}`]);
  const tileRows = [0, 1].map((r) => g.node('Concat', [up(y[r]![0]!, `${r}0`), up(y[r]![1]!, `${r}1`)], [`${name}.row${r}`], { axis: 4 }));
  const grid = g.node('Concat', tileRows, [`${name}.grid`], { axis: 2 });
  const outShape = g.node('Mul', [g.node('Shape', [y[0]![0]!], [`${name}.tshape`]), g.init(`${name}.x2`, [4], int64(1, 2, 2, 1))], [`${name}.oshape`]);
  const full = g.node('Reshape', [grid, outShape], [`${name}.full`]);
  return g.node('Slice', [full, g.init(`${name}.crop.start`, [2], int64(0, 0)), geo.hw, g.init(`${name}.crop.axes`, [2], int64(1, 2))], [`${name}.out`]);
}

