// The one interface every backbone runtime implements. Inputs are NHWC float32, already normalised
// the way the weights ask (see Preprocess); outputs are the global-average-pooled features.
export type EngineName = 'onnx' | 'tfjs';
export type EngineChoice = EngineName | 'auto';
export type DeviceChoice = 'auto' | 'cpu' | 'cuda';

export interface EngineInfo {
  engine: EngineName;
  /** e.g. 'onnxruntime cpu', 'onnxruntime cuda', 'tfjs-node-gpu', 'tfjs-node', 'tfjs wasm'. */
  backend: string;
  device: 'cpu' | 'cuda' | 'gpu';
  threads: number;
}

export interface Engine extends EngineInfo {
  /** Feature dimension (512 for resnet18/34, 2048 for resnet50). */
  readonly dim: number;
  /** How many embed() calls can usefully run at once (batches in flight). */
  readonly parallel: number;
  /** A buffer of `floats` floats that embed() reads without a copy on the calling thread. */
  allocInput(floats: number): Float32Array;
  /**
   * Features of `n` images packed NHWC in `input` (n*h*w*3 floats). Returns n*dim floats.
   * The engine may keep internal buffers but never keeps references to `input` after the promise
   * settles; the caller must not change `input` before then.
   */
  embed(input: Float32Array, n: number, h: number, w: number): Promise<Float32Array>;
  /** ImageNet logits through fc (n*1000), for checks; only when the weights have fc. */
  logits?(input: Float32Array, n: number, h: number, w: number): Promise<Float32Array>;
  dispose(): Promise<void>;
}

/**
 * Engine batch when the user names none. On CPU, 8 views per batch and one batch per core
 * (bench/extract.mjs here: pipeline 63-68 views/s at 8, 59-63 at 16, 54 at 32, where a 32-view batch
 * also holds a whole batch of rendering back); a GPU wants larger batches to fill it.
 */
export function defaultBatch(engine: EngineInfo): number {
  return engine.device === 'cpu' ? 8 : 32;
}
