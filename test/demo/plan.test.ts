import { describe, expect, it } from 'vitest';
import { DEMO_PER_CLASS, DEMO_VIEWS } from '../../src/demo/main.js';
import { EXTRACT_BUDGET_S, fitToBudget, formatDuration, resultTable, slowestRate, viewsToExtract, type ViewPlan } from '../../src/demo/plan.js';

const plan = (evalViews: number, perClass = DEMO_PER_CLASS): ViewPlan => ({ classes: 10, perClass, k: DEMO_VIEWS, evalViews });

describe('the demo plan', () => {
  it('counts K augmented + 1 clean view per training image and the eval views of val and test images', () => {
    expect(viewsToExtract({ classes: 10, perClass: { train: 16, val: 16, test: 26 }, k: 4, evalViews: 2 }))
      .toEqual({ train: 800, val: 320, test: 520, total: 1640 });
  });

  it('the slowest machine: 7 views/s for ResNet50 at 244 px, scaled by backbone cost and pixels', () => {
    expect(slowestRate('resnet50', 244)).toBeCloseTo(7, 10);
    expect(slowestRate('resnet50', 224)).toBeCloseTo(7 * (244 / 224) ** 2, 10);
    expect(slowestRate('resnet18', 244)).toBeCloseTo(14, 10);
    expect(slowestRate(undefined, 244)).toBeCloseTo(7, 10); // unknown: as costly as ResNet50
    expect(slowestRate('resnet101', 288)).toBeLessThan(slowestRate('resnet50', 288));
  });

  it('the shipped counts fit the 5-minute budget as they are, for ResNet50 at 224 px with one test-time view per val/test image', () => {
    for (const evalViews of [1, 2]) {
      const p = plan(evalViews);
      expect(viewsToExtract(p).total / slowestRate('resnet50', 224)).toBeLessThanOrEqual(EXTRACT_BUDGET_S);
      expect(fitToBudget(p, slowestRate('resnet50', 224))).toEqual({ plan: p, scaled: false });
    }
  });

  it('a costlier preset scales every part down by one factor to fit, never below the minimums', () => {
    const rate = slowestRate('resnet50', 320);
    const { plan: fitted, scaled } = fitToBudget(plan(2), rate);
    expect(scaled).toBe(true);
    expect(viewsToExtract(fitted).total / rate).toBeLessThanOrEqual(EXTRACT_BUDGET_S);
    expect(fitted.perClass.train).toBeLessThan(DEMO_PER_CLASS.train);
    expect(fitted.perClass.test / fitted.perClass.train).toBeCloseTo(DEMO_PER_CLASS.test / DEMO_PER_CLASS.train, 0);
    expect(fitToBudget(plan(2), 0.01).plan.perClass).toEqual({ train: 5, val: 5, test: 10 });
  });

  it('formats durations', () => {
    expect(formatDuration(9.6)).toBe('10 s');
    expect(formatDuration(75)).toBe('1 min 15 s');
    expect(formatDuration(300)).toBe('5 min 00 s');
  });

  it('the closing table: both heads, their val score, held-out accuracy with counts, and the gain', () => {
    const lines = resultTable(
      { name: 'seed recipe', description: 'clean view', valScore: 0.619, test: { correct: 175, n: 260, accuracy: 175 / 260 } },
      { name: 'sweep winner', description: 'lbfgs', valScore: 0.706, test: { correct: 189, n: 260, accuracy: 189 / 260 } },
    );
    expect(lines[0]).toMatch(/^head\s+val \(chose it\)\s+held-out test\s+correct \/ images$/);
    expect(lines[1]).toMatch(/^seed recipe\s+61\.9%\s+67\.3%\s+175 \/ 260$/);
    expect(lines[2]).toMatch(/^sweep winner\s+70\.6%\s+72\.7%\s+189 \/ 260$/);
    expect(lines[3]).toMatch(/^gain on the held-out test\s+\+5\.4 points$/);
  });
});
