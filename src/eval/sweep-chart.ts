// The sweep part of the HTML report: the leaderboard as a chart (selection score per trial, the
// chosen trial and the seed recipe marked), one small chart per thing that varied between trials
// (head kind, views, transform, Adam's lr and schedule, L-BFGS's penalty, ...) with every trial as a
// point and the seed recipe's score as a dashed line, and every trial as a table.
import type { Selection } from '../train/selection.js';
import { TRANSFORMS, type TrialSpec } from '../train/sweep-space.js';
import { base, esc, pct, toSvg, type Spec } from './vega.js';

export interface SweepTrialView {
  trial: number;
  rank: number;
  score: number;
  epoch: number;
  seconds: number;
  description: string;
  spec: TrialSpec;
}

/** What the report shows of a sweep (sweep.json has this shape). */
export interface SweepView {
  selection: Selection;
  seconds: number;
  workers: number;
  /** Indices into trials. */
  winner: number;
  /** -1 when the sweep had no seed-recipe trial. */
  seedRecipe: number;
  trials: SweepTrialView[];
}

/** How many trials the leaderboard chart lists (the seed recipe's rows are added when below). */
export const LEADERBOARD_ROWS = 20;

const SOLVER = { adam: 'Adam', lbfgs: 'L-BFGS' } as const;
/** A point's group: its head kind, or the role that matters more. */
const GROUPS = ['Adam', 'L-BFGS', 'seed recipe', 'chosen'] as const;
type Group = (typeof GROUPS)[number];
const GROUP_STYLE = {
  color: { domain: [...GROUPS], range: ['#4c78a8', '#f58518', '#d62728', '#2ca02c'] },
  shape: { domain: [...GROUPS], range: ['circle', 'square', 'diamond', 'triangle-up'] },
};
const SIZE: Record<Group, number> = { Adam: 36, 'L-BFGS': 36, 'seed recipe': 150, chosen: 150 };
/** Point areas come with the data (a size scale on a category draws a vega-lite warning). */
const sizeChannel = { field: 'size', type: 'quantitative', scale: null, legend: null };
const SEED_RULE = { type: 'rule', color: '#d62728', strokeDash: [5, 4], strokeWidth: 1.5 };

interface Dim {
  title: string;
  /** 'log': a positive number on a log axis; 'nominal': categories. */
  kind: 'log' | 'nominal';
  value: (s: TrialSpec) => string | number | undefined;
  /** Category order when not numeric. */
  order?: readonly string[];
}

/** What a trial may vary in, in the order the charts are shown. Only those that did vary are drawn. */
const DIMS: Dim[] = [
  { title: 'head (solver)', kind: 'nominal', value: (s) => SOLVER[s.solver], order: ['Adam', 'L-BFGS'] },
  { title: 'training views', kind: 'nominal', value: (s) => s.views, order: ['aug', 'clean', 'all'] },
  { title: 'feature transform', kind: 'nominal', value: (s) => s.transform, order: TRANSFORMS },
  { title: 'Adam: learning rate', kind: 'log', value: (s) => (s.solver === 'adam' ? s.lr : undefined) },
  { title: 'Adam: weight decay', kind: 'nominal', value: (s) => (s.solver === 'adam' ? String(s.weightDecay) : undefined) },
  { title: 'Adam: epochs', kind: 'nominal', value: (s) => (s.solver === 'adam' ? String(s.epochs) : undefined) },
  { title: 'Adam: schedule', kind: 'nominal', value: (s) => (s.solver === 'adam' ? (s.gamma === 1 ? 'constant' : `StepLR ×${s.gamma}`) : undefined) },
  { title: 'Adam: batch', kind: 'nominal', value: (s) => (s.solver === 'adam' ? String(s.batch) : undefined) },
  { title: 'Adam: label smoothing', kind: 'nominal', value: (s) => (s.solver === 'adam' ? String(s.labelSmoothing) : undefined) },
  { title: 'L-BFGS: L2 penalty λ', kind: 'log', value: (s) => (s.solver === 'lbfgs' ? s.l2 : undefined) },
];

