import { describe, expect, it } from 'vitest';
import { evaluateScores } from '../../src/eval/metrics.js';
import { renderReport, type MistakesView, type ReportInput, type SweepView } from '../../src/eval/report.js';
import { LEADERBOARD_ROWS, variedDimensions } from '../../src/eval/sweep-chart.js';
import { SEED_RECIPE, type TrialSpec } from '../../src/train/sweep-space.js';

const classes = ['apple_pie', 'baklava', 'crème <brûlée> & "co"'];
// 6 images: two per class; one baklava predicted as apple_pie.
const scores = [3, 0, 0, 2, 1, 0, 0, 3, 0, 2, 1, 0, 0, 0, 3, 0, 1, 2];
const labels = [0, 0, 1, 1, 2, 2];

function input(): ReportInput {
  const history = Array.from({ length: 12 }, (_, i) => ({
    epoch: i + 1,
    trainLoss: 1.5 / (i + 1),
    valLoss: 1.6 / (i + 1) + 0.05,
    valAcc: i === 6 ? 0.8317 : 0.5 + i * 0.02,
    lr: 1e-3 * 0.5 ** Math.floor(i / 5),
  }));
  return {
    title: 'viewprobe run runs/demo',
    dataLabel: 'the val split of cache/ (6 images)',
    history,
    best: { epoch: 7, valAcc: 0.8317 },
    final: { epoch: 12, valAcc: 0.72 },
    eval: evaluateScores(scores, labels, classes),
    facts: [['run', 'runs/demo'], ['cache', '/tmp/<cache>']],
  };
}

