import { describe, expect, it } from 'vitest';
import { evaluateScores } from '../../src/eval/metrics.js';
import { renderReport, type ReportInput } from '../../src/eval/report.js';

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

  it('is self-contained: no script, no stylesheet link, no external src or href', async () => {
    const html = await renderReport(input());
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/<link/i);
    expect(html).not.toMatch(/<img/i);
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

  it('leaves the curves out when there is no history (e.g. a head evaluated on new data)', async () => {
    const html = await renderReport({ ...input(), history: [], best: undefined, final: undefined });
    expect(html.match(/<svg/g)).toHaveLength(1);
    expect(html).not.toContain('Training curves');
  });
});
