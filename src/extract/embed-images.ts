// The eval-transform features of a list of image files, for `embed` and `predict`: each batch of files
// is decoded on sharp's threads and rendered into the batch queue extract uses (batch-queue.ts), with
// as many batches in flight as the engine runs at once; results come back in the order of the paths.
// An image that cannot be read gets its error instead of features; the others go on.
import { defaultBatch, type Engine } from '../backbone/engine.js';
import { decodeImage } from '../image/decode.js';
import type { NormLut } from '../image/normalize.js';
import type { Preset } from '../image/presets.js';
import { BatchQueue } from './batch-queue.js';
import { failureReason } from './pipeline.js';

export type EmbeddedImage = { path: string; features: Float32Array } | { path: string; error: string };

/** Yields the images of each batch, in the order of `paths`. */
export async function* embedImages(
  paths: string[], o: { engine: Engine; preset: Preset; norm: NormLut; batch?: number },
): AsyncGenerator<EmbeddedImage[]> {
  const { engine, preset, norm } = o;
  const batch = Math.max(1, Math.floor(o.batch ?? defaultBatch(engine)));
  const results: (EmbeddedImage | undefined)[] = Array.from({ length: paths.length }, () => undefined);
  const queue = new BatchQueue<number>(engine, batch, preset.inputSize, (features, indices) => {
    indices.forEach((k, i) => { results[k] = { path: paths[k]!, features: features.slice(i * engine.dim, (i + 1) * engine.dim) }; });
  });
  // Batches are the slices [start, start + batch) of the paths: a slice is yielded once all of it is in.
  let nextYield = 0;
  const ready = function* () {
    for (; nextYield < paths.length; nextYield += batch) {
      const slice = results.slice(nextYield, nextYield + batch);
      if (slice.some((r) => r === undefined)) return;
      yield slice as EmbeddedImage[];
    }
  };
  // Never rejects: a file that cannot be read gets its error.
  const decodeChunk = (start: number) => Promise.all(paths.slice(start, start + batch).map(async (path) => {
    try {
      return preset.evalImage(await decodeImage(path));
    } catch (e) {
      return { error: failureReason(path, e) };
    }
  }));
  // The next batch's files decode while this one is rendered and waits for a free buffer.
  let next = paths.length > 0 ? decodeChunk(0) : undefined;
  try {
    for (let start = 0; start < paths.length; start += batch) {
      const chunk = paths.slice(start, start + batch);
      const decoded = await next!;
      next = start + batch < paths.length ? decodeChunk(start + batch) : undefined;
          for (let i = 0; i < chunk.length; i++) {
        const img = decoded[i]!;
        if ('error' in img) results[start + i] = { path: chunk[i]!, error: img.error };
        else await queue.add((out, off) => preset.renderEval(img, norm, out, off), start + i);
      }
      await queue.send();
      yield* ready();
    }
    await queue.drain();
    yield* ready();
  } finally {
    // A consumer that stops early still waits for the batches it started before the engine goes away.
    await queue.settle();
  }
}
