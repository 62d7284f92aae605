// The image side of extract after decoding: each decoded image is prepared once (the preset's
// prepareTrain / evalImage), then its views are rendered by the preset's fused kernels into the slots
// of a batch buffer that the pipeline assigned.
//
// Why a worker thread: onnxruntime-node runs a batch synchronously on the JS main thread (its
// session.run is a setImmediate around a blocking native call), so JS work on the main thread cannot
// overlap inference: measured on 2 cores with K=5, rendering on the main thread left the engine idle
// for ~15% of the run. The worker prepares and renders while the main thread is inside the engine.
// Batch buffers move between the threads by transfer, never by copy: the worker owns a buffer while
// it renders into it, `seal` sends it to the main thread for the engine, `giveBack` returns it.
//
// Where the compiled worker is not beside this module (running from the TypeScript sources, e.g.
// under vitest) or the preset is not a registered one, the same ViewRenderer runs on the main thread.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { RgbImage } from './decode.js';
import type { NormLut } from './normalize.js';
import { getPreset, type Preset, type PresetName } from './presets.js';

/** The view index that stands for the eval-transform ("clean") view in a render list. */
export const CLEAN_VIEW = -1;

export interface RendererOptions {
  preset: Preset;
  norm: NormLut;
  seed: number;
  /** Views per batch buffer. */
  batch: number;
  /** 'main' forces rendering on the calling thread (default: a worker thread where available). */
  thread?: 'worker' | 'main';
}

export interface Renderer {
  readonly thread: 'worker' | 'main';
  /** Prepares an image for its views: `clean` and `aug` say which kinds will be asked for. */
  addImage(id: number, hash: string, img: RgbImage, clean: boolean, aug: boolean): void;
  /** Renders views of image `id` into buffer `b`: pairs of (slot, view index or CLEAN_VIEW). */
  render(id: number, b: number, pairs: number[]): void;
  /** No more views of image `id` will be asked for. */
  release(id: number): void;
  /** Buffer `b` with every view asked for so far rendered; it belongs to the caller until giveBack. */
  seal(b: number): Promise<Float32Array>;
  giveBack(b: number, data: Float32Array): void;
  close(): Promise<void>;
}

interface Prepared {
  hash: string;
  train?: RgbImage;
  evalImg?: RgbImage;
}

/** Prepared images by id and the batch buffers this side currently owns; the same on either thread. */
export class ViewRenderer {
  private readonly images = new Map<number, Prepared>();
  private readonly buffers: (Float32Array | undefined)[];
  private readonly viewFloats: number;

  constructor(private readonly preset: Preset, private readonly norm: NormLut, private readonly seed: number, batch: number, buffers = 2) {
    this.viewFloats = preset.inputSize * preset.inputSize * 3;
    this.buffers = Array.from({ length: buffers }, () => new Float32Array(batch * this.viewFloats));
  }

  addImage(id: number, hash: string, img: RgbImage, clean: boolean, aug: boolean): void {
    this.images.set(id, {
      hash,
      ...(aug ? { train: this.preset.prepareTrain(img) } : {}),
      ...(clean ? { evalImg: this.preset.evalImage(img) } : {}),
    });
  }

  render(id: number, b: number, pairs: ArrayLike<number>): void {
    const p = this.images.get(id);
    if (!p) throw new Error(`render: image ${id} is unknown or released`);
    const out = this.buffers[b];
    if (!out) throw new Error(`render: batch buffer ${b} is not here (not given back)`);
    for (let i = 0; i < pairs.length; i += 2) {
      const offset = pairs[i]! * this.viewFloats;
      const v = pairs[i + 1]!;
      if (v === CLEAN_VIEW) {
        if (!p.evalImg) throw new Error(`render: image ${id} was not prepared for its clean view`);
        this.preset.renderEval(p.evalImg, this.norm, out, offset);
      } else {
        if (!p.train) throw new Error(`render: image ${id} was not prepared for augmented views`);
        this.preset.renderTrainView(p.train, this.preset.viewParams(this.seed, p.hash, v), this.norm, out, offset);
      }
    }
  }

  release(id: number): void {
    this.images.delete(id);
  }

  take(b: number): Float32Array {
    const out = this.buffers[b];
    if (!out) throw new Error(`seal: batch buffer ${b} is not here`);
    this.buffers[b] = undefined;
    return out;
  }

  give(b: number, data: Float32Array): void {
    if (this.buffers[b]) throw new Error(`giveBack: batch buffer ${b} is already here`);
    this.buffers[b] = data;
  }
}

