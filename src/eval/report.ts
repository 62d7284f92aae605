// The HTML report: one self-contained file (inline CSS, SVG and data: URI thumbnails, no script,
// nothing fetched when it is opened): for a sweep run the leaderboard and what varied, the most
// confident mistakes as thumbnails, the loss and accuracy curves per epoch, the confusion matrix and
// the tables. It renders what it is given: the command gathers the run's files and the images.
import type { EpochRecord } from '../train/loop.js';
import type { EvalResult } from './metrics.js';
import { renderSweepSection, type SweepView } from './sweep-chart.js';
import { base, esc, pct, toSvg, type Spec } from './vega.js';

export type { SweepView } from './sweep-chart.js';

/** One wrong image as the report shows it. */
export interface MistakeView {
  /** The image file (shown by name, the full path on hover). */
  file: string;
  truth: string;
  predicted: string;
  /** Probability of the predicted class. */
  prob: number;
  /** Probability of the true class. */
  trueProb: number;
  /** data: URI of a small JPEG, or null when the image could not be shown (then `problem` says why). */
  thumbnail: string | null;
  problem?: string;
}

export interface MistakesView {
  /** Most confident first. */
  items: MistakeView[];
  /** Wrong images in all. */
  wrong: number;
}

export interface ReportInput {
  title: string;
  /** What the metrics were computed on, e.g. "val split of cache/ (500 images)". */
  dataLabel: string;
  /** Per-epoch history of the run; empty when unknown (the curves are then left out). */
  history: EpochRecord[];
  best?: { epoch: number; valAcc: number };
  final?: { epoch: number; valAcc: number };
  /** Metrics of the evaluated head (the best epoch's). */
  eval: EvalResult;
  /** Key facts shown in a table (run dir, cache, fingerprint, options...). */
  facts?: [string, string][];
  /** The run's sweep (sweep.json), when a sweep wrote the run. */
  sweep?: SweepView;
  /** The most confident mistakes; the section is left out when undefined. */
  mistakes?: MistakesView;
  /** The evaluated images took part in choosing the head (its epoch, or the sweep's trial): say its accuracy is optimistic. */
  choseOnThisData?: boolean;
}

function lossSpec(h: EpochRecord[]): Spec {
  const values = h.flatMap((r) => [
    { epoch: r.epoch, loss: r.trainLoss, set: 'train' },
    { epoch: r.epoch, loss: r.valLoss, set: 'val' },
  ]);
  return {
    ...base,
    title: 'Loss per epoch',
    width: 400,
    height: 240,
    data: { values },
    mark: { type: 'line', point: h.length <= 60 },
    encoding: {
      x: { field: 'epoch', type: 'quantitative', axis: { tickMinStep: 1 }, scale: { domain: [1, Math.max(2, h.length)] } },
      y: { field: 'loss', type: 'quantitative', title: 'cross-entropy' },
      color: { field: 'set', type: 'nominal', title: null, scale: { domain: ['train', 'val'], range: ['#4c78a8', '#f58518'] } },
    },
  };
}

/** `cv`: the per-epoch score is cross-validated accuracy on train (a sweep that chose by CV), not val accuracy. */
function accSpec(h: EpochRecord[], best?: { epoch: number; valAcc: number }, cv = false): Spec {
  const layers: Spec[] = [
    {
      data: { values: h.map((r) => ({ epoch: r.epoch, acc: r.valAcc })) },
      mark: { type: 'line', color: '#f58518', point: h.length <= 60 ? { color: '#f58518' } : false },
      encoding: {
        x: { field: 'epoch', type: 'quantitative', axis: { tickMinStep: 1 }, scale: { domain: [1, Math.max(2, h.length)] } },
        y: { field: 'acc', type: 'quantitative', title: cv ? 'CV accuracy' : 'val accuracy', axis: { format: '.0%' } },
      },
    },
  ];
  if (best) {
    layers.push({
      data: { values: [{ epoch: best.epoch, acc: best.valAcc, label: `best ${pct(best.valAcc)} @ ${best.epoch}` }] },
      layer: [
        { mark: { type: 'point', shape: 'diamond', size: 120, filled: true, color: '#54a24b' }, encoding: { x: { field: 'epoch', type: 'quantitative' }, y: { field: 'acc', type: 'quantitative' } } },
        { mark: { type: 'text', dy: -12, color: '#54a24b', fontWeight: 'bold' }, encoding: { x: { field: 'epoch', type: 'quantitative' }, y: { field: 'acc', type: 'quantitative' }, text: { field: 'label' } } },
      ],
    });
  }
  return { ...base, title: cv ? 'Cross-validated accuracy per epoch' : 'Validation accuracy per epoch', width: 400, height: 240, layer: layers };
}

