// `npm run demo`: the recommended flow beside the seed recipe, measured on images that took no part
// in choosing anything. From a stable, stratified subset of a dataset it carves three disjoint parts:
// train, val (which chooses: the seed recipe's best epoch, the sweep's winning trial) and a held-out
// test carved from the dataset's own held-out split. Then, with the same commands a user types:
//   extract (train + val into one cache) -> train --views clean (the seed recipe's clean-view head)
//   -> sweep (chooses on val) -> eval --data TEST for both heads (the only numbers to trust).
// Results on stdout (the closing table), the commands' progress on stderr. Reruns reuse the cache.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { readSafetensors } from '../backbone/safetensors.js';
import { inferArch } from '../backbone/spec.js';
import { resolveWeights } from '../backbone/weights.js';
import { UserError, errorMessage } from '../errors.js';
import { EXIT } from '../exit.js';
import { getPreset, PRESET_NAMES, type PresetName } from '../image/presets.js';
import { log, printText } from '../log.js';
import { packageRoot } from '../shared.js';
import { EXTRACT_BUDGET_S, fitToBudget, formatDuration, resultTable, SLOWEST, slowestRate, viewsToExtract, type Counts, type HeadResult } from './plan.js';
import { loadSourceData, OFFLINE_HINT, resolveSource, writeDemoLists, type DemoSource } from './sources.js';

/** The recommended flow's preset and K (README "Best accuracy"). */
export const DEMO_PRESET: string = 'probe';
export const DEMO_VIEWS = 4;
/**
 * The demo's input size: 224, not the probe preset's 288, which costs 1.65x per view and would leave
 * the 5-minute budget room for only 3/5 of the images (a noisier comparison). `undefined`: the preset's.
 */
export const DEMO_SIZE: number | undefined = 224;
/**
 * Images per class. Sized so that the whole demo (extract ~1,600 views with 1 test-time view per
 * val/test image, then seconds of training) stays within 5 minutes on the slowest machine seen:
 * see plan.ts SLOWEST and the projection the demo prints before extracting.
 */
export const DEMO_PER_CLASS: Counts = { train: 16, val: 16, test: 26 };

const USAGE = `usage: npm run demo [-- --data DIR] [--weights FILE] [--download]
  --data DIR      a dataset: DIR/train.txt + DIR/val.txt (list files) or DIR/train/ + DIR/val/ (class folders);
                  train and the val that chooses are carved from its train part, the held-out test from its val part
  --weights FILE  backbone weights (safetensors); default: the shared ResNet50, else the torchvision ResNet18 download
  --download      ignore ../shared and use what a checkout anywhere gets: Imagenette 160 px + ResNet18 (downloaded once)`;

interface Json {
  [k: string]: unknown;
}

/** Runs the CLI as a user would, progress on stderr; returns its --json result (and its exit code). */
function viewprobe(args: string[], okCodes: number[] = [EXIT.ok]): { json: Json; code: number; seconds: number } {
  const shown = args.map((a) => (a.startsWith(packageRoot) ? relative(packageRoot, a) || '.' : a)).map((a) => (/\s/.test(a) ? `'${a}'` : a));
  log(`\n$ viewprobe ${shown.join(' ')}`);
  const t0 = Date.now();
  // Ctrl-C reaches the command too (same process group), which finishes its batches in flight and
  // exits 130; the demo waits for it instead of dying first.
  const ignore = () => {};
  process.on('SIGINT', ignore);
  const r = spawnSync(process.execPath, [join(packageRoot, 'bin', 'viewprobe.js'), ...args, '--json'], {
    stdio: ['inherit', 'pipe', 'inherit'], maxBuffer: 256 * 1024 * 1024, encoding: 'utf8',
  });
  process.off('SIGINT', ignore);
  const seconds = (Date.now() - t0) / 1000;
  const code = r.status ?? (r.signal === 'SIGINT' ? EXIT.interrupted : EXIT.internal);
  if (code === EXIT.interrupted) throw new UserError(`interrupted during viewprobe ${args[0]}; what was finished is kept: run npm run demo again to go on`, code);
  if (!okCodes.includes(code)) throw new UserError(`viewprobe ${args[0]} exited with ${r.status ?? r.signal}`, code);
  try {
    return { json: JSON.parse(r.stdout) as Json, code, seconds };
  } catch {
    throw new Error(`viewprobe ${args[0]} printed no JSON result`);
  }
}

async function archOf(weights: string): Promise<string | undefined> {
  try {
    const f = await readSafetensors(weights);
    return f.metadata.arch?.trim().toLowerCase() || inferArch(f.tensors.keys());
  } catch {
    return undefined;
  }
}

