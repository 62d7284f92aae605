// `viewprobe export --run RUN --out model.onnx`: the run's whole classifier (normalisation, frozen
// backbone with the run's pooled features, head, softmax) as one ONNX file, and model.json beside it.
// The weights, the precision and the int8 calibration are found and checked exactly as predict finds
// them (run/backbone.ts): by default the run's precision, and for an int8 run the calibration of its
// cache, so the exported int8 backbone is the one the cache's features came from. The model is loaded
// once in onnxruntime before it is written, so a file that is written is one that runs.
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, dirname, extname, resolve } from 'node:path';
import { calibrationHash } from '../cache/calibration.js';
import { UserError, errorMessage } from '../errors.js';
import { log, printJson } from '../log.js';
import type { exportBuilder } from './commands.js';
import type { ArgsOf } from './options.js';
import { loadRun } from '../run/run.js';
import { loadRunNet } from '../run/backbone.js';
import { packageVersion } from '../shared.js';
import { writeFileAtomic } from '../head/file.js';
import { IO, OPSET, buildExportModel, type Precision } from '../export/graph.js';
import {
  MODEL_FORMAT, MODEL_VERSION, evalTransformDoc, featuresDoc, inputDoc, metadataEntries, normalizationDoc, outputsDoc, testTimeViewsDoc,
  type CalibrationDoc, type ModelSidecar,
} from '../export/sidecar.js';

export type ExportArgs = ArgsOf<typeof exportBuilder>;

/** model.onnx -> model.json; any other name gets .json appended. */
export function sidecarPath(out: string): string {
  return extname(out).toLowerCase() === '.onnx' ? out.slice(0, -5) + '.json' : out + '.json';
}

export async function runExport(a: ExportArgs): Promise<number> {
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
  const { loaded, preset, fingerprint, features, dim, precision: plan, int8 } = await loadRunNet(head.fingerprint, head.dim, run.headFile, a, run.cache);
  const { net } = loaded;
  const precision: Precision = plan.precision;
  const used = plan.calibration();
  const calibration: CalibrationDoc | null = used ? { sha256: calibrationHash(used), method: used.method, images: used.images.length } : null;
  const runPrecision = fingerprint.precision ?? 'fp32';
  const tta = testTimeViewsDoc(preset);

  const valImages = typeof run.options.valImages === 'number' ? run.options.valImages : null;
  // A sweep run chosen by cross-validation has no val figure: its score is the CV accuracy it was chosen by.
  const selection = run.options.selection as { kind?: string; label?: string; score?: number } | undefined;
  const byCv = selection?.kind === 'cv';
  // An int8 run exported with another --calibration computes other features than the head was trained on.
  const otherCalibration = runPrecision === 'int8' && calibration !== null && fingerprint.calibration !== undefined && calibration.sha256 !== fingerprint.calibration;
  const otherPrecision = precision !== runPrecision
    ? `; measured on the run's ${runPrecision} features, while this model computes ${precision} ones`
    : otherCalibration ? `; measured on int8 features of the run's calibration (sha256 ${fingerprint.calibration!.slice(0, 12)}…), while this model uses another (${calibration.sha256.slice(0, 12)}…)` : '';
  const facts: Omit<ModelSidecar, 'model'> = {
    format: MODEL_FORMAT,
    version: MODEL_VERSION,
    viewprobe: packageVersion(),
    createdAt: new Date().toISOString(),
    input: inputDoc(preset.inputSize),
    outputs: outputsDoc(head.classes.length, dim),
    classes: [...head.classes],
    transform: evalTransformDoc(preset),
    normalization: normalizationDoc(net.variant.preprocess),
    backbone: { arch: net.variant.arch, format: net.variant.format, dim: net.dim, weightsSha256: loaded.weightsSha256, weightsFile: basename(loaded.weightsPath) },
    features: featuresDoc(features, dim),
    head: { file: basename(run.headFile), epoch: head.epoch, dim: head.dim, classes: head.classes.length, transform: head.transform ?? null },
    accuracy: {
      split: byCv ? 'cv' : 'val',
      images: byCv ? null : valImages,
      valAcc: byCv ? (typeof selection.score === 'number' ? selection.score : null) : head.valAcc,
      best: run.best,
      final: run.final,
      note: (byCv
        ? `${selection.label ?? 'cross-validated accuracy on the training split'}: the score the sweep chose this head by, so optimistic; ` +
          'no val split took part: measure it with viewprobe eval --run RUN --data DATA'
        : 'val accuracy of the exported head; its epoch was chosen on the same val split, so this figure is optimistic') + otherPrecision,
    },
    fingerprint,
    fingerprintId: head.fingerprintId,
    testTimeViews: tta,
  };
  const bytes = buildExportModel({
    net,
    head: { classes: head.classes.length, dim: head.dim, weight: head.weight, bias: head.bias, ...(head.transform ? { transform: head.transform } : {}) },
    inputSize: preset.inputSize,
    features,
    ...(int8 ? { int8 } : {}),
    metadata: metadataEntries({ ...facts, model: { precision, opset: OPSET, calibration } }),
    producerVersion: facts.viewprobe,
    docString: `viewprobe ${facts.viewprobe}: ${net.variant.arch}${precision === 'int8' ? ' int8' : ''} + linear head, ${head.classes.length} classes; ` +
      `uint8 RGB [N, ${preset.inputSize}, ${preset.inputSize}, 3] in; see metadata_props`,
  });
  await selfCheck(bytes, preset.inputSize, head.classes.length, dim);

  const sidecar: ModelSidecar = {
    ...facts,
    model: { file: basename(out), bytes: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex'), precision, opset: OPSET, calibration },
  };
  // Reorder so that model.json reads top-down: what it is, what to feed, what comes out, where from.
  const ordered: ModelSidecar = {
    format: sidecar.format, version: sidecar.version, viewprobe: sidecar.viewprobe, createdAt: sidecar.createdAt, model: sidecar.model,
    input: sidecar.input, outputs: sidecar.outputs, classes: sidecar.classes, transform: sidecar.transform,
    normalization: sidecar.normalization, testTimeViews: sidecar.testTimeViews, backbone: sidecar.backbone, features: sidecar.features, head: sidecar.head,
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
  const prec = calibration ? `int8 (calibration ${calibration.sha256.slice(0, 12)}…)` : precision;
  log(`Wrote ${a.out} (${mb} MB, ${prec}, ${net.variant.arch}, ${head.classes.length} classes, input uint8 RGB ${preset.inputSize}x${preset.inputSize}) and ${side}`);
  if (precision !== runPrecision) log(`export: the run's head was trained on ${runPrecision} features; this model computes ${precision} features`);
  else if (otherCalibration) log(`export: the run's head was trained on int8 features of another calibration than --calibration's; model.json's accuracy note says so`);
  if (tta) log(`predict averages ${tta.views} views per image for this run: ${basename(side)} says how to feed them`);
  if (a.json) {
    printJson({
      model: out, sidecar: side, bytes: bytes.byteLength, sha256: sidecar.model.sha256, precision, calibration, inputSize: preset.inputSize,
      classes: head.classes, features: sidecar.features, testTimeViews: tta?.views ?? 0,
    });
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