function confusionSpec(e: EvalResult): Spec {
  const nc = e.classes.length;
  const values: { truth: string; predicted: string; count: number; share: number }[] = [];
  for (let t = 0; t < nc; t++) {
    const rowN = e.confusion[t]!.reduce((s, v) => s + v, 0);
    for (let p = 0; p < nc; p++) {
      const count = e.confusion[t]![p]!;
      values.push({ truth: e.classes[t]!, predicted: e.classes[p]!, count, share: rowN ? count / rowN : 0 });
    }
  }
  const cell = Math.max(8, Math.min(40, Math.floor(640 / nc)));
  const order = e.classes;
  const layer: Spec[] = [
    {
      mark: 'rect',
      encoding: {
        color: { field: 'share', type: 'quantitative', title: 'share of row', scale: { domain: [0, 1], range: ['#f7fbff', '#08306b'] }, legend: { format: '.0%' } },
      },
    },
  ];
  if (nc <= 30) {
    layer.push({
      mark: { type: 'text', fontSize: Math.min(12, cell / 2.5) },
      transform: [{ filter: 'datum.count > 0' }],
      encoding: {
        text: { field: 'count', type: 'quantitative' },
        color: { condition: { test: 'datum.share > 0.5', value: 'white' }, value: 'black' },
      },
    });
  }
  return {
    ...base,
    title: 'Confusion matrix (rows: true class, columns: predicted)',
    data: { values },
    width: { step: cell },
    height: { step: cell },
    encoding: {
      x: { field: 'predicted', type: 'nominal', sort: order, axis: { labelAngle: -45, labelLimit: 200 } },
      y: { field: 'truth', type: 'nominal', sort: order, title: 'true', axis: { labelLimit: 200 } },
    },
    layer,
  };
}

