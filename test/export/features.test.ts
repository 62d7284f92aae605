// `viewprobe export` of runs whose features are not the default average pool of layer4 (--pool gem,
// --layers 4,3), and of a probe-preset run, whose predict and eval average the mirrored eval view with
// the eval view: model.json's recipe for it, followed to the letter, gives predict's probabilities.
// Tiny data, the random ResNet18.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ortNode from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FeatureCache } from '../../src/cache/store.js';
import { readModelSidecar, type ModelSidecar } from '../../src/export/sidecar.js';
import { describeShared, sharedPath } from '../helpers/shared.js';
import { REF_PHOTOS, TINY_VAL, cli, evalPixels, makeRun, maxDiff, predictProbs, runModelOutputs } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'vp-export-features-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const NEEDS = ['data/tiny/train.txt', 'data/tiny/val.txt', 'weights/resnet18-random.safetensors', 'weights/ref-dog.jpg'];
const images = [...REF_PHOTOS, ...TINY_VAL];

async function exportRun(name: string, run: string): Promise<{ model: Uint8Array; side: ModelSidecar }> {
  const out = join(tmp, `export-${name}`, 'model.onnx');
  cli(['export', '--run', run, '--out', out]);
  return { model: readFileSync(out), side: await readModelSidecar(join(tmp, `export-${name}`, 'model.json')) };
}

/** Softmax of each row of n x c logits, in float64. */
function softmax(z: Float64Array, n: number, c: number): Float32Array {
  const out = new Float32Array(n * c);
  for (let i = 0; i < n; i++) {
    const row = z.subarray(i * c, (i + 1) * c);
    const m = Math.max(...row);
    const e = Array.from(row, (v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    e.forEach((v, j) => { out[i * c + j] = v / s; });
  }
  return out;
}

/** One [1, size, size, 3] uint8 NHWC image with `axis` (1 height, 2 width, 3 channels) reversed, as numpy's x[:, :, ::-1, :] for axis 2. */
function flipNhwc(img: Uint8Array, size: number, axis: number): Uint8Array {
  const out = new Uint8Array(img.length);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      for (let ch = 0; ch < 3; ch++) {
        const [ty, tx, tc] = [axis === 1 ? size - 1 - y : y, axis === 2 ? size - 1 - x : x, axis === 3 ? 2 - ch : ch];
        out[(ty * size + tx) * 3 + tc] = img[(y * size + x) * 3 + ch]!;
      }
    }
  }
  return out;
}

describeShared('viewprobe export: pooled features and test-time views', NEEDS, () => {
  const weights = sharedPath('weights/resnet18-random.safetensors');

  const cases = [
    { name: 'gem', extract: ['--pool', 'gem'], features: { pool: ['gem3'], layers: [4], dim: 512 }, what: /^gem3 of layer4, concatenated in this order \(gemP: / },
    { name: 'layers-4-3', extract: ['--layers', '4,3'], features: { pool: ['avg'], layers: [4, 3], dim: 512 + 256 }, what: /^avg of layer4 and layer3, concatenated in this order$/ },
  ];
  for (const c of cases) {
    it(`a ${c.extract.join(' ')} run: model.json describes its features, and the model gives predict's probabilities within 1e-5`, async () => {
      const { run } = makeRun(tmp, c.name, weights, 'seed', c.extract);
      const { model, side } = await exportRun(c.name, run);
      expect(side.features).toMatchObject(c.features);
      expect(side.features.what).toMatch(c.what);
      expect(side.outputs.find((o) => o.name === 'features')!.shape).toEqual(['N', c.features.dim]);
      const got = await runModelOutputs(ortNode, model, await evalPixels('seed', images), images.length, 244);
      expect(got.features!.length).toBe(images.length * c.features.dim);
      const d = maxDiff(got.probabilities!, predictProbs(run, side.classes.length, images), side.classes);
      console.log(`${c.name} run: onnxruntime-node vs predict, max |Δp| = ${d.toExponential(2)} over ${images.length} photos`);
      expect(d).toBeLessThan(1e-5);
    });
  }

  describe('a probe-preset run (the mirrored eval view as a test-time view)', () => {
    let run: string;
    let cache: string;
    let model: Uint8Array;
    let side: ModelSidecar;
    beforeAll(async () => {
      ({ run, cache } = makeRun(tmp, 'probe', weights, 'probe'));
      ({ model, side } = await exportRun('probe', run));
    });

    it('model.json says: 2 views, the eval view and its left-right mirror; average the logits, then softmax', async () => {
      expect(side.testTimeViews).toMatchObject({ views: 2 });
      // as data a program can act on (reverse axis 2 of the NHWC input), with the words beside it
      expect(side.testTimeViews!.extra).toEqual([{ op: 'flip', axis: 2, what: expect.stringMatching(/mirrored left to right.*reverse the width axis, axis 2 of the NHWC input/) }]);
      expect(side.testTimeViews!.how).toMatch(/run the 2 views of an image through the model \(one batch\), average their `logits` rows, then take the softmax/);
      // The run's val accuracy was scored the same way: its cache holds the mirrored view of every val image.
      const fc = await FeatureCache.open(cache, { readOnly: true });
      try {
        const val = fc.readSplit('val');
        expect(val.ttaViews).toBe(1);
        expect(val.views).toBe(0); // and no augmented val views: those were what model.json used to count
      } finally {
        await fc.close();
      }
    });

    it('following it on viewprobe\'s eval pixels gives predict\'s probabilities within 1e-5; the eval view alone does not', async () => {
      const n = images.length;
      const size = side.input.shape[1] as number;
      const pixels = await evalPixels('probe', images);
      // The recipe, read from model.json's data as a Python or JS caller would (never its words):
      // [image i, then each extra view of image i] for each i, one batch; a flip reverses that NHWC axis.
      const extra = side.testTimeViews!.extra;
      expect(extra.map((v) => v.op)).toEqual(['flip']);
      const both = new Uint8Array(2 * pixels.length);
      const per = size * size * 3;
      for (let i = 0; i < n; i++) {
        const src = pixels.subarray(i * per, (i + 1) * per);
        both.set(src, 2 * i * per);
        both.set(flipNhwc(src, size, extra[0]!.axis), (2 * i + 1) * per);
      }
      const r = await runModelOutputs(ortNode, model, both, 2 * n, size);
      const c = side.classes.length;
      const mean = new Float64Array(n * c);
      for (let i = 0; i < n; i++) for (let j = 0; j < c; j++) mean[i * c + j] = (r.logits![2 * i * c + j]! + r.logits![(2 * i + 1) * c + j]!) / 2;
      const want = predictProbs(run, c, images);
      const d = maxDiff(softmax(mean, n, c), want, side.classes);
      const single = await runModelOutputs(ortNode, model, pixels, n, size);
      const d1 = maxDiff(single.probabilities!, want, side.classes);
      console.log(`probe run: model.json's 2-view recipe vs predict, max |Δp| = ${d.toExponential(2)}; the eval view alone: ${d1.toExponential(2)} (${n} photos)`);
      expect(d).toBeLessThan(1e-5);
      expect(d1).toBeGreaterThan(1e-3);
    });
  });
});
