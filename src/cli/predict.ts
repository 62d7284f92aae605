// `viewprobe predict --run RUN IMAGE...`: eval transform, backbone, the run's best head, softmax,
// top-k per image. An image that cannot be read gets an error line; the others still print.
import { log, printJson } from '../log.js';
import { embedImages } from '../extract/embed-images.js';
import type { HeadFile } from '../head/file.js';
import { HeadForward } from '../head/forward.js';
import { softmaxRows } from '../head/loss.js';
import { EXIT } from '../exit.js';
import { loadRun } from '../run/run.js';
import type { predictBuilder } from './commands.js';
import type { ArgsOf } from './options.js';
import { openRunBackbone } from '../run/backbone.js';
import { meanOverViews } from '../train/eval-views.js';

export type PredictArgs = ArgsOf<typeof predictBuilder>;

export interface Prediction {
  image: string;
  top?: { label: string; prob: number }[];
  error?: string;
}

export function topK(probs: Float32Array, classes: string[], k: number): { label: string; prob: number }[] {
  const idx = Array.from(probs.keys()).sort((a, b) => probs[b]! - probs[a]! || a - b);
  return idx.slice(0, Math.min(k, classes.length)).map((i) => ({ label: classes[i]!, prob: probs[i]! }));
}

export async function runPredict(a: PredictArgs): Promise<number> {
  const run = await loadRun(a.run);
  const head: HeadFile = run.head;
  const { bb, preset, norm } = await openRunBackbone(head.fingerprint, head.dim, run.headFile, a, run.cache);
  const nc = head.classes.length;
  const forward = new HeadForward(head);
  const results: Prediction[] = [];
  let failed = 0;

  const print = (p: Prediction) => {
    // The error names the file already (decode errors start with it).
    if (p.error) log(`${p.image}: error: ${p.error.startsWith(`${p.image}: `) ? p.error.slice(p.image.length + 2) : p.error}`);
    else if (!a.json) process.stdout.write(`${p.image}: ${p.top!.map((t) => `${t.label} ${t.prob.toFixed(3)}`).join(', ')}\n`);
  };

  try {
    // The preset's test-time views, as the head's cache holds them for val: their logits are averaged.
    const views = 1 + preset.testViews;
    for await (const chunk of embedImages(a.images, { engine: bb.engine, preset, norm, testViews: true })) {
      for (const r of chunk) {
        let p: Prediction;
        if ('error' in r) {
          failed++;
          p = { image: r.path, error: r.error };
        } else {
          const logits = meanOverViews(forward.logits(r.views ?? r.features, views), 1, views, nc);
          p = { image: r.path, top: topK(softmaxRows(logits, 1, nc), head.classes, a.top) };
        }
        results.push(p);
        print(p);
      }
    }
  } finally {
    await bb.engine.dispose();
  }
  if (a.json) printJson(results);
  return failed > 0 ? EXIT.someFailed : 0;
}