interface DemoState {
  /** The plan whose views are all in the cache. */
  complete?: string;
  /** Views/s of the last extract that did work here. */
  viewsPerSecond?: number;
}

async function readState(file: string): Promise<DemoState> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as DemoState;
  } catch {
    return {};
  }
}

export async function demo(argv: string[]): Promise<number> {
  const { values: o } = parseArgs({
    args: argv,
    options: { data: { type: 'string' }, weights: { type: 'string' }, download: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
  });
  if (o.help) {
    printText(USAGE);
    return EXIT.ok;
  }
  const t0 = Date.now();
  if (!(PRESET_NAMES as readonly string[]).includes(DEMO_PRESET)) {
    throw new UserError(`this build has no preset "${DEMO_PRESET}" (it has ${PRESET_NAMES.join(', ')}); set DEMO_PRESET in src/demo/main.ts`);
  }
  const preset = getPreset(DEMO_PRESET as PresetName, DEMO_SIZE !== undefined ? { size: DEMO_SIZE } : {});
  // Presets with test-time views extract them for every val and test image (eval averages them).
  const evalViews = 1 + ((preset as { testViews?: number }).testViews ?? 0);

  const source: DemoSource = await resolveSource({ ...(o.data ? { data: o.data } : {}), ...(o.weights ? { weights: o.weights } : {}), ...(o.download ? { download: true } : {}) });
  let weights = source.weights;
  if (weights === undefined) {
    weights = (await resolveWeights({})).path;
  }
  const arch = source.arch ?? (await archOf(weights));
  log(`demo: ${source.name} from ${source.origin}; backbone ${arch ?? 'unknown'} (${weights})`);

  const data = await loadSourceData(source);
  const { classes } = data;
  if (data.unreadable > 0) log(`demo: ${data.unreadable} listed images cannot be read; they are left out`);
  const rate = slowestRate(arch, preset.inputSize);
  const fit = fitToBudget({ classes: classes.length, perClass: DEMO_PER_CLASS, k: DEMO_VIEWS, evalViews }, rate);
  const n = fit.plan.perClass;
  if (fit.scaled) {
    log(`demo: ${DEMO_PER_CLASS.train} + ${DEMO_PER_CLASS.val} + ${DEMO_PER_CLASS.test} images per class would take longer than ` +
      `${formatDuration(EXTRACT_BUDGET_S)} to extract on the slowest machine seen with this preset and backbone; taking ${n.train} + ${n.val} + ${n.test}`);
  }
  const id = createHash('sha256').update(JSON.stringify([source.train, weights, DEMO_PRESET, ...(DEMO_SIZE !== undefined ? [DEMO_SIZE] : [])])).digest('hex').slice(0, 8);
  const work = join(packageRoot, 'cache', `demo-${source.name}-${DEMO_PRESET}-${id}`);
  const cache = join(work, 'features');
  const { parts: { train, val, test }, files: lists } = await writeDemoLists(data, n, join(work, 'lists'));
  const runs = join(packageRoot, 'runs', 'demo');
  const seedRun = join(runs, 'seed-recipe');
  const sweepRun = join(runs, 'sweep');
  const report = join(runs, 'report.html');

  // What extracting costs, before doing it.
  const views = viewsToExtract(fit.plan);
  const plan = createHash('sha256').update(JSON.stringify([id, DEMO_VIEWS, [train, val, test].map((p) => p.map((i) => i.hash))])).digest('hex');
  const stateFile = join(work, 'demo-state.json');
  const state = await readState(stateFile);
  log(`demo: ${classes.length} classes; per class ${n.train} train + ${n.val} val (carved from ${basename(source.train)}), ` +
    `${n.test} held-out test (from ${basename(source.heldOut)}); preset ${DEMO_PRESET} (${preset.inputSize} px), K=${DEMO_VIEWS}`);
  if (state.complete === plan) {
    log(`demo: all ${views.total} views are in the cache from an earlier run: nothing to extract`);
  } else {
    log(`demo: ${views.total} views to extract (${views.train} train: ${DEMO_VIEWS} augmented + 1 clean per image; ` +
      `${views.val} val + ${views.test} test: ${evalViews} per image), fewer if some are cached: ` +
      `projected ${formatDuration(views.total / rate)} at ${rate.toFixed(1)} views/s (${arch ?? 'assumed resnet50'} on the slowest machine seen, ${SLOWEST.machine})` +
      (state.viewsPerSecond ? `, ${formatDuration(views.total / state.viewsPerSecond)} at the ${state.viewsPerSecond.toFixed(1)} views/s measured here last time` : ''));
  }

  const weightsArgs = source.weights ? ['--weights', weights] : [];
  const ex = viewprobe(['extract', '--train', lists.train, '--val', lists.val, '--cache', cache, '--preset', DEMO_PRESET,
    ...(DEMO_SIZE !== undefined ? ['--size', String(DEMO_SIZE)] : []), '--views', String(DEMO_VIEWS), ...weightsArgs], [EXIT.ok, EXIT.someFailed]);
  const extracted = Number(ex.json.extracted ?? 0);
  const tr = viewprobe(['train', '--cache', cache, '--out', seedRun, '--views', 'clean', '--force']);
  const sw = viewprobe(['sweep', '--cache', cache, '--out', sweepRun, '--force']);
  const evSeed = viewprobe(['eval', '--run', seedRun, '--data', lists.test]);
  const evSweep = viewprobe(['eval', '--run', sweepRun, '--data', lists.test, '--report', report, '--force']);

  const trBest = (tr.json.best ?? {}) as { valAcc: number; epoch: number };
  const opts = (tr.json as { epochs?: number }).epochs;
  const winner = (sw.json.winner ?? {}) as { score: number; description: string };
  const asTest = (e: Json) => {
    const r = e.eval as { correct: number; n: number; accuracy: number };
    return { correct: r.correct, n: r.n, accuracy: r.accuracy };
  };
  const seed: HeadResult = {
    name: 'seed recipe', valScore: trBest.valAcc, test: asTest(evSeed.json),
    description: `viewprobe train --views clean: the seed recipe (Adam, StepLR, ${opts ?? 50} epochs) on each image's clean view; ` +
      `epoch ${trBest.epoch} chosen on val`,
  };
  const best: HeadResult = {
    name: 'sweep winner', valScore: winner.score, test: asTest(evSweep.json),
    description: `viewprobe sweep: ${winner.description}; chosen on val`,
  };

  const evalSeconds = evSeed.seconds + evSweep.seconds;
  const sweepRate = Number(sw.json.trialsPerSecond ?? 0);
  const sweepTrials = Math.round(sweepRate * Number(sw.json.seconds ?? 0));
  const total = (Date.now() - t0) / 1000;
  const exRate = Number(ex.json.viewsPerSecond ?? 0);
  await writeFile(stateFile, JSON.stringify({ ...(ex.code === EXIT.ok ? { complete: plan } : {}), ...(extracted > 100 ? { viewsPerSecond: exRate } : state.viewsPerSecond ? { viewsPerSecond: state.viewsPerSecond } : {}) }) + '\n');

  printText([
    '',
    `viewprobe demo: ${source.name}, ${classes.length} classes, ${arch ?? 'ResNet'} (${basename(weights)}), preset ${DEMO_PRESET}, K=${DEMO_VIEWS}`,
    `${train.length} training images, ${val.length} val images (chose the epoch and the sweep's trial), ` +
      `${test.length} held-out test images that neither saw (${n.test} per class)`,
    '',
    ...resultTable(seed, best),
    '',
    `Report: ${relative(process.cwd(), report) || report} (viewprobe eval --run ${relative(process.cwd(), sweepRun)} --data ${relative(process.cwd(), lists.test)})`,
    `Time: ${formatDuration(total)} (extract ${formatDuration(ex.seconds)}: ${extracted} views extracted` +
      (extracted > 0 ? ` at ${exRate.toFixed(1)} views/s` : ', all cached') +
      `; train ${formatDuration(tr.seconds)}; sweep ${formatDuration(sw.seconds)}: ${sweepTrials} trials at ${sweepRate.toFixed(1)}/s; eval x2 ${formatDuration(evalSeconds)}, with the test images' views)`,
  ]);
  return EXIT.ok;
}

/** For scripts/demo.js: one line on stderr for what the user can fix, exit 2 (or the command's code). */
export async function runDemo(argv: string[]): Promise<number> {
  try {
    return await demo(argv);
  } catch (e) {
    if (e instanceof UserError) {
      log(`demo: ${e.message}`);
      if (/cannot get /.test(e.message)) log(`demo: ${OFFLINE_HINT}`);
      return e.exitCode;
    }
    if ((e as { code?: string })?.code?.startsWith('ERR_PARSE_ARGS')) {
      log(`demo: ${errorMessage(e)}\n${USAGE}`);
      return EXIT.usage;
    }
    log(`demo: internal error: ${errorMessage(e)}`);
    if (process.env.VIEWPROBE_DEBUG) log(String((e as Error)?.stack ?? e));
    return EXIT.internal;
  }
}
