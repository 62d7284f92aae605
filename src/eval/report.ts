// The HTML report: one self-contained file (inline CSS and SVG, no script, nothing fetched when it is
// opened) with the loss and accuracy curves per epoch, the confusion matrix as pictures, and the tables.
// Charts are vega-lite specs rendered to SVG here in Node by vega's headless View.
import type { EpochRecord } from '../train/loop.js';
import type { EvalResult } from './metrics.js';

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
}

const esc = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

const pct = (v: number | null) => (v === null ? '–' : `${(v * 100).toFixed(1)}%`);

type Spec = Record<string, unknown>;

async function toSvg(spec: Spec): Promise<string> {
  const [vega, vl] = await Promise.all([import('vega'), import('vega-lite')]);
  const compiled = vl.compile(spec as never).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    // Its width/height give the picture its natural size; the page's CSS (max-width:100%) lets it shrink.
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const base = { background: 'white', config: { font: 'sans-serif', view: { stroke: null } } };

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

function accSpec(h: EpochRecord[], best?: { epoch: number; valAcc: number }): Spec {
  const layers: Spec[] = [
    {
      data: { values: h.map((r) => ({ epoch: r.epoch, acc: r.valAcc })) },
      mark: { type: 'line', color: '#f58518', point: h.length <= 60 ? { color: '#f58518' } : false },
      encoding: {
        x: { field: 'epoch', type: 'quantitative', axis: { tickMinStep: 1 }, scale: { domain: [1, Math.max(2, h.length)] } },
        y: { field: 'acc', type: 'quantitative', title: 'val accuracy', axis: { format: '.0%' } },
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
  return { ...base, title: 'Validation accuracy per epoch', width: 400, height: 240, layer: layers };
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
      x: { field: 'predicted', type: 'nominal', sort: order, axis: { labelAngle: -45, labelLimit: 120 } },
      y: { field: 'truth', type: 'nominal', sort: order, title: 'true', axis: { labelLimit: 120 } },
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
.facts th,.facts td{text-align:left}
.muted{color:#666;font-size:.9em}
details{margin:8px 0}`;

/** The report as one HTML document. */
export async function renderReport(r: ReportInput): Promise<string> {
  const e = r.eval;
  const h = r.history;
  const [lossSvg, accSvg, confSvg] = await Promise.all([
    h.length ? toSvg(lossSpec(h)) : Promise.resolve(''),
    h.length ? toSvg(accSpec(h, r.best)) : Promise.resolve(''),
    toSvg(confusionSpec(e)),
  ]);
  const cards: [string, string][] = [];
  if (r.best) cards.push([`best val accuracy (epoch ${r.best.epoch})`, pct(r.best.valAcc)]);
  if (r.final) cards.push([`final val accuracy (epoch ${r.final.epoch})`, pct(r.final.valAcc)]);
  cards.push([`accuracy of the best head on ${e.n} images`, pct(e.accuracy)], [`top-${e.topK} accuracy`, pct(e.topKAccuracy)], ['mean loss', e.loss.toFixed(4)]);

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

  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(r.title)}</title><style>${css}</style></head>
<body>
<h1>${esc(r.title)}</h1>
<p class="muted">Metrics on ${esc(r.dataLabel)}.</p>
<div class="summary">${cards.map(([k, v]) => `<div class="card"><b>${v}</b>${esc(k)}</div>`).join('')}</div>
${h.length ? `<h2>Training curves</h2><div class="charts"><figure>${lossSvg}</figure><figure>${accSvg}</figure></div>` : ''}
<h2>Confusion matrix</h2>
<figure>${confSvg}</figure>
<h2>Per-class accuracy</h2>
${perClass}
<details><summary>Confusion matrix as a table</summary>${confTable}</details>
${h.length ? `<h2>History</h2><details><summary>${h.length} epochs</summary>${histTable}</details>` : ''}
${facts ? `<h2>Run</h2>${facts}` : ''}
</body></html>
`;
}
