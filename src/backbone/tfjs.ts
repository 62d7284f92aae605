// Engine "tfjs": the folded ResNet as TensorFlow.js ops, on whichever backend src/tfjs.ts loads
// (tfjs-node-gpu, tfjs-node, wasm, cpu). Padding is explicit and symmetric, as PyTorch pads:
// TensorFlow's 'same' pads asymmetrically at stride 2 and would shift every feature map.
import type * as TF from '@tensorflow/tfjs';
import { loadTf, type LoadedTf, type TfBackendName } from '../tfjs.js';
import type { Engine } from './engine.js';
import type { FoldedConv, FoldedResNet } from './spec.js';
import { DEFAULT_FEATURES, GEM_EPS, featureDim, featureTaps, gemExponent, stageChannels, type FeatureSpec } from '../feature-spec.js';

export interface TfjsEngineOptions {
  /** Backends to try, in order (see src/tfjs.ts). */
  backends: TfBackendName[];
  threads: number;
  logits?: boolean;
  /** What the features concatenate (default: average pool of layer4). */
  features?: FeatureSpec;
}

interface ConvT {
  spec: FoldedConv;
  /** HWIO, as tfjs convolutions want. */
  filter: TF.Tensor4D;
  bias: TF.Tensor1D;
}

function toHwio(c: FoldedConv): Float32Array {
  const { outC, inC, k } = c;
  const out = new Float32Array(c.weight.length);
  for (let o = 0; o < outC; o++) {
    for (let i = 0; i < inC; i++) {
      for (let y = 0; y < k; y++) {
        for (let x = 0; x < k; x++) out[((y * k + x) * inC + i) * outC + o] = c.weight[((o * inC + i) * k + y) * k + x]!;
      }
    }
  }
  return out;
}

export interface TfjsEngine extends Engine {
  /** The loaded tfjs (for tests that watch `tf.memory()`). */
  readonly tf: LoadedTf;
}

export async function createTfjsEngine(net: FoldedResNet, opts: TfjsEngineOptions): Promise<TfjsEngine> {
  const loaded = await loadTf(opts.backends, opts.threads);
  const { tf } = loaded;

  // Weights live as long as the engine; everything per batch is created and freed inside tf.tidy.
  const weights: TF.Tensor[] = [];
  const keep = <T extends TF.Tensor>(t: T): T => { weights.push(t); return t; };
  const convT = (c: FoldedConv): ConvT => ({
    spec: c,
    filter: keep(tf.tensor4d(toHwio(c), [c.k, c.k, c.inC, c.outC])),
    bias: keep(tf.tensor1d(c.bias)),
  });
  const stem = convT(net.stem);
  const blocks = net.blocks.map((b) => ({
    stage: Number(/^layer(\d+)\./.exec(b.name)?.[1] ?? 0),
    convs: b.convs.map(convT),
    downsample: b.downsample ? convT(b.downsample) : undefined,
  }));
  const spec = opts.features ?? DEFAULT_FEATURES;
  const taps = featureTaps(spec, stageChannels(net.blocks));
  const withLogits = !!(opts.logits && net.fc);
  const fc = withLogits && net.fc
    ? { w: keep(tf.tensor2d(net.fc.weight, [net.fc.classes, net.dim])), b: keep(tf.tensor1d(net.fc.bias)) }
    : undefined;

  const conv = (x: TF.Tensor4D, c: ConvT, relu: boolean): TF.Tensor4D =>
    tf.fused.conv2d({
      x,
      filter: c.filter,
      strides: [c.spec.stride, c.spec.stride],
      // Explicit symmetric padding, exactly PyTorch's `padding=p`. Not a bare number: tfjs-node's
      // conv kernels accept only VALID, SAME or EXPLICIT padding.
      pad: [[0, 0], [c.spec.pad, c.spec.pad], [c.spec.pad, c.spec.pad], [0, 0]],
      dataFormat: 'NHWC',
      bias: c.bias,
      activation: relu ? 'relu' : 'linear',
    });

  const pool = (map: TF.Tensor4D, p: string): TF.Tensor2D => {
    const e = gemExponent(p);
    if (e === undefined) return tf.mean(map, [1, 2]) as TF.Tensor2D;
    return tf.pow(tf.mean(tf.pow(tf.maximum(map, GEM_EPS), e), [1, 2]), 1 / e) as TF.Tensor2D;
  };

  /** [the features, the average pool of layer4 (for fc)]. */
  const forward = (x: TF.Tensor4D): [TF.Tensor2D, TF.Tensor2D] => {
    let y = conv(x, stem, true);
    // Zero padding equals PyTorch's −inf padding here because the input is post-ReLU (≥ 0).
    y = tf.maxPool(tf.pad(y, [[0, 0], [1, 1], [1, 1], [0, 0]]), 3, 2, 'valid');
    const maps = new Map<number, TF.Tensor4D>();
    for (const b of blocks) {
      let z = y;
      b.convs.forEach((c, i) => { z = conv(z, c, i < b.convs.length - 1); });
      const shortcut = b.downsample ? conv(y, b.downsample, false) : y;
      y = tf.relu(tf.add(z, shortcut)) as TF.Tensor4D;
      maps.set(b.stage, y);
    }
    const pooled = taps.map((t) => pool(maps.get(t.layer)!, t.pool));
    return [pooled.length === 1 ? pooled[0]! : tf.concat(pooled, 1), tf.mean(y, [1, 2]) as TF.Tensor2D];
  };

  const run = async (which: 'features' | 'logits', input: Float32Array, n: number, h: number, w: number): Promise<Float32Array> => {
    const len = n * h * w * 3;
    if (input.length < len) throw new Error(`input holds ${input.length} floats, ${n}x${h}x${w}x3 needs ${len}`);
    const out = tf.tidy(() => {
      const x = tf.tensor4d(input.length === len ? input : input.subarray(0, len), [n, h, w, 3]);
      const [f, avg4] = forward(x);
      return which === 'logits' && fc ? tf.add(tf.matMul(avg4, fc.w, false, true), fc.b) : f;
    });
    try {
      return (await out.data()) as Float32Array;
    } finally {
      out.dispose();
    }
  };

  const backendLabel = loaded.backend === 'wasm' || loaded.backend === 'cpu' ? `tfjs ${loaded.backend}` : loaded.backend;
  return {
    engine: 'tfjs',
    backend: backendLabel,
    device: loaded.device,
    threads: loaded.threads,
    dim: featureDim(spec, stageChannels(net.blocks)),
    parallel: 1,
    allocInput: (floats: number) => new Float32Array(floats),
    tf: loaded,
    embed: (input, n, h, w) => run('features', input, n, h, w),
    ...(fc ? { logits: (input: Float32Array, n: number, h: number, w: number) => run('logits', input, n, h, w) } : {}),
    dispose: async () => {
      for (const t of weights.splice(0)) t.dispose();
    },
  };
}
