// Engine "onnx": the folded ResNet written as an ONNX graph in memory (weights as raw_data
// initializers) and run by onnxruntime-node. The graph takes NHWC float32 with a dynamic batch and
// transposes to NCHW itself, so callers fill one packed buffer for every engine. Sessions live in
// worker threads (onnx-worker.ts), so that a running batch never blocks the main thread.
import { availableParallelism } from 'node:os';
import onnxProto from 'onnx-proto';
import type * as Ort from 'onnxruntime-node';
import { Worker } from 'node:worker_threads';
import type { RunReply, RunRequest, WorkerInit } from './onnx-worker.js';
import type { Engine } from './engine.js';
import type { FoldedConv, FoldedResNet } from './spec.js';
import { DEFAULT_FEATURES, GEM_EPS, featureDim, featureTaps, gemExponent, stageChannels, stageEnds, type FeatureSpec } from '../../feature-spec.js';

const { onnx } = onnxProto;
type NodeArgs = { op: string; inputs: string[]; outputs: string[]; attrs?: Record<string, number | number[]> };

/** Opset 13 covers every op used here and is supported by every onnxruntime of the last years. */
const OPSET = 13;

export interface OnnxModelOptions {
  /** A second output, `logits`, through fc (on the average pool of layer4, whatever `features` is). */
  logits?: boolean;
  /** What the `features` output concatenates (default: average pool of layer4). */
  features?: FeatureSpec;
  /** Extra outputs `layer<N>.map` (NCHW feature maps of those stages), for tests that pool by hand. */
  maps?: number[];
}

