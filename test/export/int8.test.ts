// `viewprobe export` of int8 runs: the exported backbone is the engine's own QDQ graph (one pass,
// backbone/quantize.ts quantizeBackbone) with the run's calibration, behind the in-graph
// normalisation. Tiny data, the random ResNet18, an int8 cache calibrated on 8 images (as
// test/extract/precision.test.ts makes one).
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import * as ortNode from 'onnxruntime-node';
import * as ortWeb from 'onnxruntime-web';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { calibrationHash, readCalibration } from '../../src/cache/calibration.js';
import { FeatureCache } from '../../src/cache/store.js';
import { readModelSidecar, type ModelSidecar } from '../../src/export/sidecar.js';
import { runCli } from '../helpers/cli.js';
import { describeShared, sharedPath } from '../helpers/shared.js';
import { REF_PHOTOS, TINY_VAL, cli, evalPixels, makeRun, maxDiff, optimizedOps, predictProbs, runModel, runModelOutputs } from './helpers.js';

ortWeb.env.wasm.numThreads = 1;

const tmp = mkdtempSync(join(tmpdir(), 'vp-export-int8-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const NEEDS = ['data/tiny/train.txt', 'data/tiny/val.txt', 'weights/resnet18-random.safetensors', 'weights/ref-dog.jpg'];
const INT8 = ['--precision', 'int8', '--calibration-images', '8'];

/**
 * Exported int8 model vs `predict --precision int8`: the same QDQ backbone on the same float32 input
 * (the in-graph normalisation equals the engine's tables bit for bit), so the integer kernels see the
 * same uint8 tensors and the features are bit for bit the engine's (checked below against the cache).
 * What is left is the head's float32 arithmetic (onnxruntime's Gemm + Softmax vs predict's head):
 * measured 4.8e-7 on these 15 photos, as the fp32 export's 3.6e-7.
 */
const TOL = 1e-5;

describeShared('viewprobe export of int8 runs', NEEDS, () => {
  const weights = sharedPath('weights/resnet18-random.safetensors');
  const images = [...REF_PHOTOS, ...TINY_VAL];
  let int8: { cache: string; run: string };
  let model: Uint8Array;
  let side: ModelSidecar;
  let pixels: Uint8Array;

  beforeAll(async () => {
    int8 = makeRun(tmp, 'int8', weights, 'seed', INT8);
    const out = join(tmp, 'int8', 'model.onnx');
    const r = cli(['export', '--run', int8.run, '--out', out]); // no --precision: the run's
    expect(r.stderr).toMatch(/Wrote .*model\.onnx \([\d.]+ MB, int8 \(calibration [0-9a-f]{12}…\), resnet18/);
    model = readFileSync(out);
    side = await readModelSidecar(join(tmp, 'int8', 'model.json'));
    pixels = await evalPixels('seed', images);
  });

  it('follows the run\'s precision: int8 with its cache\'s calibration, named in model.json and metadata_props', () => {
    const cal = readCalibration(int8.cache);
    expect(side.fingerprint.precision).toBe('int8');
    expect(side.model.precision).toBe('int8');
    expect(side.model.calibration).toEqual({ sha256: calibrationHash(cal), method: 'percentile:99.999', images: 8 });
    expect(side.model.calibration!.sha256).toBe(side.fingerprint.calibration);
    expect(side.accuracy.note).not.toMatch(/measured on/);
    const meta = new Map(onnxProto.onnx.ModelProto.decode(model).metadataProps!.map((p) => [p.key!, p.value!]));
    expect(JSON.parse(meta.get('model')!)).toEqual({ precision: 'int8', opset: 13, calibration: side.model.calibration });
  });

  it(`onnxruntime-node gives predict's int8 probabilities within ${TOL}, and the cache's int8 features exactly`, async () => {
    const got = await runModelOutputs(ortNode, model, pixels, images.length, 244);
    const want = predictProbs(int8.run, side.classes.length, images);
    const d = maxDiff(got.probabilities!, want, side.classes);
    // Not the fp32 graph by mistake: fp32 features give visibly other probabilities.
    const d32 = maxDiff(got.probabilities!, predictProbs(int8.run, side.classes.length, images, ['--precision', 'fp32']), side.classes);
    console.log(`int8 export vs predict (int8): max |Δp| = ${d.toExponential(2)}; vs predict --precision fp32: ${d32.toExponential(2)} (${images.length} photos)`);
    expect(d).toBeLessThan(TOL);
    expect(d32).toBeGreaterThan(100 * TOL);

    // The val images' clean features in the cache came from extract's int8 engine: the exported graph
    // makes the same ones (integer kernels, same uint8 inputs).
    const cache = await FeatureCache.open(int8.cache, { readOnly: true });
    let val;
    try {
      val = cache.readSplit('val');
    } finally {
      await cache.close();
    }
    const dim = side.features.dim;
    let worst = 0;
    TINY_VAL.forEach((path, i) => {
      const row = val.paths.indexOf(path);
      expect(row, path).toBeGreaterThanOrEqual(0);
      for (let j = 0; j < dim; j++) {
        worst = Math.max(worst, Math.abs(got.features![(REF_PHOTOS.length + i) * dim + j]! - val.clean![row * dim + j]!));
      }
    });
    console.log(`int8 export features vs the int8 cache's clean val features: max |Δ| = ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-5);
  });

  it('onnxruntime-web (wasm) runs it too, but not to the bit: its int8 arithmetic rounds otherwise', async () => {
    // Measured here: max |Δp| 1.2e-2 on these 15 photos (on 6 of them the features differ by at most
    // 0.13 of values up to 27), against 5.3e-2 between int8 and fp32 features. Why the wasm build
    // rounds otherwise (unfused QDQ, or its own int8 kernels) was not looked into; the README says so.
    const got = await runModel(ortWeb, model, pixels, images.length, 244);
    const d = maxDiff(got, predictProbs(int8.run, side.classes.length, images), side.classes);
    console.log(`int8 export in onnxruntime-web (wasm) vs predict (int8): max |Δp| = ${d.toExponential(2)} (${images.length} photos)`);
    expect(d).toBeLessThan(3e-2);
  });

  it('onnxruntime fuses the exported backbone completely: QLinearConv, QLinearAdd, uint8 MaxPool, no float Conv', async () => {
    const ops = await optimizedOps(model, join(tmp, 'int8-optimized.onnx'));
    expect(ops).toMatchObject({ QLinearConv: 20, QLinearAdd: 8, NhwcMaxPool: 1, Gemm: 1, Softmax: 1 });
    expect(ops.Conv).toBeUndefined();
    expect(ops.Add).toBeUndefined();
    // Quantised once after the normalisation, dequantised once after the last block (as the engine's graph).
    expect([ops.QuantizeLinear, ops.DequantizeLinear]).toEqual([1, 1]);
  });

  it('--precision fp32 exports an int8 run\'s head on fp32 features, as predict --precision fp32 runs it, and says so', async () => {
    const out = join(tmp, 'int8-as-fp32', 'model.onnx');
    cli(['export', '--run', int8.run, '--out', out, '--precision', 'fp32']);
    const s = await readModelSidecar(join(tmp, 'int8-as-fp32', 'model.json'));
    expect(s.model).toMatchObject({ precision: 'fp32', calibration: null });
    expect(s.accuracy.note).toMatch(/measured on the run's int8 features, while this model computes fp32 ones/);
    const bytes = readFileSync(out);
    expect(onnxProto.onnx.ModelProto.decode(bytes).graph!.node!.some((n) => n.opType === 'QuantizeLinear')).toBe(false);
    const d = maxDiff(await runModel(ortNode, bytes, pixels, images.length, 244),
      predictProbs(int8.run, s.classes.length, images, ['--precision', 'fp32']), s.classes);
    expect(d).toBeLessThan(1e-5);
  });

  it('an int8 run exported with another calibration says so in model.json', async () => {
    // The run's own calibration with one activation range widened: another file, another sha256.
    const cal = JSON.parse(readFileSync(join(int8.cache, 'calibration.json'), 'utf8')) as { ranges: Record<string, [number, number]> };
    const first = Object.keys(cal.ranges)[0]!;
    cal.ranges[first] = [cal.ranges[first]![0], cal.ranges[first]![1] * 2];
    const other = join(tmp, 'other-calibration.json');
    writeFileSync(other, JSON.stringify(cal));
    const out = join(tmp, 'int8-other-cal', 'model.onnx');
    cli(['export', '--run', int8.run, '--out', out, '--calibration', other]);
    const s = await readModelSidecar(join(tmp, 'int8-other-cal', 'model.json'));
    expect(s.model.calibration!.sha256).not.toBe(s.fingerprint.calibration);
    expect(s.accuracy.note).toMatch(/measured on int8 features of the run's calibration \(sha256 [0-9a-f]{12}…\), while this model uses another/);
  });

  describe('an fp32 run', () => {
    let fp32: { cache: string; run: string };
    beforeAll(() => { fp32 = makeRun(tmp, 'fp32', weights, 'seed'); });

    it('--precision int8 without a calibration is refused as predict refuses it, before anything is written', () => {
      const out = join(tmp, 'fp32-int8', 'model.onnx');
      const r = runCli(['export', '--run', fp32.run, '--out', out, '--precision', 'int8']);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/the run's head was trained on fp32 features, so it has no int8 calibration: pass --calibration FILE\|CACHE/);
      expect(existsSync(out)).toBe(false);
      const c = runCli(['export', '--run', fp32.run, '--out', out, '--calibration', int8.cache]);
      expect(c.status).toBe(2);
      expect(c.stderr).toMatch(/--calibration goes with --precision int8/);
    });

    it('--precision int8 --calibration CACHE exports with that calibration, matching predict with the same options', async () => {
      const out = join(tmp, 'fp32-int8', 'model.onnx');
      const opts = ['--precision', 'int8', '--calibration', int8.cache];
      cli(['export', '--run', fp32.run, '--out', out, ...opts]);
      const s = await readModelSidecar(join(tmp, 'fp32-int8', 'model.json'));
      expect(s.model.calibration!.sha256).toBe(calibrationHash(readCalibration(int8.cache)));
      expect(s.fingerprint.precision).toBeUndefined(); // the run's own fingerprint: fp32
      expect(s.accuracy.note).toMatch(/measured on the run's fp32 features, while this model computes int8 ones/);
      const d = maxDiff(await runModel(ortNode, readFileSync(out), pixels, images.length, 244),
        predictProbs(fp32.run, s.classes.length, images, opts), s.classes);
      expect(d).toBeLessThan(TOL);
    });
  });
});
