// The one entry point the rest of the code uses to get a backbone: resolves the weights, checks
// them against the ResNet spec, picks the engine (a GPU one that really works, else the fastest CPU
// one) and says in one stderr line what it chose and why anything preferred was skipped.
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { UserError, errorMessage } from '../errors.js';
import { log } from '../log.js';
import type { DeviceChoice, Engine, EngineChoice } from './engine.js';
import type { Preprocess } from '../image/normalize.js';
import { createOnnxEngine, onnxCudaAvailable } from './onnx.js';
import { buildQdqModel, type ActivationRanges } from './quantize.js';
import { readSafetensors } from './safetensors.js';
import { buildResNet, type FoldedResNet } from './spec.js';
import { DEFAULT_FEATURES, type FeatureSpec } from '../feature-spec.js';
import type { TfjsEngine } from './tfjs.js';
import { resolveWeights } from './weights.js';

export interface BackboneOptions {
  weights?: string;
  /** Architecture of the default weights, and the fallback when a file does not say (default resnet18). */
  backbone?: string;
  engine?: EngineChoice;
  device?: DeviceChoice;
  /** Default: os.availableParallelism(). */
  threads?: number;
  /** Also build the ImageNet logits output (engine.logits), when the weights have fc. */
  logits?: boolean;
  /** What the features concatenate (default: average pool of layer4). */
  features?: FeatureSpec;
  quiet?: boolean;
  /**
   * int8: the QDQ graph (quantize.ts) with the activation ranges this returns, given the folded
   * network and the weights' sha256 (it may calibrate on them, or check a stored calibration). Runs
   * on onnxruntime's CPU provider only.
   */
  int8?: (net: FoldedResNet, weightsSha256: string) => Promise<ActivationRanges>;
}

export interface OpenedBackbone {
  engine: Engine;
  arch: string;
  dim: number;
  preprocess: Preprocess;
  weightsPath: string;
  weightsSha256: string;
  metadata: Record<string, string>;
  precision: 'fp32' | 'int8';
}

const require = createRequire(import.meta.url);

