// The engine's input buffers in rotation: one is being filled on this thread while the others are
// with the engine (it runs `engine.parallel` batches at once, and one more waits in line so that a
// session that finishes never waits for this thread). Views are rendered straight into the buffer
// being filled; each finished batch's features go to `onBatch` with the tags of its views.
//
// A batch is never left inside the engine: settle() waits for every batch in flight, and whoever
// disposes the engine (or exits the process) must call it first. onnxruntime answers a worker torn
// down in the middle of a run with a native abort ("terminate called after throwing an instance of
// 'Napi::Error'", exit 134) instead of an error.
import type { Engine } from '../backbone/engine.js';

export type RenderView = (out: Float32Array, offset: number) => void;

export class BatchQueue<T> {
  private readonly free: Float32Array[];
  private buf: Float32Array;
  private tags: T[] = [];
  private readonly running = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;
  private readonly viewFloats: number;

  constructor(
    private readonly engine: Engine,
    readonly batch: number,
    private readonly size: number,
    private readonly onBatch: (features: Float32Array, tags: T[]) => void,
  ) {
    this.viewFloats = size * size * 3;
    this.free = Array.from({ length: engine.parallel + 1 }, () => engine.allocInput(batch * this.viewFloats));
    this.buf = this.free.pop()!;
  }

  /** Whether a batch (the engine, or onBatch) has failed: nothing more is sent, and add/send throw. */
  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** Renders one view into the buffer being filled; sends it when full. Resolves when the next view has room. */
  async add(render: RenderView, tag: T): Promise<void> {
    this.throwIfFailed();
    render(this.buf, this.tags.length * this.viewFloats);
    this.tags.push(tag);
    if (this.tags.length === this.batch) await this.send();
  }

  /** Hands the views gathered so far (if any) to the engine; resolves once a buffer is free to fill. */
  async send(): Promise<void> {
    this.throwIfFailed();
    if (this.tags.length === 0) return;
    const input = this.buf;
    const tags = this.tags;
    this.tags = [];
    const p: Promise<void> = this.run(input, tags)
      .catch((e: unknown) => { this.failure ??= { error: e }; })
      .finally(() => { this.running.delete(p); this.free.push(input); });
    this.running.add(p);
    while (this.free.length === 0) await Promise.race(this.running);
    this.buf = this.free.pop()!;
    this.throwIfFailed();
  }

  /** Sends what is gathered and waits for every batch; throws the first failure. */
  async drain(): Promise<void> {
    await this.send();
    await this.settle();
    this.throwIfFailed();
  }

  /** Waits until no batch is in flight, whatever their outcome; never throws. Views not sent stay unsent. */
  async settle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  private async run(input: Float32Array, tags: T[]): Promise<void> {
    const n = tags.length;
    const features = await this.engine.embed(n === this.batch ? input : input.subarray(0, n * this.viewFloats), n, this.size, this.size);
    this.onBatch(features, tags);
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }
}
