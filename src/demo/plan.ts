// The demo's arithmetic, apart from its side effects so that it can be tested: how many views it
// extracts, how long that takes on the slowest machine seen, and the table it ends with.
import { padTable, pct } from '../format.js';

/**
 * The slowest machine seen: 2 cores without AVX-512, where ResNet50 extracts ~7 views/s at the
 * seed preset's 244 px (issue 10). Other backbones and sizes are scaled from it by their cost.
 */
export const SLOWEST = { viewsPerSecond: 7, arch: 'resnet50', size: 244, machine: '2 cores without AVX-512' } as const;

/** Cost of one view relative to ResNet50 at the same size (multiply-adds, rounded up: conservative). */
export const ARCH_COST: Record<string, number> = { resnet18: 0.5, resnet34: 0.9, resnet50: 1, resnet101: 1.9, resnet152: 2.8 };

export interface Counts {
  /** Images per class in each part. */
  train: number;
  val: number;
  test: number;
}

export interface ViewPlan {
  classes: number;
  perClass: Counts;
  /** Augmented views per training image (K); each training image also gets its clean view. */
  k: number;
  /** Views of each val and test image: the clean view plus the preset's test-time views. */
  evalViews: number;
}

export function viewsToExtract(p: ViewPlan): { train: number; val: number; test: number; total: number } {
  const train = p.classes * p.perClass.train * (p.k + 1);
  const val = p.classes * p.perClass.val * p.evalViews;
  const test = p.classes * p.perClass.test * p.evalViews;
  return { train, val, test, total: train + val + test };
}

/** Views per second on the slowest machine seen, for this backbone and input size (unknown arch: ResNet50). */
export function slowestRate(arch: string | undefined, size: number): number {
  const cost = (arch !== undefined ? ARCH_COST[arch] : undefined) ?? 1;
  return SLOWEST.viewsPerSecond / cost / ((size * size) / (SLOWEST.size * SLOWEST.size));
}

/**
 * The demo's whole budget is 5 minutes on the slowest machine; this much of it is for extracting.
 * The rest (measured here at 3-4x this machine's speed: loading the backbone three times, the sweep,
 * training, evaluating) took ~25 s here, so ~60 s there is a safe allowance.
 */
export const EXTRACT_BUDGET_S = 240;
/** The smallest parts worth showing: below these the comparison is noise. */
const MIN_PER_CLASS: Counts = { train: 5, val: 5, test: 10 };

/**
 * `plan` as asked, or with every part scaled down by one factor (rounded down, kept above the
 * minimums) when its views would take longer than `budgetS` at `rate` views/s: a preset with more
 * test-time views or a larger input size costs more per image, and the demo must still fit.
 */
export function fitToBudget(plan: ViewPlan, rate: number, budgetS = EXTRACT_BUDGET_S): { plan: ViewPlan; scaled: boolean } {
  const seconds = viewsToExtract(plan).total / rate;
  if (seconds <= budgetS) return { plan, scaled: false };
  const f = budgetS / seconds;
  const perClass = {} as Counts;
  for (const k of ['train', 'val', 'test'] as const) perClass[k] = Math.max(MIN_PER_CLASS[k], Math.floor(plan.perClass[k] * f));
  return { plan: { ...plan, perClass }, scaled: true };
}

/** 75 -> "1 min 15 s", 9.6 -> "10 s". */
export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

export interface HeadResult {
  /** Left column: which head. */
  name: string;
  /** What it is, in words. */
  description: string;
  /** Its score on the val split that chose it (epoch, trial): optimistic. */
  valScore: number;
  test: { correct: number; n: number; accuracy: number };
}

/** The closing table: the heads side by side on the held-out test images, and the difference. */
export function resultTable(seed: HeadResult, best: HeadResult): string[] {
  const row = (h: HeadResult) => [h.name, pct(h.valScore), pct(h.test.accuracy), `${h.test.correct} / ${h.test.n}`];
  const gain = 100 * (best.test.accuracy - seed.test.accuracy);
  const lines = padTable([
    ['head', 'val (chose it)', 'held-out test', 'correct / images'],
    row(seed),
    row(best),
    ['gain on the held-out test', '', `${gain >= 0 ? '+' : ''}${gain.toFixed(1)} points`, ''],
  ]);
  return [...lines, '', `  ${seed.name}: ${seed.description}`, `  ${best.name}: ${best.description}`];
}