function groupOf(v: SweepView, i: number): Group {
  if (i === v.winner) return 'chosen';
  if (i === v.seedRecipe) return 'seed recipe';
  return SOLVER[v.trials[i]!.spec.solver];
}

/** Deterministic spread of points within a category, so that equal scores do not hide each other. */
const jitter = (i: number) => (((i * 0.6180339887) % 1) - 0.5) * 0.8;

function categoryOrder(values: string[], order?: readonly string[]): string[] {
  const distinct = [...new Set(values)];
  if (distinct.every((x) => x !== '' && Number.isFinite(Number(x)))) return distinct.sort((a, b) => Number(a) - Number(b));
  const known = order ? order.filter((o) => distinct.includes(o)) : [];
  return [...known, ...distinct.filter((d) => !known.includes(d)).sort()];
}

/** The dimensions along which the trials differ, with each trial's value (undefined: does not apply). */
export interface VariedDimension {
  title: string;
  kind: 'log' | 'nominal';
  /** Per trial; undefined where the setting does not apply (e.g. lr of an L-BFGS trial). */
  values: (string | number | undefined)[];
  /** Category order (nominal only). */
  order: string[];
}

export function variedDimensions(trials: { spec: TrialSpec }[]): VariedDimension[] {
  const out: VariedDimension[] = [];
  for (const d of DIMS) {
    const values = trials.map((t) => d.value(t.spec));
    const defined = values.filter((x): x is string | number => x !== undefined);
    if (new Set(defined).size < 2) continue;
    // A zero has no place on a log axis: such a dimension is shown as categories.
    const kind: VariedDimension['kind'] = d.kind === 'log' && defined.every((x) => typeof x === 'number' && x > 0) ? 'log' : 'nominal';
    const vals = kind === 'nominal' ? values.map((x) => (x === undefined ? undefined : String(x))) : values;
    out.push({ title: d.title, kind, values: vals, order: kind === 'nominal' ? categoryOrder(vals.filter((x): x is string => x !== undefined), d.order) : [] });
  }
  return out;
}

function scoreDomain(s: number[]): [number, number] {
  const lo = Math.min(...s);
  const hi = Math.max(...s);
  const pad = Math.max((hi - lo) * 0.08, 0.005);
  return [Math.max(0, lo - pad), Math.min(1, hi + pad)];
}

/** Whole percents repeat on an axis that spans a few points. */
const pctFormat = ([lo, hi]: [number, number]) => (hi - lo < 0.06 ? '.1%' : '.0%');

function leaderboardRows(v: SweepView): number[] {
  const byRank = v.trials.map((_, i) => i).sort((a, b) => v.trials[a]!.rank - v.trials[b]!.rank || a - b);
  const shown = byRank.slice(0, LEADERBOARD_ROWS);
  // The seed recipe's rows (and other named trials) are always listed: the chart shows what the sweep won.
  for (const i of byRank) if (!shown.includes(i) && (i === v.seedRecipe || v.trials[i]!.spec.name)) shown.push(i);
  return shown;
}

const trialLabel = (t: SweepTrialView) => `#${t.rank}  ${t.description}${t.spec.name ? ` (${t.spec.name})` : ''}`;

