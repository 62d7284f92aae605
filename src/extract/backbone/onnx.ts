// Engine "onnx": the folded ResNet written as an ONNX graph in memory (weights as raw_data
// initializers) and run by onnxruntime-node. The graph takes NHWC float32 with a dynamic batch and
// transposes to NCHW itself, so callers fill one packed buffer for every engine.
import { availableParallelism } from 'node:os';
import onnxProto from 'onnx-proto';
import type * as Ort from 'onnxruntime-node';
import type { Engine } from './engine.js';
import type { FoldedConv, FoldedResNet } from './spec.js';

const { onnx } = onnxProto;
type NodeArgs = { op: string; inputs: string[]; outputs: string[]; attrs?: Record<string, number | number[]> };

/** Opset 13 covers every op used here and is supported by every onnxruntime of the last years. */
const OPSET = 13;

/** Serialises the network as an ONNX ModelProto. `logits` adds a second output through fc. */
export function buildOnnxModel(net: FoldedResNet, opts: { logits?: boolean } = {}): Uint8Array {
  const nodes: InstanceType<typeof onnx.NodeProto>[] = [];
  const inits: InstanceType<typeof onnx.TensorProto>[] = [];
  let nodeId = 0;

  const node = ({ op, inputs, outputs, attrs = {} }: NodeArgs) => {
    nodes.push(onnx.NodeProto.create({
      name: `${op}_${nodeId++}`,
      opType: op,
      input: inputs,
      output: outputs,
      attribute: Object.entries(attrs).map(([name, v]) => Array.isArray(v)
        ? onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INTS, ints: v })
        : onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i: v })),
    }));
    return outputs[0]!;
  };
  const init = (name: string, dims: number[], data: Float32Array) => {
    inits.push(onnx.TensorProto.create({
      name,
      dims,
      dataType: onnx.TensorProto.DataType.FLOAT,
      rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    }));
    return name;
  };
  const conv = (x: string, c: FoldedConv, relu: boolean): string => {
    const w = init(`${c.conv}.w`, [c.outC, c.inC, c.k, c.k], c.weight);
    const b = init(`${c.conv}.b`, [c.outC], c.bias);
    const y = node({
      op: 'Conv',
      inputs: [x, w, b],
      outputs: [`${c.conv}.out`],
      attrs: { kernel_shape: [c.k, c.k], strides: [c.stride, c.stride], pads: [c.pad, c.pad, c.pad, c.pad], dilations: [1, 1], group: 1 },
    });
    return relu ? node({ op: 'Relu', inputs: [y], outputs: [`${c.conv}.relu`] }) : y;
  };

  let x = node({ op: 'Transpose', inputs: ['input'], outputs: ['nchw'], attrs: { perm: [0, 3, 1, 2] } });
  x = conv(x, net.stem, true);
  // The max-pool input is post-ReLU, and MaxPool's own pads ignore padded cells (−inf) as PyTorch does.
  x = node({ op: 'MaxPool', inputs: [x], outputs: ['maxpool'], attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] } });
  for (const b of net.blocks) {
    let y = x;
    b.convs.forEach((c, i) => { y = conv(y, c, i < b.convs.length - 1); });
    const shortcut = b.downsample ? conv(x, b.downsample, false) : x;
    const sum = node({ op: 'Add', inputs: [y, shortcut], outputs: [`${b.name}.add`] });
    x = node({ op: 'Relu', inputs: [sum], outputs: [`${b.name}.out`] });
  }
  const pooled = node({ op: 'GlobalAveragePool', inputs: [x], outputs: ['pooled'] });
  node({ op: 'Flatten', inputs: [pooled], outputs: ['features'], attrs: { axis: 1 } });

  const float = (name: string, dims: (number | string)[]) => onnx.ValueInfoProto.create({
    name,
    type: onnx.TypeProto.create({
      tensorType: onnx.TypeProto.Tensor.create({
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: onnx.TensorShapeProto.create({
          dim: dims.map((d) => onnx.TensorShapeProto.Dimension.create(typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
        }),
      }),
    }),
  });
  const outputs = [float('features', ['N', net.dim])];
  if (opts.logits && net.fc) {
    const w = init('fc.w', [net.fc.classes, net.dim], net.fc.weight);
    const b = init('fc.b', [net.fc.classes], net.fc.bias);
    node({ op: 'Gemm', inputs: ['features', w, b], outputs: ['logits'], attrs: { transB: 1 } });
    outputs.push(float('logits', ['N', net.fc.classes]));
  }

  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'viewprobe',
    opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: OPSET })],
    graph: onnx.GraphProto.create({
      name: net.variant.arch,
      node: nodes,
      initializer: inits,
      input: [float('input', ['N', 'H', 'W', 3])],
      output: outputs,
    }),
  });
  return onnx.ModelProto.encode(model).finish();
}

