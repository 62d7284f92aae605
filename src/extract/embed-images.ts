// The eval-transform features of a list of image files, for `embed` and `predict`: files are decoded
// on sharp's threads, rendered into batch buffers and run with as many batches in flight as the
// engine runs at once, and the results come back in the order of the paths. An image that cannot be
// read gets its error instead of features; the others go on.
import { defaultBatch, type Engine } from '../backbone/engine.js';
import { decodeImage } from '../image/decode.js';
import type { NormLut } from '../image/normalize.js';
import type { Preset } from '../image/presets.js';
import { errorMessage } from '../errors.js';

export type EmbeddedImage = { path: string; features: Float32Array } | { path: string; error: string };

/** Yields the images of each batch, in the order of `paths`. */
export async function* embedImages(
  paths: string[], o: { engine: Engine; preset: Preset; norm: NormLut; batch?: number },
): AsyncGenerator<EmbeddedImage[]> {
  const { engine, preset, norm } = o;
  const batch = Math.max(1, Math.floor(o.batch ?? defaultBatch(engine)));
  const size = preset.inputSize;
  const per = size * size * 3;
  const free = Array.from({ length: engine.parallel + 1 }, () => engine.allocInput(batch * per));

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
      for (const img of decoded) if (!(img instanceof Error)) preset.renderEval(img, norm, input, n++ * per);
      const feats = n ? await engine.embed(input.subarray(0, n * per), n, size, size) : new Float32Array(0);
      let row = 0;
      return chunk.map((path, i) => {
        const img = decoded[i]!;
        if (img instanceof Error) {
          // Decode errors already start with the file name.
          return { path, error: img.message.startsWith(path) ? img.message : `${path}: ${img.message}` };
        }
        const r = row++;
        return { path, features: feats.slice(r * engine.dim, (r + 1) * engine.dim) };
      });
    } finally {
      free.push(input);
    }
  };

  const inFlight: Promise<EmbeddedImage[]>[] = [];
  try {
    for (let i = 0; i < paths.length; i += batch) {
      while (free.length === 0) yield await inFlight.shift()!;
      const p = runChunk(paths.slice(i, i + batch), free.pop()!);
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
