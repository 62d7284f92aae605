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

/**
 * `features` is the clean view's; with `testViews`, `views` holds the clean view then the preset's
 * test-time views (1 + preset.testViews rows of engine.dim floats).
 */
export type EmbeddedImage = { path: string; features: Float32Array; views?: Float32Array } | { path: string; error: string };

/** Yields the images of each batch, in the order of `paths`. */
export async function* embedImages(
  paths: string[], o: { engine: Engine; preset: Preset; norm: NormLut; batch?: number; testViews?: boolean },
): AsyncGenerator<EmbeddedImage[]> {
  const { engine, preset, norm } = o;
  const batch = Math.max(1, Math.floor(o.batch ?? defaultBatch(engine)));
  const results: (EmbeddedImage | undefined)[] = Array.from({ length: paths.length }, () => undefined);
  // With test-time views an image has several rows (the clean view first); it is done when all are in.
  const perImage = 1 + (o.testViews ? preset.testViews : 0);
  const d = engine.dim;
  const partial = new Map<number, { rows: Float32Array; left: number }>();
  const queue = new BatchQueue<[image: number, view: number]>(engine, batch, preset.inputSize, (features, slots) => {
    slots.forEach(([k, v], i) => {
      const row = features.subarray(i * d, (i + 1) * d);
      if (perImage === 1) { results[k] = { path: paths[k]!, features: row.slice() }; return; }
      let p = partial.get(k);
      if (!p) partial.set(k, (p = { rows: new Float32Array(perImage * d), left: perImage }));
      p.rows.set(row, v * d);
      if (--p.left === 0) {
        partial.delete(k);
        results[k] = { path: paths[k]!, features: p.rows.slice(0, d), views: p.rows };
      }
    });
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
        else {
          await queue.add((out, off) => preset.renderEval(img, norm, out, off), [start + i, 0]);
          for (let t = 0; t < perImage - 1; t++) await queue.add((out, off) => preset.renderTestView(img, t, norm, out, off), [start + i, t + 1]);
        }
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