export interface OnnxEngineOptions {
  device: 'cpu' | 'cuda';
  threads?: number;
  logits?: boolean;
  /** Extra session options, for benchmarks that compare settings. */
  session?: Ort.InferenceSession.SessionOptions;
}

/**
 * Whether onnxruntime-node can offer the CUDA execution provider. The binding lists `cuda` with
 * `bundled: false` on Linux x64 because its provider library is not in the npm tarball: it arrives
 * only through the package's install script (ONNXRUNTIME_NODE_INSTALL=cuda12). So the test is the
 * library file beside the binding; creating the session is the final proof (auto falls back on error).
 */
export async function onnxCudaAvailable(): Promise<boolean> {
  const ort = await import('onnxruntime-node');
  const cuda = ort.listSupportedBackends().find((b) => b.name === 'cuda');
  if (!cuda) return false;
  if (cuda.bundled) return true;
  try {
    const { createRequire } = await import('node:module');
    const { existsSync } = await import('node:fs');
    const { dirname, join } = await import('node:path');
    const pkg = dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'));
    const dir = join(pkg, 'bin', 'napi-v6', process.platform, process.arch);
    return existsSync(join(dir, 'libonnxruntime_providers_cuda.so')) || existsSync(join(dir, 'onnxruntime_providers_cuda.dll'));
  } catch {
    return false;
  }
}

export async function createOnnxEngine(net: FoldedResNet, opts: OnnxEngineOptions): Promise<Engine> {
  const ort = await import('onnxruntime-node');
  const threads = Math.max(1, Math.floor(opts.threads ?? availableParallelism()));
  const withLogits = !!(opts.logits && net.fc);
  const session = await ort.InferenceSession.create(buildOnnxModel(net, { logits: withLogits }), {
    executionProviders: opts.device === 'cuda' ? ['cuda'] : ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    enableCpuMemArena: true,
    enableMemPattern: true,
    logSeverityLevel: 3,
    ...opts.session,
  });

  const run = async (output: 'features' | 'logits', input: Float32Array, n: number, h: number, w: number) => {
    const len = n * h * w * 3;
    if (input.length < len) throw new Error(`input holds ${input.length} floats, ${n}x${h}x${w}x3 needs ${len}`);
    const feed = new ort.Tensor('float32', input.length === len ? input : input.subarray(0, len), [n, h, w, 3]);
    const result = await session.run({ input: feed }, [output]);
    return result[output]!.data as Float32Array;
  };

  return {
    engine: 'onnx',
    backend: opts.device === 'cuda' ? 'onnxruntime cuda' : 'onnxruntime cpu',
    device: opts.device,
    threads,
    dim: net.dim,
    embed: (input, n, h, w) => run('features', input, n, h, w),
    ...(withLogits ? { logits: (input: Float32Array, n: number, h: number, w: number) => run('logits', input, n, h, w) } : {}),
    dispose: () => session.release(),
  };
}
