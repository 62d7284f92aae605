// `viewprobe predict --run RUN IMAGE...`: eval transform, backbone, the run's best head, softmax,
// top-k per image. An image that cannot be read gets an error line; the others still print.
import type { BackboneArgs } from '../cli.js';
import { UserError, errorMessage } from '../errors.js';
import { log, printJson } from '../log.js';
import { decodeImage } from '../extract/decode.js';
import { headLogits, softmaxRows, type HeadFile } from '../train/head.js';
import { loadRun } from './command.js';
import { openRunBackbone } from './run-backbone.js';

export interface PredictArgs extends Partial<BackboneArgs> {
  run: string;
  images: string[];
  top: number;
  json: boolean;
}

export interface Prediction {
  image: string;
  top?: { label: string; prob: number }[];
  error?: string;
}

/** Exit code when some images could not be read (the others were still classified). */
export const EXIT_SOME_FAILED = 3;

const BATCH = 16;

export function topK(probs: Float32Array, classes: string[], k: number): { label: string; prob: number }[] {
  const idx = Array.from(probs.keys()).sort((a, b) => probs[b]! - probs[a]! || a - b);
  return idx.slice(0, Math.min(k, classes.length)).map((i) => ({ label: classes[i]!, prob: probs[i]! }));
}

export async function runPredict(a: PredictArgs): Promise<number> {
  if (!Number.isInteger(a.top) || a.top < 1) throw new UserError(`--top must be a whole number >= 1 (got ${a.top})`);
  const run = await loadRun(a.run);
  const head: HeadFile = run.head;
  const { bb, preset, norm } = await openRunBackbone(head.fingerprint, head.dim, run.headFile, a, run.cache);
  const size = preset.inputSize;
  const viewFloats = size * size * 3;
  const input = new Float32Array(BATCH * viewFloats);
  const nc = head.classes.length;
  const results: Prediction[] = [];
  let failed = 0;

  const print = (p: Prediction) => {
    if (p.error) log(`${p.image}: error: ${p.error}`);
    else if (!a.json) process.stdout.write(`${p.image}: ${p.top!.map((t) => `${t.label} ${t.prob.toFixed(3)}`).join(', ')}\n`);
  };

  try {
    for (let i = 0; i < a.images.length; i += BATCH) {
      const chunk = a.images.slice(i, i + BATCH);
      // Decode the chunk concurrently (sharp works off the main thread), then one engine batch.
      const decoded = await Promise.all(chunk.map(async (path) => {
        try {
          return await decodeImage(path);
        } catch (e) {
          return e instanceof Error ? e : new Error(String(e));
        }
      }));
      const ok: number[] = [];
      decoded.forEach((d, j) => {
        if (d instanceof Error) return;
        preset.renderEval(preset.evalImage(d), norm, input, ok.length * viewFloats);
        ok.push(j);
      });
      const probs = ok.length
        ? softmaxRows(headLogits(head, await bb.engine.embed(input.subarray(0, ok.length * viewFloats), ok.length, size, size), ok.length), ok.length, nc)
        : new Float32Array(0);
      chunk.forEach((image, j) => {
        const d = decoded[j]!;
        let p: Prediction;
        if (d instanceof Error) {
          failed++;
          p = { image, error: errorMessage(d).split('\n')[0]! };
        } else {
          const row = ok.indexOf(j);
          p = { image, top: topK(probs.subarray(row * nc, (row + 1) * nc), head.classes, a.top) };
        }
        results.push(p);
        print(p);
      });
    }
  } finally {
    await bb.engine.dispose();
  }
  if (a.json) printJson(results);
  return failed > 0 ? EXIT_SOME_FAILED : 0;
}
