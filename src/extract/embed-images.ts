// The eval-transform features of a list of image files, for `embed` and `predict`: files are decoded
// on sharp's threads, rendered into batch buffers and run with as many batches in flight as the
// engine runs at once, and the results come back in the order of the paths. An image that cannot be
// read gets its error instead of features; the others go on.
import { defaultBatch, type Engine } from './backbone/engine.js';
import { decodeImage } from './decode.js';
import type { NormLut } from './normalize.js';
import type { Preset } from './presets.js';
import { errorMessage } from '../errors.js';

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
  const perImage = 1 + (o.testViews ? preset.testViews : 0);
  // A batch holds whole images: all the views of each.
  const images = Math.max(1, Math.floor(Math.max(1, Math.floor(o.batch ?? defaultBatch(engine))) / perImage));
  const size = preset.inputSize;
  const per = size * size * 3;
  const free = Array.from({ length: engine.parallel + 1 }, () => engine.allocInput(images * perImage * per));

  const runChunk = async (chunk: string[], input: Float32Array): Promise<EmbeddedImage[]> => {
    try {
      const decoded = await Promise.all(chunk.map(async (path) => {
        try {
          return preset.evalImage(await decodeImage(path));
        } catch (e) {
          return new Error(errorMessage(e).split('\n')[0]!);
        }
      }));
      let n = 0;
      for (const img of decoded) {
        if (img instanceof Error) continue;
        preset.renderEval(img, norm, input, n++ * per);
        for (let t = 0; t < perImage - 1; t++) preset.renderTestView(img, t, norm, input, n++ * per);
      }
      const feats = n ? await engine.embed(input.subarray(0, n * per), n, size, size) : new Float32Array(0);
      const d = engine.dim;
      let row = 0;
      return chunk.map((path, i) => {
        const img = decoded[i]!;
        if (img instanceof Error) {
          // Decode errors already start with the file name.
          return { path, error: img.message.startsWith(path) ? img.message : `${path}: ${img.message}` };
        }
        const r = row;
        row += perImage;
        const features = feats.slice(r * d, (r + 1) * d);
        return perImage === 1 ? { path, features } : { path, features, views: feats.slice(r * d, (r + perImage) * d) };
      });
    } finally {
      free.push(input);
    }
  };

  const inFlight: Promise<EmbeddedImage[]>[] = [];
  try {
    for (let i = 0; i < paths.length; i += images) {
      while (free.length === 0) yield await inFlight.shift()!;
      const p = runChunk(paths.slice(i, i + images), free.pop()!);
      // Awaited below in order; this only keeps a failure from being reported as unhandled meanwhile.
      p.catch(() => {});
      inFlight.push(p);
    }
    while (inFlight.length) yield await inFlight.shift()!;
  } finally {
    // A consumer that stops early still waits for the batches it started before the engine goes away.
    await Promise.allSettled(inFlight);
  }
}