function leaderboardSpec(v: SweepView): Spec {
  const rows = leaderboardRows(v);
  const values = rows.map((i) => ({ label: trialLabel(v.trials[i]!), score: v.trials[i]!.score, group: groupOf(v, i), size: SIZE[groupOf(v, i)], text: pct(v.trials[i]!.score) }));
  // Specials last, so they are drawn on top.
  values.sort((a, b) => GROUPS.indexOf(a.group) - GROUPS.indexOf(b.group));
  const order = rows.map((i) => trialLabel(v.trials[i]!));
  const [lo, hi] = scoreDomain(rows.map((i) => v.trials[i]!.score));
  const seed = v.seedRecipe >= 0 ? v.trials[v.seedRecipe]! : undefined;
  const x = { field: 'score', type: 'quantitative', title: `selection score: ${v.selection.label}`, scale: { domain: [lo, hi], zero: false }, axis: { format: pctFormat([lo, hi]), titleFontWeight: 'normal' } };
  const y = { field: 'label', type: 'nominal', sort: order, title: null, axis: { labelLimit: 1000, labelFontSize: 11 } };
  const layer: Spec[] = [
    {
      mark: { type: 'rule', color: '#ddd' },
      encoding: { y, x, x2: { datum: lo } },
    },
    {
      mark: { type: 'point', filled: true, opacity: 1 },
      encoding: {
        y, x,
        color: { field: 'group', type: 'nominal', scale: GROUP_STYLE.color, title: null, legend: { orient: 'top', direction: 'horizontal' } },
        shape: { field: 'group', type: 'nominal', scale: GROUP_STYLE.shape, title: null },
        size: sizeChannel,
      },
    },
    // the scores as a column right of the plot
    { mark: { type: 'text', align: 'left', dx: 8, fontSize: 10, color: '#444' }, encoding: { y, x: { datum: hi, type: 'quantitative' }, text: { field: 'text' } } },
  ];
  if (seed) layer.splice(1, 0, { data: { values: [{ s: seed.score }] }, mark: SEED_RULE, encoding: { x: { field: 's', type: 'quantitative' } } });
  return {
    ...base,
    title: { text: `Leaderboard: the best ${Math.min(LEADERBOARD_ROWS, v.trials.length)} of ${v.trials.length} trials${rows.length > LEADERBOARD_ROWS ? ' and the seed recipe' : ''}`, anchor: 'start' },
    width: 420,
    height: { step: 17 },
    data: { values },
    layer,
  };
}

/** Powers of ten across the values (a log axis's own ticks crowd in at every 2..9 × 10^k); the ends when fewer than two. */
function logTicks(values: (number | undefined)[]): number[] {
  const xs = values.filter((x): x is number => x !== undefined);
  const lo = Math.min(...xs), hi = Math.max(...xs);
  const ticks: number[] = [];
  for (let e = Math.ceil(Math.log10(lo) - 1e-9); e <= Math.floor(Math.log10(hi) + 1e-9); e++) ticks.push(10 ** e);
  return ticks.length >= 2 ? ticks : [lo, hi];
}

function dimensionSpec(v: SweepView, dim: VariedDimension): Spec {
  const values = v.trials
    .map((t, i) => ({ v: dim.values[i], score: t.score, group: groupOf(v, i), size: SIZE[groupOf(v, i)], jitter: jitter(i) }))
    .filter((r) => r.v !== undefined)
    .sort((a, b) => GROUPS.indexOf(a.group) - GROUPS.indexOf(b.group));
  const seed = v.seedRecipe >= 0 ? v.trials[v.seedRecipe]! : undefined;
  // One score axis for every panel, so that heights compare across them.
  const yDomain = scoreDomain(v.trials.map((t) => t.score));
  const x = dim.kind === 'log'
    ? { field: 'v', type: 'quantitative', scale: { type: 'log', padding: 10 }, title: null, axis: { format: '.0e', values: logTicks(dim.values as (number | undefined)[]), grid: false } }
    : { field: 'v', type: 'nominal', sort: dim.order, title: null, axis: { labelAngle: dim.order.some((o) => o.length > 6) ? -30 : 0 } };
  const point: Spec = {
    mark: { type: 'point', filled: true, opacity: 0.85 },
    encoding: {
      x,
      ...(dim.kind === 'nominal' ? { xOffset: { field: 'jitter', type: 'quantitative', scale: { domain: [-0.5, 0.5] } } } : {}),
      y: { field: 'score', type: 'quantitative', scale: { domain: yDomain, zero: false }, title: null, axis: { format: pctFormat(yDomain), tickCount: 5 } },
      color: { field: 'group', type: 'nominal', scale: GROUP_STYLE.color, legend: null },
      shape: { field: 'group', type: 'nominal', scale: GROUP_STYLE.shape, legend: null },
      size: sizeChannel,
    },
  };
  const layer: Spec[] = [point];
  if (seed) layer.unshift({ data: { values: [{ s: seed.score }] }, mark: SEED_RULE, encoding: { y: { field: 's', type: 'quantitative' } } });
  return {
    ...base,
    title: { text: dim.title, fontSize: 12 },
    width: dim.kind === 'nominal' ? { step: Math.max(28, Math.min(60, 200 / dim.order.length)) } : 200,
    height: 150,
    data: { values },
    layer,
  };
}

