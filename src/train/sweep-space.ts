// The sweep's search space: what a trial is, the defaults, random draws and `--grid` specs.
import { UserError } from '../errors.js';
import { Rng, Stream } from '../random.js';
import type { ViewMode } from './loop.js';

/**
 * Feature transforms a trial may fit on its training rows: `std` standardises per feature (folded
 * into W and b when saved), `l2` normalises each row, `power` is the signed square root (x -> sign(x)·|x|^0.5).
 */
export const TRANSFORMS = ['none', 'std', 'l2', 'power', 'power+l2', 'power+std'] as const;
export type TransformName = (typeof TRANSFORMS)[number];

export interface AdamTrial {
  solver: 'adam';
  views: ViewMode;
  transform: TransformName;
  lr: number;
  weightDecay: number;
  epochs: number;
  stepSize: number;
  gamma: number;
  batch: number;
  labelSmoothing: number;
  /** Only for the leaderboard: "seed recipe" and the like. */
  name?: string;
}

export interface LbfgsTrial {
  solver: 'lbfgs';
  views: 'clean' | 'all';
  transform: TransformName;
  /** λ of mean(CE) + λ/2·||W||² (scikit-learn's C = 1/(λ·n)). */
  l2: number;
  maxIter: number;
  name?: string;
}

export type TrialSpec = AdamTrial | LbfgsTrial;

/** One unit of work for a worker: an Adam trial, or a path of L-BFGS penalties fitted with warm starts. */
export type Task = { id: number; trials: TrialSpec[] };

/** The seed's recipe: what `viewprobe train` does by default. Always trial 0 of a sweep. */
export const SEED_RECIPE: AdamTrial = {
  solver: 'adam', views: 'aug', transform: 'none', lr: 1e-3, weightDecay: 0, epochs: 50, stepSize: 5, gamma: 0.5,
  batch: 64, labelSmoothing: 0, name: 'seed recipe',
};

/** Penalties of the default L-BFGS path, strongest first (each fit starts from the previous one). */
export const LBFGS_PATH = [1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4];
/** Rows of unit length need weaker penalties (larger weights) for the same fit. */
export const LBFGS_PATH_UNIT = [1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6];

export interface SpaceOptions {
  /** Random Adam trials beside the fixed ones. */
  trials: number;
  seed: number;
  /** Views the cache offers: 'clean' and 'all' need clean views, 'aug' and 'all' augmented ones. */
  hasAug: boolean;
  hasClean: boolean;
}

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)]!;

/**
 * The default sweep: the seed recipe (train's defaults, and on the clean view), an L-BFGS penalty path
 * per transform on the clean views, and `trials` random Adam trials. Adam's lr is drawn RELATIVE to the
 * transform's scale (`lrScale`: 1 for raw features), log-uniform over [0.3x, 10x] of the recipe's 1e-3.
 */
export function defaultTasks(o: SpaceOptions, lrScale: (t: TransformName) => number): Task[] {
  const views: ViewMode[] = [...(o.hasAug ? (['aug'] as const) : []), ...(o.hasClean ? (['clean'] as const) : []), ...(o.hasAug && o.hasClean ? (['all'] as const) : [])];
  if (views.length === 0) throw new UserError('the cache has neither augmented nor clean views of the training images');
  const specs: TrialSpec[][] = [];
  const seedViews = o.hasAug ? 'aug' : 'clean';
  specs.push([{ ...SEED_RECIPE, views: seedViews }]);
  if (o.hasClean && seedViews !== 'clean') specs.push([{ ...SEED_RECIPE, views: 'clean', name: 'seed recipe, clean view' }]);
  if (o.hasClean) {
    for (const transform of ['none', 'std', 'l2', 'power+l2'] as const) {
      const path = transform.endsWith('l2') ? LBFGS_PATH_UNIT : LBFGS_PATH;
      specs.push(path.map((l2) => ({ solver: 'lbfgs', views: 'clean', transform, l2, maxIter: 150 } as LbfgsTrial)));
    }
  }
  const rng = new Rng(o.seed, Stream.sweep);
  for (let i = 0; i < o.trials; i++) {
    const transform = pick(rng, TRANSFORMS);
    const epochs = pick(rng, [10, 20, 30, 50]);
    const constant = rng.uniform() < 0.25;
    specs.push([{
      solver: 'adam',
      views: pick(rng, views),
      transform,
      lr: +(1e-3 * lrScale(transform) * 10 ** (-0.5 + 1.5 * rng.uniform())).toPrecision(3),
      weightDecay: pick(rng, [0, 0, 1e-4, 1e-3, 1e-2]),
      epochs,
      // StepLR with the recipe's shape (10 steps of 0.5 over the run), or a constant rate.
      stepSize: Math.max(1, Math.round(epochs / 10)),
      gamma: constant ? 1 : 0.5,
      batch: pick(rng, [32, 64, 128, 256]),
      labelSmoothing: pick(rng, [0, 0, 0.1]),
    }]);
  }
  return specs.map((trials, id) => ({ id, trials }));
}

const GRID_KEYS: Record<string, string> = {
  solver: 'adam|lbfgs', views: 'aug|clean|all', transform: TRANSFORMS.join('|'), lr: 'number', wd: 'number', epochs: 'integer',
  step: 'integer', gamma: 'number', batch: 'integer', ls: 'number in [0,1)', l2: 'number (lbfgs)',
};