function installed(pkg: string): boolean {
  try {
    require.resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

function short(e: unknown): string {
  return errorMessage(e).split('\n')[0]!.slice(0, 160);
}

interface Attempt {
  label: string;
  /** Why it cannot even be tried (checked cheaply, before loading anything). */
  unavailable?: () => Promise<string | undefined>;
  create: () => Promise<Engine>;
}

export async function openBackbone(opts: BackboneOptions = {}): Promise<OpenedBackbone> {
  const engineChoice = opts.engine ?? 'auto';
  const device = opts.device ?? 'auto';
  const threads = opts.threads === undefined ? availableParallelism() : Math.floor(opts.threads);
  if (!(threads >= 1)) throw new UserError(`--threads must be a positive integer, not ${opts.threads}`);

  const { net, weightsPath, weightsSha256, metadata } = await loadBackboneNet(opts);

  const features = opts.features ?? DEFAULT_FEATURES;
  let attempts: Attempt[];
  if (opts.int8) {
    // onnxruntime fuses the QDQ graph into its CPU int8 kernels; tfjs has none, and a GPU gains little.
    if (engineChoice === 'tfjs') throw new UserError('--precision int8 runs on the onnx engine only (drop --engine tfjs)');
    if (device === 'cuda') throw new UserError('--precision int8 runs on the CPU only (drop --device cuda)');
    const model = buildQdqModel(net, await opts.int8(net, weightsSha256), { logits: !!opts.logits, features });
    attempts = [{ label: 'onnx cpu int8', create: () => createOnnxEngine(net, { device: 'cpu', threads, logits: !!opts.logits, model, features }) }];
  } else {
    attempts = engineAttempts(net, engineChoice, device, threads, !!opts.logits, features);
  }
  const skipped: string[] = [];
  let engine: Engine | undefined;
  for (const a of attempts) {
    const why = await a.unavailable?.();
    if (why) {
      skipped.push(`${a.label} (${why})`);
      continue;
    }
    try {
      engine = await a.create();
      // A runtime can load and still fail on the first batch (a missing CUDA library, an unsupported
      // kernel): one tiny forward here lets auto fall back instead of failing mid-run.
      try {
        await engine.embed(new Float32Array(32 * 32 * 3), 1, 32, 32);
      } catch (e) {
        await engine.dispose();
        engine = undefined;
        throw e;
      }
      // tfjs reports the backends it passed over on its way to the one that loaded.
      if ('tf' in engine) {
        for (const s of (engine as TfjsEngine).tf.skipped) {
          const [name, why = ''] = s.split(/: (.*)/s);
          skipped.push(`${name} (${/Cannot find (package|module)/.test(why) ? 'not installed' : why})`);
        }
      }
      break;
    } catch (e) {
      skipped.push(`${a.label} (${short(e)})`);
    }
  }
  if (!engine) {
    throw new UserError(`no backbone engine works for --engine ${engineChoice} --device ${device}: ${skipped.join('; ')}`);
  }

  if (!opts.quiet) {
    const arch = net.variant.arch;
    log(`backbone: ${arch}${opts.int8 ? ' int8' : ''} (weights sha256 ${weightsSha256.slice(0, 6)}…) on ${engine.engine} (${engine.backend}), ` +
      `device ${engine.device}, ${engine.threads} thread${engine.threads === 1 ? '' : 's'}` +
      (skipped.length ? `; skipped: ${skipped.join('; ')}` : ''));
  }
  return {
    engine,
    arch: net.variant.arch,
    dim: engine.dim,
    preprocess: net.variant.preprocess,
    weightsPath,
    weightsSha256,
    metadata,
    precision: opts.int8 ? 'int8' : 'fp32',
  };
}

export interface LoadedNet {
  net: FoldedResNet;
  weightsPath: string;
  weightsSha256: string;
  metadata: Record<string, string>;
}

/** The weights resolved, read, checked against the spec and folded: the network without an engine (export builds its own graph). */
export async function loadBackboneNet(opts: Pick<BackboneOptions, 'weights' | 'backbone' | 'quiet'>): Promise<LoadedNet> {
  const resolved = await resolveWeights({
    ...(opts.weights !== undefined ? { weights: opts.weights } : {}),
    ...(opts.backbone !== undefined ? { backbone: opts.backbone } : {}),
    ...(opts.quiet !== undefined ? { quiet: opts.quiet } : {}),
  });
  const file = resolved.file ?? await readSafetensors(resolved.path);
  const net = buildResNet(file, opts.backbone);
  // The raw tensors are no longer needed once folded; let them go before an engine copies weights.
  file.tensors.clear();
  return { net, weightsPath: resolved.path, weightsSha256: file.sha256, metadata: file.metadata };
}

/** The engines to try, best first, for an --engine/--device choice. */
function engineAttempts(net: FoldedResNet, engine: EngineChoice, device: DeviceChoice, threads: number, logits: boolean, features: FeatureSpec): Attempt[] {
  const onnxCuda: Attempt = {
    label: 'onnx cuda',
    unavailable: async () => ((await onnxCudaAvailable())
      ? undefined
      : 'onnxruntime-node has no CUDA EP here; install it with ONNXRUNTIME_NODE_INSTALL=cuda12'),
    create: () => createOnnxEngine(net, { device: 'cuda', threads, logits, features }),
  };
  const onnxCpu: Attempt = {
    label: 'onnx cpu',
    create: () => createOnnxEngine(net, { device: 'cpu', threads, logits, features }),
  };
  const tfjsGpu: Attempt = {
    label: 'tfjs-node-gpu',
    unavailable: async () => (installed('@tensorflow/tfjs-node-gpu') ? undefined : '@tensorflow/tfjs-node-gpu is not installed'),
    create: async () => (await import('./tfjs.js')).createTfjsEngine(net, { backends: ['tfjs-node-gpu'], threads, logits, features }),
  };
  const tfjsCpu: Attempt = {
    label: 'tfjs cpu',
    create: async () => (await import('./tfjs.js')).createTfjsEngine(net, { backends: ['tfjs-node', 'wasm', 'cpu'], threads, logits, features }),
  };
  const gpu = { onnx: [onnxCuda], tfjs: [tfjsGpu], auto: [onnxCuda, tfjsGpu] }[engine];
  // On CPU, onnxruntime is ~10x faster than tfjs wasm here (bench/engines.mjs).
  const cpu = { onnx: [onnxCpu], tfjs: [tfjsCpu], auto: [onnxCpu, tfjsCpu] }[engine];
  if (device === 'cuda') return gpu;
  if (device === 'cpu') return cpu;
  return [...gpu, ...cpu];
}