/** Serialises the network as an ONNX ModelProto: output `features` (see OnnxModelOptions). */
export function buildOnnxModel(net: FoldedResNet, opts: OnnxModelOptions = {}): Uint8Array {
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
  const spec = opts.features ?? DEFAULT_FEATURES;
  const ends = stageEnds(net.blocks);
  const stageMap = (layer: number): string => {
    const end = ends.get(layer);
    if (!end) throw new Error(`${net.variant.arch} has no layer${layer}`);
    return `${end}.out`;
  };
  // Every pooling ends as an N x C x 1 x 1 tensor; avg of layer4 keeps the name 'pooled' (fc reads it).
  const pool = (layer: number, p: string): string => {
    const map = stageMap(layer);
    const tag = `layer${layer}.${p}`;
    if (p === 'avg') return node({ op: 'GlobalAveragePool', inputs: [map], outputs: [layer === 4 ? 'pooled' : `${tag}.pooled`] });
    const e = gemExponent(p)!;
    const eps = init(`${tag}.eps`, [], Float32Array.of(GEM_EPS));
    const pw = init(`${tag}.p`, [], Float32Array.of(e));
    const inv = init(`${tag}.invp`, [], Float32Array.of(1 / e));
    const clipped = node({ op: 'Clip', inputs: [map, eps], outputs: [`${tag}.clip`] });
    const powered = node({ op: 'Pow', inputs: [clipped, pw], outputs: [`${tag}.pow`] });
    const mean = node({ op: 'GlobalAveragePool', inputs: [powered], outputs: [`${tag}.mean`] });
    return node({ op: 'Pow', inputs: [mean, inv], outputs: [`${tag}.pooled`] });
  };
  const taps = featureTaps(spec, stageChannels(net.blocks));
  const pooledTaps = taps.map((t) => pool(t.layer, t.pool));
  const joined = pooledTaps.length === 1
    ? pooledTaps[0]!
    : node({ op: 'Concat', inputs: pooledTaps, outputs: ['concat'], attrs: { axis: 1 } });
  node({ op: 'Flatten', inputs: [joined], outputs: ['features'], attrs: { axis: 1 } });
  const dim = featureDim(spec, stageChannels(net.blocks));

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
  const outputs = [float('features', ['N', dim])];
  if (opts.logits && net.fc) {
    const avg4 = taps.some((t) => t.layer === 4 && t.pool === 'avg') ? 'pooled' : pool(4, 'avg');
    const flat = node({ op: 'Flatten', inputs: [avg4], outputs: ['pooled.flat'], attrs: { axis: 1 } });
    const w = init('fc.w', [net.fc.classes, net.dim], net.fc.weight);
    const b = init('fc.b', [net.fc.classes], net.fc.bias);
    node({ op: 'Gemm', inputs: [flat, w, b], outputs: ['logits'], attrs: { transB: 1 } });
    outputs.push(float('logits', ['N', net.fc.classes]));
  }
  for (const layer of opts.maps ?? []) {
    const m = node({ op: 'Identity', inputs: [stageMap(layer)], outputs: [`layer${layer}.map`] });
    outputs.push(float(m, ['N', stageChannels(net.blocks)[layer - 1]!, 'h', 'w']));
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
  /** CPU cores to use (default: all). */
  threads?: number;
  /**
   * Sessions, each in its own worker thread, that run batches side by side (CPU default: one per
   * thread, each single-threaded; CUDA: one).
   */
  workers?: number;
  /** Batches each worker holds at once (default 2: the next one waits in the worker, not here). */
  queueDepth?: number;
  logits?: boolean;
  /** What the features concatenate (default: average pool of layer4). */
  features?: FeatureSpec;
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

/** CPU sessions at most, however many cores; see createOnnxEngine. */
const MAX_CPU_SESSIONS = 4;

/**
 * On CPU the engine is `threads` single-threaded sessions (at most MAX_CPU_SESSIONS, then several
 * threads each), each in a worker thread, running batches side by side. Measured here against one
 * session with 2 intra-op threads (bench/engines.mjs, bench/extract.mjs): about the same images/s
 * for the engine alone, but inside the pipeline the main thread keeps decoding and rendering while
 * both workers infer, and a core taken by that work stalls only one worker's batch, not a parallel
 * section that waits at a barrier for its slowest thread.
 */
export async function createOnnxEngine(net: FoldedResNet, opts: OnnxEngineOptions): Promise<Engine> {
  const threads = Math.max(1, Math.floor(opts.threads ?? availableParallelism()));
  const cuda = opts.device === 'cuda';
  // Each session holds its own weights and arena (resnet50: ~0.4 GB), so past MAX_CPU_SESSIONS cores
  // the sessions share them out as intra-op threads instead (unmeasured here: this machine has 2).
  const workers = Math.max(1, Math.floor(opts.workers ?? (cuda ? 1 : Math.min(threads, MAX_CPU_SESSIONS))));
  const withLogits = !!(opts.logits && net.fc);
  const options: Ort.InferenceSession.SessionOptions = {
    executionProviders: cuda ? ['cuda'] : ['cpu'],
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    enableCpuMemArena: true,
    enableMemPattern: true,
    logSeverityLevel: 3,
    ...opts.session,
  };
  const features = opts.features ?? DEFAULT_FEATURES;
  const model = buildOnnxModel(net, { logits: withLogits, features });
  const depth = Math.max(1, Math.floor(opts.queueDepth ?? 2));
  // Each worker gets its share of the cores (the remainder goes to the first ones).
  const pool = await WorkerPool.start(model, Array.from({ length: workers }, (_, i) => ({
    ...options,
    intraOpNumThreads: opts.session?.intraOpNumThreads ?? Math.max(1, Math.floor(threads / workers) + (i < threads % workers ? 1 : 0)),
  })), depth);

  const run = (output: 'features' | 'logits', input: Float32Array, n: number, h: number, w: number) => {
    const len = n * h * w * 3;
    if (input.length < len) return Promise.reject(new Error(`input holds ${input.length} floats, ${n}x${h}x${w}x3 needs ${len}`));
    return pool.run({ input: input.length === len ? input : input.subarray(0, len), dims: [n, h, w, 3], output });
  };

  return {
    engine: 'onnx',
    backend: cuda ? 'onnxruntime cuda' : 'onnxruntime cpu',
    device: opts.device,
    threads,
    parallel: workers * depth,
    dim: featureDim(features, stageChannels(net.blocks)),
    allocInput: (floats) => new Float32Array(new SharedArrayBuffer(floats * 4)),
    embed: (input, n, h, w) => run('features', input, n, h, w),
    ...(withLogits ? { logits: (input: Float32Array, n: number, h: number, w: number) => run('logits', input, n, h, w) } : {}),
    dispose: () => pool.close(),
  };
}

/** The compiled worker; under vitest this module runs from src/*.ts, and the worker only exists in dist/. */
function workerUrl(): URL {
  return import.meta.url.endsWith('.ts')
    ? new URL('../../../dist/extract/backbone/onnx-worker.js', import.meta.url)
    : new URL('./onnx-worker.js', import.meta.url);
}

interface Job {
  req: Omit<RunRequest, 'id'>;
  resolve: (d: Float32Array) => void;
  reject: (e: Error) => void;
}

/**
 * Sessions in worker threads. Each worker holds up to `depth` requests, so that when it finishes a
 * batch the next one is already in its own queue: handing it over from here would wait until this
 * thread is done rendering views. Further requests wait here, in order.
 */
class WorkerPool {
  private readonly queue: Job[] = [];
  private readonly pending = new Map<Worker, Map<number, Job>>();
  private nextId = 0;
  private closed = false;

  private constructor(private readonly workers: Worker[], readonly depth: number) {
    for (const w of workers) {
      this.pending.set(w, new Map());
      w.on('message', (m: RunReply) => this.done(w, m));
      w.on('error', (e) => this.crashed(w, e));
      w.on('exit', (code) => { if (!this.closed) this.crashed(w, new Error(`onnxruntime worker exited (code ${code})`)); });
    }
  }

  static async start(model: Uint8Array, options: Ort.InferenceSession.SessionOptions[], depth: number): Promise<WorkerPool> {
    const workers: Worker[] = [];
    try {
      await Promise.all(options.map(async (opts) => {
        const w = new Worker(workerUrl(), { workerData: { model, options: opts } satisfies WorkerInit });
        workers.push(w);
        await new Promise<void>((resolve, reject) => {
          const onMessage = (m: { ready?: true; error?: string }) => settle(m.ready ? undefined : new Error(m.error));
          const onError = (e: Error) => settle(e);
          const onExit = (code: number) => settle(new Error(`onnxruntime worker exited (code ${code}) while loading`));
          // Only these listeners go: removeAllListeners() would also drop the worker's own, and replies would never arrive.
          const settle = (e?: Error) => {
            w.off('message', onMessage).off('error', onError).off('exit', onExit);
            if (e) reject(e);
            else resolve();
          };
          w.on('message', onMessage).on('error', onError).on('exit', onExit);
        });
      }));
    } catch (e) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw e;
    }
    return new WorkerPool(workers, depth);
  }

  run(req: Omit<RunRequest, 'id'>): Promise<Float32Array> {
    if (this.closed) return Promise.reject(new Error('the onnx engine was disposed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ req, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      // The live worker with the fewest requests, if it has room.
      let best: Worker | undefined;
      for (const [w, jobs] of this.pending) if (!best || jobs.size < this.pending.get(best)!.size) best = w;
      if (!best || this.pending.get(best)!.size >= this.depth) return;
      const job = this.queue.shift()!;
      const id = this.nextId++;
      this.pending.get(best)!.set(id, job);
      // A plain (non-shared) input is copied by postMessage, so the caller may reuse it at once.
      best.postMessage({ ...job.req, id } satisfies RunRequest);
    }
  }

  private done(w: Worker, m: RunReply): void {
    const jobs = this.pending.get(w);
    const job = jobs?.get(m.id);
    if (!job) return;
    jobs!.delete(m.id);
    if ('error' in m) job.reject(new Error(m.error));
    else job.resolve(m.data);
    this.dispatch();
  }

  private crashed(w: Worker, e: Error): void {
    const jobs = this.pending.get(w);
    if (!jobs) return;
    this.pending.delete(w);
    for (const job of jobs.values()) job.reject(e);
    if (this.pending.size === 0) {
      for (const q of this.queue.splice(0)) q.reject(e);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const q of this.queue.splice(0)) q.reject(new Error('the onnx engine was disposed'));
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