function table(head: string[], rows: string[][], cls = ''): string {
  return `<table${cls ? ` class="${cls}"` : ''}><thead><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

const css = `
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1100px;color:#222;padding:0 16px}
h1{font-size:1.5em;margin-bottom:4px} h2{font-size:1.15em;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
.summary{display:flex;gap:16px;flex-wrap:wrap;margin:16px 0}
.card{border:1px solid #ddd;border-radius:6px;padding:10px 14px;min-width:140px}
.card b{display:block;font-size:1.5em}
.charts{display:flex;flex-wrap:wrap;gap:16px} .charts figure{margin:0} svg{max-width:100%;height:auto}
table{border-collapse:collapse;font-size:.9em;margin:8px 0} td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f4f4f4} td:first-child,th:first-child{text-align:left}
.confusion td.diag{background:#e3eefa;font-weight:bold}
.facts th,.facts td{text-align:left} .facts td{overflow-wrap:anywhere}
.muted{color:#666;font-size:.9em} .scroll{overflow-x:auto;max-width:100%}
.note{background:#fff8e1;border-left:3px solid #f0b400;padding:6px 10px;font-size:.9em}
details{margin:8px 0} h3{font-size:1em;margin:18px 0 4px} code{font-size:.95em}
.panels{display:flex;flex-wrap:wrap;gap:8px 20px;align-items:flex-start} .panels figure{margin:0}
.key{white-space:nowrap;margin-right:10px} .key svg{vertical-align:middle}
.trials td.trial{text-align:left;font-family:monospace;font-size:.95em} .trials tr.chosen td{background:#eaf6ea} .trials tr.seed td{background:#fdeaea}
.mistakes{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:12px}
.mistake{margin:0;border:1px solid #ddd;border-radius:6px;padding:8px;font-size:.85em;overflow:hidden}
.thumb{width:128px;height:128px;display:flex;align-items:center;justify-content:center;margin:0 auto 6px;background:#f4f4f4}
.thumb img{max-width:128px;max-height:128px;display:block}
.thumb.missing{color:#888;text-align:center;font-size:.9em;border:1px dashed #bbb}
.mistake figcaption{line-height:1.35} .mistake .truth{color:#2a6e2a} .mistake .pred{color:#b3261e;font-weight:bold}
.mistake .file{color:#777;display:block;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}`;

function mistakesSection(m: MistakesView, n: number): string {
  if (m.wrong === 0) return `<h2>Most confident mistakes</h2><p>None: the head classifies all ${n} images correctly.</p>`;
  const missing = m.items.filter((x) => !x.thumbnail);
  const note = missing.length
    ? `<p class="note">${missing.length} of these images could not be shown: ${missing
        .slice(0, 5)
        .map((x) => `${esc(x.file)} (${esc(x.problem ?? 'unreadable')})`)
        .join('; ')}${missing.length > 5 ? '; …' : ''}.</p>`
    : '';
  const cards = m.items.map((x) => {
    const name = x.file.split(/[\\/]/).pop() || x.file;
    const thumb = x.thumbnail
      ? `<div class="thumb"><img src="${x.thumbnail}" alt="${esc(`${x.truth} predicted as ${x.predicted}`)}"></div>`
      : `<div class="thumb missing" title="${esc(x.problem ?? '')}">image not<br>available</div>`;
    return `<figure class="mistake">${thumb}<figcaption><span class="pred">${esc(x.predicted)} ${pct(x.prob)}</span><br><span class="truth">true: ${esc(x.truth)} (${pct(x.trueProb)})</span><span class="file" title="${esc(x.file)}">${esc(name)}</span></figcaption></figure>`;
  });
  return `<h2>Most confident mistakes</h2>
<p class="muted">${m.items.length < m.wrong ? `The ${m.items.length} of ${m.wrong} wrong images the head was surest about` : `The ${m.wrong} wrong image${m.wrong === 1 ? '' : 's'}`}, most confident first: its answer with its probability (red), the true class with the probability it got (green).</p>
${note}<div class="mistakes">${cards.join('')}</div>`;
}

/** The report as one HTML document. */
export async function renderReport(r: ReportInput): Promise<string> {
  const e = r.eval;
  // One epoch (a full-batch L-BFGS head) is no curve.
  const h = r.history;
  const curves = h.length > 1;
  const [lossSvg, accSvg, confSvg, sweepHtml] = await Promise.all([
    curves ? toSvg(lossSpec(h)) : Promise.resolve(''),
    curves ? toSvg(accSpec(h, r.best, r.sweep?.selection.kind === 'cv')) : Promise.resolve(''),
    toSvg(confusionSpec(e)),
    r.sweep ? renderSweepSection(r.sweep) : Promise.resolve(''),
  ]);
  const cards: [string, string][] = [];
  const sw = r.sweep;
  if (sw) {
    cards.push([`selection score of the chosen trial (${sw.selection.kind === 'cv' ? 'cross-validated on train' : 'val'})`, pct(sw.trials[sw.winner]!.score)]);
    if (sw.seedRecipe >= 0) cards.push(['selection score of the seed recipe', pct(sw.trials[sw.seedRecipe]!.score)]);
  } else {
    if (r.best) cards.push([`best val accuracy (epoch ${r.best.epoch})`, pct(r.best.valAcc)]);
    if (r.final) cards.push([`final val accuracy (epoch ${r.final.epoch})`, pct(r.final.valAcc)]);
  }
  cards.push([`accuracy of the ${sw ? 'chosen' : 'best'} head on ${e.n} images`, pct(e.accuracy)], [`top-${e.topK} accuracy`, pct(e.topKAccuracy)], ['mean loss', e.loss.toFixed(4)]);
  const honesty = r.choseOnThisData
    ? `<p class="note">These images took part in choosing the head (${sw ? 'the sweep chose its trial on them' : 'its epoch was chosen on them'}), so its accuracy on them is optimistic; <code>viewprobe eval --run RUN --data DATA</code> on images that took no part in choosing gives the number to trust.</p>`
    : '';

  const perClass = table(
    ['class', 'images', 'correct', 'accuracy'],
    e.perClass.map((c) => [esc(c.label), String(c.n), String(c.correct), pct(c.accuracy)]),
  );
  const confTable = `<table class="confusion"><thead><tr><th>true \\ predicted</th>${e.classes.map((c) => `<th>${esc(c)}</th>`).join('')}</tr></thead><tbody>${e.classes
    .map((t, i) => `<tr><td>${esc(t)}</td>${e.confusion[i]!.map((v, j) => `<td${i === j ? ' class="diag"' : ''}>${v}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
  const histTable = h.length
    ? table(
        ['epoch', 'train loss', 'val loss', 'val accuracy', 'lr'],
        h.map((x) => [String(x.epoch), x.trainLoss.toFixed(4), x.valLoss.toFixed(4), pct(x.valAcc), x.lr.toExponential()]),
      )
    : '';
  const facts = r.facts?.length
    ? `<table class="facts"><tbody>${r.facts.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('')}</tbody></table>`
    : '';
  const curvesTitle = sw
    ? `<h2>Training curves of the chosen trial</h2><p class="muted">Its "val" curve is the selection score per epoch: ${esc(sw.selection.label)}.</p>`
    : '<h2>Training curves</h2>';

  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(r.title)}</title><style>${css}</style></head>
<body>
<h1>${esc(r.title)}</h1>
<p class="muted">Metrics on ${esc(r.dataLabel)}.</p>
<div class="summary">${cards.map(([k, v]) => `<div class="card"><b>${v}</b>${esc(k)}</div>`).join('')}</div>
${honesty}
${sweepHtml}
${r.mistakes ? mistakesSection(r.mistakes, e.n) : ''}
${curves ? `${curvesTitle}<div class="charts"><figure>${lossSvg}</figure><figure>${accSvg}</figure></div>` : ''}
<h2>Confusion matrix</h2>
<figure>${confSvg}</figure>
<h2>Per-class accuracy</h2>
${perClass}
<details><summary>Confusion matrix as a table</summary><div class="scroll">${confTable}</div></details>
${h.length ? `<h2>History</h2><details><summary>${h.length} epoch${h.length === 1 ? '' : 's'}</summary>${histTable}</details>` : ''}
${facts ? `<h2>Run</h2>${facts}` : ''}
</body></html>
`;
}
