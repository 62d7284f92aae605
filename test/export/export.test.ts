// `viewprobe export` end to end: tiny runs on the random ResNet18 (seed preset, imagenet
// normalisation) and the Keras ResNet50 (standard preset: resize + center crop, caffe BGR), exported,
// then run in onnxruntime-node and onnxruntime-web (wasm) on the eval pixels viewprobe computes, against
// `viewprobe predict`'s probabilities for the same photos.
import { copyFileSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import * as ortNode from 'onnxruntime-node';
import * as ortWeb from 'onnxruntime-web';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Fingerprint } from '../../src/cache/types.js';
import { getPreset, type PresetName } from '../../src/image/presets.js';
import { readModelSidecar, type ModelSidecar } from '../../src/export/sidecar.js';
import { runCli } from '../helpers/cli.js';
import { describeShared, sharedPath } from '../helpers/shared.js';
import { REF_PHOTOS, TINY_VAL, cli, evalPixels, makeRun as makeRunIn, maxDiff, predictProbs, runModel } from './helpers.js';

ortWeb.env.wasm.numThreads = 1;

const tmp = mkdtempSync(join(tmpdir(), 'vp-export-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const NEEDS = ['data/tiny/train.txt', 'data/tiny/val.txt', 'weights/resnet18-random.safetensors', 'weights/resnet50-keras.safetensors', 'weights/ref-dog.jpg'];

/** A tiny run in this file's temporary folder. */
const makeRun = (name: string, weights: string, preset: PresetName) => makeRunIn(tmp, name, weights, preset);

describeShared('viewprobe export', NEEDS, () => {
  const cases: { name: string; weights: string; preset: PresetName }[] = [
    { name: 'resnet18-random, seed preset', weights: sharedPath('weights/resnet18-random.safetensors'), preset: 'seed' },
    { name: 'resnet50-keras, standard preset', weights: sharedPath('weights/resnet50-keras.safetensors'), preset: 'standard' },
  ];
  for (const [k, c] of cases.entries()) {
    describe(c.name, () => {
      let run: string;
      let model: Uint8Array;
      let side: ModelSidecar;
      let want: Map<string, number>[];
      let pixels: Uint8Array;
      const images = [...REF_PHOTOS, ...TINY_VAL];
      const size = getPreset(c.preset).inputSize;

      beforeAll(async () => {
        ({ run } = makeRun(`e${k}`, c.weights, c.preset));
        const out = join(tmp, `export-${k}`, 'model.onnx');
        const r = cli(['export', '--run', run, '--out', out, '--json']);
        const j = JSON.parse(r.stdout) as { model: string; sidecar: string; bytes: number };
        expect(j.sidecar).toBe(join(tmp, `export-${k}`, 'model.json'));
        model = readFileSync(out);
        side = await readModelSidecar(j.sidecar);
        want = predictProbs(run, side.classes.length, images);
        pixels = await evalPixels(c.preset, images);
      });

      it('model.json: the run\'s class names in order, the input, the eval transform, the weights and the model file\'s own hash', () => {
        const opts = JSON.parse(readFileSync(join(run, 'options.json'), 'utf8')) as { classes: string[]; fingerprint: { weightsSha256: string } };
        expect(side.classes).toEqual(opts.classes);
        expect(side).toMatchObject({ format: 'viewprobe-model', version: 2 }); // 2: testTimeViews as data, features, model.calibration
        expect(side.input).toMatchObject({ name: 'image', dtype: 'uint8', shape: ['N', size, size, 3], channels: 'RGB' });
        expect(side.outputs.map((o) => o.name)).toEqual(['probabilities', 'logits', 'features']);
        expect(side.transform.resize).toMatchObject(c.preset === 'seed' ? { kind: 'exact', width: 244, height: 244 } : { kind: 'shorter', size: 256 });
        expect(side.transform.crop?.size ?? null).toBe(c.preset === 'seed' ? null : 224);
        expect(side.normalization.networkChannels).toBe(c.preset === 'seed' ? 'RGB' : 'BGR');
        expect(side.backbone.weightsSha256).toBe(opts.fingerprint.weightsSha256);
        expect(side.model.bytes).toBe(model.byteLength);
        expect(side.model.sha256).toBe(createHash('sha256').update(model).digest('hex'));
        expect(side.accuracy.best.valAcc).toBeGreaterThanOrEqual(0);
        expect(side.testTimeViews).toBeNull();
        expect(side.model).toMatchObject({ precision: 'fp32', calibration: null });
        expect(side.features).toMatchObject({ pool: ['avg'], layers: [4], dim: side.backbone.dim, what: 'avg of layer4, concatenated in this order' });
      });

      it('metadata_props carry the same facts (class names round-trip), and the graph has a dynamic batch', () => {
        const m = onnxProto.onnx.ModelProto.decode(model);
        const meta = new Map(m.metadataProps!.map((p) => [p.key!, p.value!]));
        expect(JSON.parse(meta.get('classes')!)).toEqual(side.classes);
        expect(JSON.parse(meta.get('transform')!)).toEqual(side.transform);
        expect(JSON.parse(meta.get('fingerprint')!)).toEqual(side.fingerprint);
        expect(meta.get('viewprobe')).toBe(side.viewprobe);
        const input = m.graph!.input![0]!;
        expect(input.name).toBe('image');
        expect(input.type!.tensorType!.elemType).toBe(onnxProto.onnx.TensorProto.DataType.UINT8);
        expect(input.type!.tensorType!.shape!.dim!.map((d) => d.dimParam || Number(d.dimValue))).toEqual(['N', size, size, 3]);
        expect(m.opsetImport!.map((o) => [o.domain, Number(o.version)])).toEqual([['', 13]]);
      });

      it(`onnxruntime-node on viewprobe's eval pixels gives predict's probabilities within 1e-5 (3 reference photos + ${TINY_VAL.length} tiny val photos)`, async () => {
        const got = await runModel(ortNode, model, pixels, images.length, size);
        const d = maxDiff(got, want, side.classes);
        expect(d).toBeLessThan(1e-5);
        console.log(`${c.name}: onnxruntime-node vs predict, max |Δp| = ${d.toExponential(2)} over ${images.length} photos`);
      });

      it('onnxruntime-web (wasm, in Node) gives them within 1e-4', async () => {
        // resnet50 on one wasm thread is slow; the reference photos and 3 tiny ones make the point
        const n = c.preset === 'seed' ? images.length : 6;
        const got = await runModel(ortWeb, model, pixels.subarray(0, n * size * size * 3), n, size);
        const d = maxDiff(got, want.slice(0, n), side.classes);
        expect(d).toBeLessThan(1e-4);
        console.log(`${c.name}: onnxruntime-web (wasm) vs predict, max |Δp| = ${d.toExponential(2)} over ${n} photos`);
      });
    });
  }

  describe('a sweep run whose head carries a feature transform', () => {
    // On the random ResNet18's raw features the seed recipe stays at chance (its lr is far too small for
    // their scale), so the transformed L-BFGS trial wins by a wide margin and becomes the run's head.
    let cache: string;
    beforeAll(() => {
      cache = join(tmp, 'cache-sweep');
      cli(['extract', '--train', sharedPath('data/tiny/train.txt'), '--val', sharedPath('data/tiny/val.txt'), '--cache', cache,
        '--weights', sharedPath('weights/resnet18-random.safetensors'), '--views', '1', '--engine', 'onnx']);
    });
    const cases = [
      { transform: 'power+l2', inHead: { power: 0.5, l2: true } },
      // standardisation is folded into W and b when the head is saved: only the power is left in the file
      { transform: 'power+std', inHead: { power: 0.5 } },
    ];
    for (const c of cases) {
      it(`${c.transform}: the exported model gives predict's probabilities within 1e-5 (onnxruntime-node)`, async () => {
        const run = join(tmp, `run-sweep-${c.transform}`);
        cli(['sweep', '--cache', cache, '--out', run, '--grid', `solver=lbfgs;transform=${c.transform};l2=1e-2`, '--workers', '1']);
        const sw = JSON.parse(readFileSync(join(run, 'sweep.json'), 'utf8')) as { winner: number; trials: { spec: { transform: string } }[] };
        expect(sw.trials[sw.winner]!.spec.transform, 'the transformed trial must win for this test to mean anything').toBe(c.transform);
        const head = JSON.parse(readFileSync(join(run, 'head-best.json'), 'utf8')) as { transform?: unknown };
        expect(head.transform).toEqual(c.inHead);
        const out = join(tmp, `export-sweep-${c.transform}`, 'model.onnx');
        cli(['export', '--run', run, '--out', out]);
        const side = await readModelSidecar(join(tmp, `export-sweep-${c.transform}`, 'model.json'));
        expect(side.head.transform).toEqual(c.inHead);
        const images = [...REF_PHOTOS, ...TINY_VAL];
        const want = predictProbs(run, side.classes.length, images);
        const got = await runModel(ortNode, readFileSync(out), await evalPixels('seed', images), images.length, 244);
        const d = maxDiff(got, want, side.classes);
        expect(d).toBeLessThan(1e-5);
        console.log(`sweep run (${c.transform}): onnxruntime-node vs predict, max |Δp| = ${d.toExponential(2)} over ${images.length} photos`);
      });
    }

    it('a run chosen by cross-validation says so in model.json (its CV score, no val figure)', async () => {
      const run = join(tmp, 'run-sweep-cv');
      cli(['sweep', '--cache', cache, '--out', run, '--grid', 'solver=lbfgs;transform=power+l2;l2=1e-2', '--select', 'cv', '--folds', '3', '--workers', '1']);
      const sw = JSON.parse(readFileSync(join(run, 'sweep.json'), 'utf8')) as { winner: number; trials: { score: number }[] };
      const out = join(tmp, 'export-sweep-cv', 'model.onnx');
      cli(['export', '--run', run, '--out', out]);
      const side = await readModelSidecar(join(tmp, 'export-sweep-cv', 'model.json'));
      expect(side.accuracy).toMatchObject({ split: 'cv', images: null, valAcc: sw.trials[sw.winner]!.score });
      expect(side.accuracy.note).toMatch(/^3-fold cross-validated accuracy on the training split .*no val split took part/);
    });
  });

  describe('refusals', () => {
    let run: string;
    const w = join(tmp, 'copy-of-resnet18.safetensors');
    beforeAll(() => {
      copyFileSync(sharedPath('weights/resnet18-random.safetensors'), w);
      ({ run } = makeRun('refuse', w, 'seed'));
    });

    it('an existing --out is never overwritten without --force', () => {
      const out = join(tmp, 'refuse', 'model.onnx');
      cli(['export', '--run', run, '--out', out]);
      const before = readFileSync(out);
      const r = runCli(['export', '--run', run, '--out', out]);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/model\.onnx exists; pass --force to replace it/);
      expect(readFileSync(out).equals(before)).toBe(true);
      rmSync(out);
      const r2 = runCli(['export', '--run', run, '--out', out]);
      expect(r2.status).toBe(2); // model.json is still there
      expect(r2.stderr).toMatch(/model\.json exists/);
      cli(['export', '--run', run, '--out', out, '--force']);
      expect(readFileSync(out).equals(before), 'the same run exports to the same bytes').toBe(true);
    });

    it('refuses weights that differ from the run\'s (sha256), and a --weights file that does not exist', () => {
      const r = runCli(['export', '--run', run, '--out', join(tmp, 'x', 'm.onnx'), '--weights', sharedPath('weights/resnet50-keras.safetensors')]);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/weights .*resnet50-keras\.safetensors \(sha256 b2c5519e0f92…\) are not the ones .*head-best\.json was trained on \(sha256 7c8b3835feb4…\)/);
      const r2 = runCli(['export', '--run', run, '--out', join(tmp, 'x', 'm.onnx'), '--weights', join(tmp, 'nope.safetensors')]);
      expect(r2.status).toBe(2);
      expect(r2.stderr).toMatch(/nope\.safetensors: cannot read weights: no such file/);
      expect(existsSync(join(tmp, 'x', 'm.onnx'))).toBe(false);
    });

    it('refuses a run whose recorded weights file is missing, naming it', () => {
      rmSync(w);
      // an offline URL: if anything tried the default download, the message would say so instead
      const r = runCli(['export', '--run', run, '--out', join(tmp, 'y', 'm.onnx')],
        { VIEWPROBE_HOME: join(tmp, 'home'), VIEWPROBE_WEIGHTS_URL: 'http://127.0.0.1:9/none.safetensors' });
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/the backbone weights this run was trained on are gone: .*copy-of-resnet18\.safetensors \(recorded in .*weights\.json\); pass that file, or one with sha256 7c8b3835feb4…, with --weights FILE/);
      expect(r.stderr).not.toMatch(/download/);
      expect(existsSync(join(tmp, 'y', 'm.onnx'))).toBe(false);
    });
  });

  describe('head file conventions', () => {
    it('a head with a feature transform exports it; augmented views of val in the cache are not test-time views', async () => {
      const { run, cache } = makeRun('tta', sharedPath('weights/resnet18-random.safetensors'), 'seed');
      // the sweep's convention: transform applied to the features before the linear layer
      const head = JSON.parse(readFileSync(join(run, 'head-best.json'), 'utf8')) as Record<string, unknown>;
      writeFileSync(join(run, 'head-best.json'), JSON.stringify({ ...head, transform: { power: 0.5, l2: true } }));
      // Augmented views of the val images in the run's cache: eval and predict never average them (they
      // average the preset's test-time views, which the seed preset has none of), so model.json must not
      // tell anyone to (it once did, reading the cache's augmented val views).
      const [{ openBackbone }, { FeatureCache }, { extractFeatures }, { loadDataset }, { makeNormLut }] = await Promise.all([
        import('../../src/backbone/index.js'), import('../../src/cache/store.js'), import('../../src/extract/pipeline.js'),
        import('../../src/data/dataset.js'), import('../../src/image/normalize.js')]);
      const bb = await openBackbone({ weights: sharedPath('weights/resnet18-random.safetensors'), engine: 'onnx', threads: 2, quiet: true });
      const fc = await FeatureCache.open(cache, { exclusive: true });
      try {
        const val = await loadDataset(sharedPath('data/tiny/val.txt'));
        await fc.ensureFingerprint(head.fingerprint as Fingerprint, val.classes);
        await extractFeatures([{ split: 'val', items: val.items, views: 2, clean: true }],
          { engine: bb.engine, norm: makeNormLut(bb.preprocess), preset: getPreset('seed'), cache: fc, seed: 0, batch: 8 });
      } finally {
        await fc.close();
        await bb.engine.dispose();
      }
      const out = join(tmp, 'tta', 'model.onnx');
      cli(['export', '--run', run, '--out', out]);
      const side = await readModelSidecar(join(tmp, 'tta', 'model.json'));
      expect(side.head.transform).toEqual({ power: 0.5, l2: true });
      expect(side.testTimeViews).toBeNull();
      const ops = new Set(onnxProto.onnx.ModelProto.decode(readFileSync(out)).graph!.node!.map((n) => n.opType));
      for (const op of ['Abs', 'Pow', 'Sign', 'ReduceL2']) expect(ops.has(op), op).toBe(true);
    });
  });

  it('a copy of the run elsewhere exports with --weights; class names with spaces, quotes and accents round-trip', async () => {
    const run = join(tmp, 'run-e0'); // the resnet18 run exported above
    const moved = join(tmp, 'moved-run');
    cpSync(run, moved, { recursive: true });
    const names = ['crème brûlée', 'say "cheese"', '寿司 / sushi'];
    for (const f of ['head-best.json', 'options.json']) {
      const j = JSON.parse(readFileSync(join(moved, f), 'utf8')) as Record<string, unknown>;
      writeFileSync(join(moved, f), JSON.stringify({ ...j, classes: names }));
    }
    const out = join(tmp, 'names', 'classifier.onnx');
    cli(['export', '--run', moved, '--out', out, '--weights', sharedPath('weights/resnet18-random.safetensors')]);
    expect((await readModelSidecar(join(tmp, 'names', 'classifier.json'))).classes).toEqual(names);
    const meta = onnxProto.onnx.ModelProto.decode(readFileSync(out)).metadataProps!;
    expect(JSON.parse(meta.find((p) => p.key === 'classes')!.value!)).toEqual(names);
  });
});
