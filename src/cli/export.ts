// `viewprobe export --run RUN --out model.onnx`: the run's whole classifier (normalisation, frozen
// backbone, head, softmax) as one ONNX file, and model.json beside it. The weights are found and
// checked exactly as predict finds them (run-backbone.ts); the model is loaded once in
// onnxruntime before it is written, so a file that is written is one that runs.
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, dirname, extname, resolve } from 'node:path';
import { FeatureCache } from '../cache/store.js';
import { UserError, errorMessage } from '../errors.js';
import { log, printJson } from '../log.js';
import type { exportBuilder } from './commands.js';
import type { ArgsOf } from './options.js';
import { loadRun, type LoadedRun } from '../run/run.js';
import { loadRunNet } from '../run/backbone.js';
import type { Preset } from '../image/presets.js';
import { packageVersion } from '../shared.js';
import { writeFileAtomic } from '../head/file.js';
import { IO, OPSET, PRECISIONS, backboneWriter, buildExportModel, type Precision } from '../export/graph.js';
import {
  MODEL_FORMAT, MODEL_VERSION, evalTransformDoc, inputDoc, metadataEntries, normalizationDoc, outputsDoc, testTimeViewsDoc,
  type ModelSidecar, type TestTimeViewsDoc,
} from '../export/sidecar.js';

export type ExportArgs = ArgsOf<typeof exportBuilder>;

/** model.onnx -> model.json; any other name gets .json appended. */
export function sidecarPath(out: string): string {
  return extname(out).toLowerCase() === '.onnx' ? out.slice(0, -5) + '.json' : out + '.json';
}

function isPrecision(p: string): p is Precision {
  return (PRECISIONS as readonly string[]).includes(p);
}

/**
 * Test-time views: the run's cache holds augmented views of its val images (eval averages the logits
 * over them). `undefined` when the cache cannot be read (model.json then says nothing about them).
 */
async function cacheTestTimeViews(run: LoadedRun, preset: Preset): Promise<TestTimeViewsDoc | null | undefined> {
  if (!existsSync(run.cache)) {
    log(`export: the run's cache ${run.cache} is not here; model.json cannot say whether the run averages test-time views`);
    return undefined;
  }
  let cache: FeatureCache | undefined;
  try {
    cache = await FeatureCache.open(run.cache, { readOnly: true });
    const val = cache.info()?.counts.splits.val;
    if (!val || val.augViewsMin === 0) return null;
    return testTimeViewsDoc(val.augViewsMin, val.clean === val.images, preset);
  } catch (e) {
    log(`export: cannot read the run's cache ${run.cache} (${errorMessage(e)}); model.json says nothing about test-time views`);
    return undefined;
  } finally {
    await cache?.close();
  }
}