function trialsTable(v: SweepView): string {
  const order = v.trials.map((_, i) => i).sort((a, b) => v.trials[a]!.rank - v.trials[b]!.rank || a - b);
  const rows = order.map((i) => {
    const t = v.trials[i]!;
    const mark = i === v.winner ? ' <b>(chosen)</b>' : t.spec.name ? ` <b>(${esc(t.spec.name)})</b>` : '';
    return `<tr${i === v.winner ? ' class="chosen"' : i === v.seedRecipe ? ' class="seed"' : ''}><td>${t.rank}</td><td>${pct(t.score)}</td><td>${t.epoch}</td><td>${t.seconds.toFixed(2)}</td><td class="trial">${esc(t.description)}${mark}</td></tr>`;
  });
  return `<table class="trials"><thead><tr><th>rank</th><th>score</th><th>epoch</th><th>secs</th><th>trial</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

/** The sweep section of the report (HTML with inline SVG). */
export async function renderSweepSection(v: SweepView): Promise<string> {
  const dims = variedDimensions(v.trials);
  const [board, ...panels] = await Promise.all([toSvg(leaderboardSpec(v)), ...dims.map((d) => toSvg(dimensionSpec(v, d)))]);
  const w = v.trials[v.winner]!;
  const seed = v.seedRecipe >= 0 ? v.trials[v.seedRecipe]! : undefined;
  const gain = seed ? ` — ${w.score >= seed.score ? '+' : ''}${((w.score - seed.score) * 100).toFixed(1)} points over the seed recipe (${esc(seed.description)}: ${pct(seed.score)})` : '';
  const legend = GROUPS.map((g, i) => `<span class="key"><svg width="12" height="12" viewBox="-6 -6 12 12">${keyShape(GROUP_STYLE.shape.range[i]!, GROUP_STYLE.color.range[i]!)}</svg> ${g}</span>`).join(' ');
  return `<h2>Sweep: ${v.trials.length} trials</h2>
<p>${v.trials.length} heads trained from the cache in ${v.seconds.toFixed(1)} s on ${v.workers} worker${v.workers === 1 ? '' : 's'}, each scored by its <b>selection score</b>: ${esc(v.selection.label)}.
Chosen: <b>${esc(w.description)}</b>, ${pct(w.score)}${gain}.</p>
<p class="muted">The selection score chose among the trials, so the winner's is optimistic; the number to trust is <code>viewprobe eval --data</code> on images that took no part in choosing.</p>
<figure>${board}</figure>
<h3>By what varied</h3>
<p class="muted">Every trial is a point at its selection score, in one chart per setting that differed between trials (a trial appears only where the setting applies to it). ${legend}${seed ? ` <span class="key"><svg width="18" height="6"><line x1="0" y1="3" x2="18" y2="3" stroke="#d62728" stroke-dasharray="5 4" stroke-width="1.5"/></svg> the seed recipe's score</span>` : ''}</p>
<div class="panels">${panels.map((p) => `<figure>${p}</figure>`).join('')}</div>
<details><summary>All ${v.trials.length} trials</summary><div class="scroll">${trialsTable(v)}</div></details>`;
}

function keyShape(shape: string, color: string): string {
  switch (shape) {
    case 'square': return `<rect x="-4" y="-4" width="8" height="8" fill="${color}"/>`;
    case 'diamond': return `<path d="M0,-6L6,0L0,6L-6,0Z" fill="${color}"/>`;
    case 'triangle-up': return `<path d="M0,-6L6,5L-6,5Z" fill="${color}"/>`;
    default: return `<circle r="4.5" fill="${color}"/>`;
  }
}