describe('HTML report', () => {
  it('holds the curves and the confusion matrix as inline SVG, and the numbers', async () => {
    const html = await renderReport(input());
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    const svgs = html.match(/<svg[\s\S]*?<\/svg>/g) ?? [];
    expect(svgs).toHaveLength(3);
    expect(svgs[0]).toContain('Loss per epoch');
    expect(svgs[1]).toContain('Validation accuracy per epoch');
    expect(svgs[1]).toContain('best 83.2% @ 7');
    expect(svgs[2]).toContain('Confusion matrix');
    // Each SVG has a viewBox, so the page CSS can scale it down.
    for (const s of svgs) expect(s).toMatch(/^<svg[^>]*viewBox="[\d. ]+"/);
    // Summary numbers and tables.
    expect(html).toContain('83.2%'); // best
    expect(html).toContain('72.0%'); // final
    expect(html).toContain('<b>83.3%</b>accuracy of the best head on 6 images');
    expect(html).toContain('top-3 accuracy');
    expect(html).toMatch(/<td>baklava<\/td><td>2<\/td><td>1<\/td><td>50\.0%<\/td>/);
    expect(html).toMatch(/<td>apple_pie<\/td><td class="diag">2<\/td><td>0<\/td><td>0<\/td>/);
    expect(html).toContain('<td>7</td><td>0.2143</td>'); // history row of epoch 7
  });

  it('is self-contained: no script, no stylesheet link, no external src or href; images are data: URIs', async () => {
    const html = await renderReport({ ...input(), sweep: sweepView(), mistakes: mistakes() });
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/<link/i);
    const imgs = html.match(/<img\b[^>]*>/gi) ?? [];
    expect(imgs).toHaveLength(2);
    for (const img of imgs) expect(img).toMatch(/^<img src="data:image\/jpeg;base64,[A-Za-z0-9+/=]+"/);
    expect(html).not.toMatch(/\b(?:src|href|xlink:href)\s*=\s*["']?(?:https?:)?\/\//i);
    expect(html).not.toMatch(/url\(\s*["']?(?:https?:)?\/\//i);
    expect(html).not.toMatch(/@import/i);
  });

  it('escapes class names and facts', async () => {
    const html = await renderReport(input());
    expect(html).not.toContain('<brûlée>');
    expect(html).toContain('crème &lt;brûlée&gt; &amp; &quot;co&quot;');
    expect(html).toContain('/tmp/&lt;cache&gt;');
  });

  it('a plain train run: no sweep section, no mistakes section unless given, no note unless the images chose the head', async () => {
    const html = await renderReport(input());
    expect(html).not.toContain('Sweep');
    expect(html).not.toContain('Most confident mistakes');
    expect(html).not.toContain('took part in choosing');
    expect(await renderReport({ ...input(), choseOnThisData: true })).toContain('These images took part in choosing the head (its epoch was chosen on them)');
  });

  it('leaves the curves out when there is no history (e.g. a head evaluated on new data)', async () => {
    const html = await renderReport({ ...input(), history: [], best: undefined, final: undefined });
    expect(html.match(/<svg/g)).toHaveLength(1);
    expect(html).not.toContain('Training curves');
  });
});

/** A sweep: the seed recipe, the seed recipe on the clean view, an L-BFGS path, Adam trials over lr and transform (batch never varies). */
function sweepView(extraAdam = 0): SweepView {
  const specs: TrialSpec[] = [
    { ...SEED_RECIPE },
    { ...SEED_RECIPE, views: 'clean', name: 'seed recipe, clean view' },
    ...[1e-2, 1e-3, 1e-4].map((l2): TrialSpec => ({ solver: 'lbfgs', views: 'clean', transform: 'l2', l2, maxIter: 150 })),
    ...[3e-4, 3e-3, 3e-2].map((lr, i): TrialSpec => ({ ...SEED_RECIPE, name: undefined, lr, transform: i === 1 ? 'std' : 'none' })),
    ...Array.from({ length: extraAdam }, (_, i): TrialSpec => ({ ...SEED_RECIPE, name: undefined, lr: 1e-3 * (1 + i / 10), views: 'clean' })),
  ];
  const scores = specs.map((_, i) => [0.70, 0.72, 0.74, 0.81, 0.76, 0.65, 0.79, 0.71][i] ?? 0.75 + i / 1000);
  const order = scores.map((_, i) => i).sort((a, b) => scores[b]! - scores[a]! || a - b);
  return {
    selection: { kind: 'val', label: 'val accuracy (6 images of the cache\'s val split)' },
    seconds: 3.2, workers: 2, winner: order[0]!, seedRecipe: 0,
    trials: specs.map((spec, i) => ({
      trial: i, rank: order.indexOf(i) + 1, score: scores[i]!, epoch: 1, seconds: 0.1,
      description: `${spec.solver} ${spec.views} ${spec.transform} ${spec.solver === 'lbfgs' ? `l2=${spec.l2}` : `lr=${spec.lr}`}`, spec,
    })),
  };
}

const JPEG = 'data:image/jpeg;base64,/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0Hyc5PTgyPC4zNDL/wAALCAABAAEBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAACf/EABQQAQAAAAAAAAAAAAAAAAAAAAD/2gAIAQEAAD8AKp//2Q==';

function mistakes(): MistakesView {
  return {
    wrong: 3,
    items: [
      { file: '/data/val/baklava/1.jpg', truth: 'baklava', predicted: 'apple_pie', prob: 0.93, trueProb: 0.04, thumbnail: JPEG },
      { file: '/data/val/<gone>/2.jpg', truth: 'apple_pie', predicted: 'crème <brûlée> & "co"', prob: 0.81, trueProb: 0.1, thumbnail: null, problem: 'file not found' },
      { file: 'C:\\photos\\3.jpg', truth: 'apple_pie', predicted: 'baklava', prob: 0.6, trueProb: 0.3, thumbnail: JPEG },
    ],
  };
}

describe('HTML report of a sweep run', () => {
  it('shows the leaderboard as a chart with the chosen trial and the seed recipe marked, and a chart per setting that varied', async () => {
    const v = sweepView();
    const html = await renderReport({ ...input(), sweep: v, choseOnThisData: true });
    expect(html).toContain('<h2>Sweep: 8 trials</h2>');
    expect(html).toContain('Chosen: <b>lbfgs clean l2 l2=0.001</b>, 81.0% — +11.0 points over the seed recipe (adam aug none lr=0.001: 70.0%)');
    expect(html).toContain('These images took part in choosing the head (the sweep chose its trial on them)');
    expect(html).toContain('<b>81.0%</b>selection score of the chosen trial (val)');
    expect(html).toContain('<b>70.0%</b>selection score of the seed recipe');
    const svgs = html.match(/<svg[\s\S]*?<\/svg>/g)!.filter((x) => x.includes('role="graphics-document"') || x.includes('class="marks"'));
    const board = svgs.find((x) => x.includes('Leaderboard'))!;
    expect(board).toContain('Leaderboard: the best 8 of 8 trials');
    expect(board).toContain('#1  lbfgs clean l2 l2=0.001');
    expect(board).toContain('#7  adam aug none lr=0.001 (seed recipe)');
    expect(board).toContain('(seed recipe, clean view)');
    expect(board).toContain('selection score: val accuracy (6 images of the cache');
    // the seed recipe's point (red) and its score as a dashed line; the chosen one in green (each also once in the legend)
    expect(board.match(/fill="#d62728"/g)).toHaveLength(2);
    expect(board.match(/fill="#2ca02c"/g)).toHaveLength(2);
    expect(board).toMatch(/stroke="#d62728"[^>]*stroke-dasharray="5,4"|stroke-dasharray="5,4"[^>]*stroke="#d62728"/);
    // what varied: solver, views, transform, Adam's lr, the L-BFGS penalty; not the batch (all 64)
    const titles = ['head (solver)', 'training views', 'feature transform', 'Adam: learning rate', 'L-BFGS: L2 penalty λ'];
    for (const t of titles) expect(svgs.some((x) => x.includes(`>${t}<`)), t).toBe(true);
    for (const t of ['Adam: batch', 'Adam: epochs', 'Adam: weight decay', 'Adam: label smoothing']) expect(html).not.toContain(t);
    // the leaderboard, one chart per varied setting, and the confusion matrix (no curves: 12 epochs are drawn too)
    expect(svgs).toHaveLength(1 + titles.length + 3);
    expect(html).toContain('<details><summary>All 8 trials</summary>');
    expect(html).toMatch(/<tr class="chosen"><td>1<\/td><td>81\.0%<\/td>/);
    expect(html).toMatch(/<tr class="seed"><td>7<\/td><td>70\.0%<\/td>/);
  });

  it('a sweep that chose by cross-validation: the curve is CV accuracy, and the val split took no part in choosing', async () => {
    const cv = { ...sweepView(), selection: { kind: 'cv' as const, folds: 5, seed: 0, label: '5-fold cross-validated accuracy on the training split' } };
    const html = await renderReport({ ...input(), sweep: cv, choseOnThisData: false });
    expect(html).toContain('selection score of the chosen trial (cross-validated on train)');
    expect(html).toContain('Cross-validated accuracy per epoch');
    expect(html).not.toContain('Validation accuracy per epoch');
    expect(html).not.toContain('took part in choosing');
  });

  it('lists the best trials and always the seed recipe\'s rows, however far down they rank', async () => {
    const v = sweepView(30);
    expect(v.trials[0]!.rank).toBeGreaterThan(LEADERBOARD_ROWS);
    const html = await renderReport({ ...input(), sweep: v });
    const board = html.match(/<svg[\s\S]*?<\/svg>/g)!.find((x) => x.includes('Leaderboard'))!;
    expect(board).toContain(`the best ${LEADERBOARD_ROWS} of ${v.trials.length} trials and the seed recipe`);
    const listed = [...board.matchAll(/>#(\d+) /g)].map((m) => Number(m[1])).sort((a, b) => a - b);
    const seedRanks = [v.trials[0]!.rank, v.trials[1]!.rank].filter((r) => r > LEADERBOARD_ROWS).sort((a, b) => a - b);
    expect(listed).toEqual([...Array.from({ length: LEADERBOARD_ROWS }, (_, i) => i + 1), ...seedRanks]);
  });

  it('a sweep without a seed-recipe trial (a --grid that left it out of an old sweep.json): no seed card, rule or gain', async () => {
    const html = await renderReport({ ...input(), sweep: { ...sweepView(), seedRecipe: -1 } });
    expect(html).toContain('<b>81.0%</b>selection score of the chosen trial (val)');
    expect(html).not.toContain('selection score of the seed recipe');
    expect(html).not.toContain('points over the seed recipe');
    expect(html).not.toContain('stroke-dasharray="5,4"');
    expect(html).not.toContain('the seed recipe\'s score');
  });

  it('finds the settings that varied, and which trials each applies to', () => {
    const dims = variedDimensions(sweepView().trials);
    expect(dims.map((d) => d.title)).toEqual(['head (solver)', 'training views', 'feature transform', 'Adam: learning rate', 'L-BFGS: L2 penalty λ']);
    const lr = dims.find((d) => d.title === 'Adam: learning rate')!;
    expect(lr.kind).toBe('log');
    expect(lr.values).toEqual([1e-3, 1e-3, undefined, undefined, undefined, 3e-4, 3e-3, 3e-2]);
    expect(dims.find((d) => d.title === 'feature transform')!.order).toEqual(['none', 'std', 'l2']);
    // a penalty of 0 has no place on a log axis: categories then
    const zero = variedDimensions([{ spec: { solver: 'lbfgs', views: 'clean', transform: 'none', l2: 0, maxIter: 1 } }, { spec: { solver: 'lbfgs', views: 'clean', transform: 'none', l2: 1e-3, maxIter: 1 } }]);
    expect(zero).toEqual([{ title: 'L-BFGS: L2 penalty λ', kind: 'nominal', values: ['0', '0.001'], order: ['0', '0.001'] }]);
  });
});

describe('HTML report: the most confident mistakes', () => {
  it('shows each as a thumbnail with its predicted and true class and probabilities; an unreadable image gets a placeholder and a note', async () => {
    const html = await renderReport({ ...input(), mistakes: mistakes() });
    expect(html).toContain('<h2>Most confident mistakes</h2>');
    expect(html).toContain('The 3 wrong images, most confident first');
    const cards = html.match(/<figure class="mistake">[\s\S]*?<\/figure>/g)!;
    expect(cards).toHaveLength(3);
    expect(cards[0]).toContain(`<img src="${JPEG}" alt="baklava predicted as apple_pie">`);
    expect(cards[0]).toContain('<span class="pred">apple_pie 93.0%</span>');
    expect(cards[0]).toContain('true: baklava (4.0%)');
    expect(cards[0]).toContain('title="/data/val/baklava/1.jpg">1.jpg</span>');
    expect(cards[1]).not.toContain('<img');
    expect(cards[1]).toContain('<div class="thumb missing" title="file not found">image not<br>available</div>');
    expect(cards[1]).toContain('crème &lt;brûlée&gt; &amp; &quot;co&quot; 81.0%');
    expect(cards[2]).toContain('>3.jpg</span>'); // a Windows path shows its file name too
    expect(html).toContain('<p class="note">1 of these images could not be shown: /data/val/&lt;gone&gt;/2.jpg (file not found).</p>');
    const some = await renderReport({ ...input(), mistakes: { ...mistakes(), wrong: 40 } });
    expect(some).toContain('The 3 of 40 wrong images the head was surest about');
  });

  it('says so when there is no mistake', async () => {
    const html = await renderReport({ ...input(), mistakes: { wrong: 0, items: [] } });
    expect(html).toContain('None: the head classifies all 6 images correctly.');
  });
});