/** Messages to the worker. */
export type ToWorker =
  | { t: 'image'; id: number; hash: string; width: number; height: number; data: Uint8Array; clean: boolean; aug: boolean }
  | { t: 'render'; id: number; b: number; pairs: number[] }
  | { t: 'release'; id: number }
  | { t: 'seal'; b: number }
  | { t: 'give'; b: number; data: Float32Array };

/** Messages from the worker. */
export type FromWorker = { t: 'sealed'; b: number; data: Float32Array } | { t: 'error'; message: string };

export interface WorkerInit {
  preset: PresetName;
  norm: NormLut;
  seed: number;
  batch: number;
}

class MainThreadRenderer implements Renderer {
  readonly thread = 'main' as const;
  private readonly r: ViewRenderer;
  constructor(o: RendererOptions) {
    this.r = new ViewRenderer(o.preset, o.norm, o.seed, o.batch);
  }
  addImage(id: number, hash: string, img: RgbImage, clean: boolean, aug: boolean): void {
    this.r.addImage(id, hash, img, clean, aug);
  }
  render(id: number, b: number, pairs: number[]): void {
    this.r.render(id, b, pairs);
  }
  release(id: number): void {
    this.r.release(id);
  }
  seal(b: number): Promise<Float32Array> {
    try {
      return Promise.resolve(this.r.take(b));
    } catch (e) {
      return Promise.reject(e);
    }
  }
  giveBack(b: number, data: Float32Array): void {
    this.r.give(b, data);
  }
  async close(): Promise<void> {}
}

class WorkerRenderer implements Renderer {
  readonly thread = 'worker' as const;
  private readonly seals = new Map<number, { resolve: (d: Float32Array) => void; reject: (e: Error) => void }>();
  private dead: Error | undefined;
  private closing = false;

  constructor(private readonly worker: Worker) {
    worker.on('message', (m: FromWorker) => {
      if (m.t === 'sealed') {
        const s = this.seals.get(m.b);
        this.seals.delete(m.b);
        s?.resolve(m.data);
      } else {
        this.fail(new Error(`render worker: ${m.message}`));
      }
    });
    worker.on('error', (e) => this.fail(e instanceof Error ? e : new Error(String(e))));
    worker.on('exit', (code) => {
      if (!this.closing) this.fail(new Error(`render worker exited unexpectedly (code ${code})`));
    });
  }

  private fail(e: Error): void {
    this.dead ??= e;
    for (const s of this.seals.values()) s.reject(this.dead);
    this.seals.clear();
  }

  private post(m: ToWorker, transfer?: ArrayBuffer[]): void {
    if (!this.dead && !this.closing) this.worker.postMessage(m, transfer);
  }

  addImage(id: number, hash: string, img: RgbImage, clean: boolean, aug: boolean): void {
    // A clone copies the whole underlying ArrayBuffer: send exactly the pixels.
    const d = img.data;
    const data = d.byteOffset === 0 && d.byteLength === d.buffer.byteLength ? d : d.slice();
    this.post({ t: 'image', id, hash, width: img.width, height: img.height, data, clean, aug });
  }

  render(id: number, b: number, pairs: number[]): void {
    this.post({ t: 'render', id, b, pairs });
  }

  release(id: number): void {
    this.post({ t: 'release', id });
  }

  seal(b: number): Promise<Float32Array> {
    if (this.dead) return Promise.reject(this.dead);
    if (this.seals.has(b)) return Promise.reject(new Error(`seal: batch buffer ${b} is already being sealed`));
    const p = new Promise<Float32Array>((resolve, reject) => this.seals.set(b, { resolve, reject }));
    this.post({ t: 'seal', b });
    return p;
  }

  giveBack(b: number, data: Float32Array): void {
    this.post({ t: 'give', b, data }, [data.buffer as ArrayBuffer]);
  }

  async close(): Promise<void> {
    this.closing = true;
    this.fail(new Error('renderer closed'));
    await this.worker.terminate();
  }
}

const WORKER_URL = new URL('./render-worker.js', import.meta.url);

export function openRenderer(o: RendererOptions): Renderer {
  const registered = (() => {
    try {
      return getPreset(o.preset.name) === o.preset;
    } catch {
      return false;
    }
  })();
  if (o.thread !== 'main' && registered && existsSync(fileURLToPath(WORKER_URL))) {
    const init: WorkerInit = { preset: o.preset.name, norm: o.norm, seed: o.seed, batch: o.batch };
    return new WorkerRenderer(new Worker(WORKER_URL, { workerData: init }));
  }
  return new MainThreadRenderer(o);
}
