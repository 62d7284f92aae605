// The one progress printer (src/progress.ts), driven by a fake clock and a fake stream.
import { describe, expect, it } from 'vitest';
import { progressPrinter } from '../src/progress.js';

function fakeStream(isTTY: boolean) {
  const writes: string[] = [];
  return { writes, stream: { isTTY, write: (s: string) => { writes.push(s); return true; } } };
}

describe('progressPrinter', () => {
  it('on a terminal: redraws one line at most every ttyEveryMs with a bar, and done() draws the last state and ends the line', () => {
    let t = 0;
    const { writes, stream } = fakeStream(true);
    const p = progressPrinter({ stream, bar: true, ttyEveryMs: 200, now: () => t });
    p.update('a', 0);
    t = 100;
    p.update('b', 0.5); // too soon: not drawn
    t = 250;
    p.update('c', 0.5);
    t = 260;
    p.update('d', 1);
    p.done();
    expect(writes).toEqual([
      `\r[${'.'.repeat(24)}] a\x1b[K`,
      `\r[${'#'.repeat(12)}${'.'.repeat(12)}] c\x1b[K`,
      `\r[${'#'.repeat(24)}] d\x1b[K`,
      '\n',
    ]);
  });

  it('in a log: a plain line every logEveryMs (and at quarters when asked), and the last state at the end if anything was printed', () => {
    let t = 0;
    const { writes, stream } = fakeStream(false);
    const p = progressPrinter({ stream, logEveryMs: 10_000, logQuarters: true, now: () => t });
    p.update('10%', 0.1);
    p.update('30%', 0.3);
    t = 5000;
    p.update('40%', 0.4);
    t = 10_001;
    p.update('45%', 0.45);
    p.update('99%', 0.99);
    p.update('100%', 1);
    p.done();
    expect(writes).toEqual(['30%\n', '45%\n', '99%\n', '100%\n']);
  });

  it('in a log, a short job prints nothing at all', () => {
    const { writes, stream } = fakeStream(false);
    const p = progressPrinter({ stream, now: () => 0 });
    p.update('x', 0.9);
    p.done();
    expect(writes).toEqual([]);
  });
});