/**
 * `--grid "lr=1e-3,3e-3;views=clean,all;transform=none,l2"`: the cartesian product of the listed values,
 * everything else from the seed recipe (L-BFGS: l2 1e-3, clean views). The seed recipe is added first
 * when the grid does not contain it.
 */
export function gridTasks(spec: string): Task[] {
  const axes: [string, string[]][] = [];
  for (const part of spec.split(';').map((s) => s.trim()).filter(Boolean)) {
    const m = /^([a-z0-9]+)\s*=\s*(.+)$/i.exec(part);
    if (!m) throw new UserError(`--grid: "${part}" is not key=value[,value...] (keys: ${Object.keys(GRID_KEYS).join(', ')})`);
    const key = m[1]!;
    if (!(key in GRID_KEYS)) throw new UserError(`--grid: unknown key "${key}" (keys: ${Object.keys(GRID_KEYS).join(', ')})`);
    if (axes.some(([k]) => k === key)) throw new UserError(`--grid: "${key}" is given twice`);
    axes.push([key, m[2]!.split(',').map((v) => v.trim()).filter(Boolean)]);
  }
  if (axes.length === 0) throw new UserError('--grid: empty spec (e.g. "lr=1e-3,3e-3;views=clean,all")');
  let combos: Record<string, string>[] = [{}];
  for (const [k, vs] of axes) combos = combos.flatMap((c) => vs.map((v) => ({ ...c, [k]: v })));
  const trials = combos.map(toTrial);
  const isSeed = (t: TrialSpec) => t.solver === 'adam' && (Object.keys(SEED_RECIPE) as (keyof AdamTrial)[]).every((k) => k === 'name' || t[k] === SEED_RECIPE[k]);
  const all = trials.some(isSeed) ? trials : [SEED_RECIPE, ...trials];
  return all.map((t, id) => ({ id, trials: [isSeed(t) ? { ...t, name: SEED_RECIPE.name } : t] }));
}

function toTrial(c: Record<string, string>): TrialSpec {
  const num = (k: string, v: string, check: (x: number) => boolean): number => {
    const x = Number(v);
    if (!Number.isFinite(x) || !check(x)) throw new UserError(`--grid: ${k}=${v} is not a valid ${GRID_KEYS[k]}`);
    return x;
  };
  const oneOf = <T extends string>(k: string, v: string | undefined, options: readonly T[], fallback: T): T => {
    if (v === undefined) return fallback;
    if (!(options as readonly string[]).includes(v)) throw new UserError(`--grid: ${k}=${v} is not one of ${options.join(', ')}`);
    return v as T;
  };
  const solver = oneOf('solver', c.solver, ['adam', 'lbfgs'] as const, 'adam');
  const transform = oneOf('transform', c.transform, TRANSFORMS, 'none');
  if (solver === 'lbfgs') {
    for (const k of ['lr', 'wd', 'epochs', 'step', 'gamma', 'batch', 'ls']) if (c[k] !== undefined) throw new UserError(`--grid: ${k} does not apply to solver=lbfgs`);
    return {
      solver, transform, views: oneOf('views', c.views, ['clean', 'all'] as const, 'clean'),
      l2: c.l2 === undefined ? 1e-3 : num('l2', c.l2, (x) => x >= 0), maxIter: 150,
    };
  }
  if (c.l2 !== undefined) throw new UserError('--grid: l2 applies to solver=lbfgs (Adam takes wd)');
  const epochs = c.epochs === undefined ? SEED_RECIPE.epochs : num('epochs', c.epochs, (x) => Number.isInteger(x) && x >= 1);
  return {
    solver, transform,
    views: oneOf('views', c.views, ['aug', 'clean', 'all'] as const, SEED_RECIPE.views),
    lr: c.lr === undefined ? SEED_RECIPE.lr : num('lr', c.lr, (x) => x > 0),
    weightDecay: c.wd === undefined ? 0 : num('wd', c.wd, (x) => x >= 0),
    epochs,
    stepSize: c.step === undefined ? SEED_RECIPE.stepSize : num('step', c.step, (x) => Number.isInteger(x) && x >= 1),
    gamma: c.gamma === undefined ? SEED_RECIPE.gamma : num('gamma', c.gamma, (x) => x > 0),
    batch: c.batch === undefined ? SEED_RECIPE.batch : num('batch', c.batch, (x) => Number.isInteger(x) && x >= 1),
    labelSmoothing: c.ls === undefined ? 0 : num('ls', c.ls, (x) => x >= 0 && x < 1),
  };
}

/** A short human description of a trial for the leaderboard. */
export function describeTrial(t: TrialSpec): string {
  const tf = t.transform === 'none' ? '' : ` ${t.transform}`;
  if (t.solver === 'lbfgs') return `lbfgs ${t.views}${tf} l2=${t.l2}`;
  const sched = t.gamma === 1 ? 'const' : `step${t.stepSize}/${t.gamma}`;
  return `adam ${t.views}${tf} lr=${t.lr} wd=${t.weightDecay} ${t.epochs}ep ${sched} b${t.batch}${t.labelSmoothing ? ` ls=${t.labelSmoothing}` : ''}`;
}