export async function runExport(a: ExportArgs): Promise<number> {
  if (!isPrecision(a.precision)) throw new UserError(`--precision ${a.precision} is not supported (choose ${PRECISIONS.join(', ')})`);
  const out = resolve(a.out);
  const side = sidecarPath(out);
  if (out === side) throw new UserError(`--out ${a.out}: name the model file, e.g. model.onnx`);
  for (const f of [out, side]) {
    if (!existsSync(f)) continue;
    if (statSync(f).isDirectory()) throw new UserError(`${f} is a directory; --out names the model file, e.g. ${f}/model.onnx`);
    if (!a.force) throw new UserError(`${f} exists; pass --force to replace it`);
  }

  const run = await loadRun(a.run);
  const head = run.head;
  const { loaded, preset, fingerprint } = await loadRunNet(head.fingerprint, head.dim, run.headFile, { weights: a.weights }, run.cache);
  const { net } = loaded;
  const tta = await cacheTestTimeViews(run, preset);

  const valImages = typeof run.options.valImages === 'number' ? run.options.valImages : null;
  const facts: Omit<ModelSidecar, 'model'> = {
    format: MODEL_FORMAT,
    version: MODEL_VERSION,
    viewprobe: packageVersion(),
    createdAt: new Date().toISOString(),
    input: inputDoc(preset.inputSize),
    outputs: outputsDoc(head.classes.length, net.dim),
    classes: [...head.classes],
    transform: evalTransformDoc(preset),
    normalization: normalizationDoc(net.variant.preprocess),
    backbone: { arch: net.variant.arch, format: net.variant.format, dim: net.dim, weightsSha256: loaded.weightsSha256, weightsFile: basename(loaded.weightsPath) },
    head: { file: basename(run.headFile), epoch: head.epoch, dim: head.dim, classes: head.classes.length, transform: head.transform ?? null },
    accuracy: {
      split: 'val',
      images: valImages,
      valAcc: head.valAcc,
      best: run.best,
      final: run.final,
      note: 'val accuracy of the exported head; its epoch was chosen on the same val split, so this figure is optimistic',
    },
    fingerprint,
    fingerprintId: head.fingerprintId,
    testTimeViews: tta ?? null,
  };
  const precision: Precision = a.precision;
  const bytes = buildExportModel({
    net,
    head: { classes: head.classes.length, dim: head.dim, weight: head.weight, bias: head.bias, ...(head.transform ? { transform: head.transform } : {}) },
    inputSize: preset.inputSize,
    backbone: backboneWriter(precision),
    metadata: metadataEntries({ ...facts, model: { precision, opset: OPSET } }),
    producerVersion: facts.viewprobe,
    docString: `viewprobe ${facts.viewprobe}: ${net.variant.arch} + linear head, ${head.classes.length} classes; uint8 RGB [N, ${preset.inputSize}, ${preset.inputSize}, 3] in; see metadata_props`,
  });
  await selfCheck(bytes, preset.inputSize, head.classes.length, net.dim);

  const sidecar: ModelSidecar = {
    ...facts,
    model: { file: basename(out), bytes: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex'), precision, opset: OPSET },
  };
  // Reorder so that model.json reads top-down: what it is, what to feed, what comes out, where from.
  const ordered: ModelSidecar = {
    format: sidecar.format, version: sidecar.version, viewprobe: sidecar.viewprobe, createdAt: sidecar.createdAt, model: sidecar.model,
    input: sidecar.input, outputs: sidecar.outputs, classes: sidecar.classes, transform: sidecar.transform,
    normalization: sidecar.normalization, testTimeViews: sidecar.testTimeViews, backbone: sidecar.backbone, head: sidecar.head,
    accuracy: sidecar.accuracy, fingerprint: sidecar.fingerprint, fingerprintId: sidecar.fingerprintId,
  };
  try {
    await mkdir(dirname(out), { recursive: true });
    await writeFileAtomic(out, bytes);
    await writeFileAtomic(side, JSON.stringify(ordered, null, 1) + '\n');
  } catch (e) {
    throw new UserError(`cannot write ${a.out} (${(e as NodeJS.ErrnoException).code ?? errorMessage(e)})`);
  }
  const mb = (bytes.byteLength / 1e6).toFixed(1);
  log(`Wrote ${a.out} (${mb} MB, ${precision}, ${net.variant.arch}, ${head.classes.length} classes, input uint8 RGB ${preset.inputSize}x${preset.inputSize}) and ${side}`);
  if (tta) log(`The run averages ${tta.views} test-time views per image: ${basename(side)} says how to feed them`);
  if (a.json) {
    printJson({ model: out, sidecar: side, bytes: bytes.byteLength, sha256: sidecar.model.sha256, precision, inputSize: preset.inputSize, classes: head.classes, testTimeViews: tta?.views ?? 0 });
  }
  return 0;
}

/** One zero image through onnxruntime-node: the graph loads, and its outputs have the promised shapes. */
async function selfCheck(bytes: Uint8Array, size: number, classes: number, dim: number): Promise<void> {
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3, intraOpNumThreads: 1 });
  try {
    const r = await session.run({ [IO.input]: new ort.Tensor('uint8', new Uint8Array(size * size * 3), [1, size, size, 3]) });
    const shape = (n: string) => r[n]?.dims.join('x');
    if (shape(IO.probabilities) !== `1x${classes}` || shape(IO.logits) !== `1x${classes}` || shape(IO.features) !== `1x${dim}`) {
      throw new Error(`exported graph gives ${Object.keys(r).map((k) => `${k} ${shape(k)}`).join(', ')}`);
    }
    const p = r[IO.probabilities]!.data as Float32Array;
    const sum = p.reduce((s, v) => s + v, 0);
    if (!(Math.abs(sum - 1) < 1e-4)) throw new Error(`exported graph's probabilities sum to ${sum} on a black image`);
  } finally {
    await session.release();
  }
}
