// Engine "onnx": the folded ResNet written as an ONNX graph in memory (onnx-graph.ts) and run by
// onnxruntime-node. The graph takes NHWC float32 with a dynamic batch and
// transposes to NCHW itself, so callers fill one packed buffer for every engine. Sessions live in
// worker threads (onnx-worker.ts), so that a running batch never blocks the main thread.
import { availableParallelism } from 'node:os';
import type * as Ort from 'onnxruntime-node';
import { Worker } from 'node:worker_threads';
import type { RunReply, RunRequest, WorkerInit } from './onnx-worker.js';
import type { Engine } from './engine.js';
import { buildOnnxModel } from './onnx-graph.js';
import type { FoldedResNet } from './spec.js';
import { DEFAULT_FEATURES, featureDim, stageChannels, type FeatureSpec } from '../feature-spec.js';

export { buildOnnxModel };

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
  /** A graph built elsewhere from the same net (the int8 one, quantize.ts) instead of the fp32 one. */
  model?: Uint8Array;
  /** The fp32 graph's deep 3x3 convolutions as Winograd (winograd.ts); default: on CPU, yes. */
  winograd?: boolean;
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
  const model = opts.model ?? buildOnnxModel(net, { logits: withLogits, features, winograd: opts.winograd ?? !cuda });
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
    ? new URL('../../dist/backbone/onnx-worker.js', import.meta.url)
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
