// The batch queue on its own: buffers in rotation, batches in flight, failures, and never leaving a
// batch inside the engine.
import { describe, expect, it } from 'vitest';
import type { Engine } from '../../src/backbone/engine.js';
import { BatchQueue } from '../../src/extract/batch-queue.js';
import { gatedEngine, stubEngine, type StubStats } from '../helpers/stub-engine.js';

const SIZE = 2; // 2x2 views: 12 floats each

/** A view whose every float is `v` (the stub's first feature is the mean: v). */
const fill = (v: number) => (out: Float32Array, off: number) => out.fill(v, off, off + SIZE * SIZE * 3);

describe('BatchQueue', () => {
  it('gives every view its own features with batches finishing out of order, and holds at most parallel + 1 batches', async () => {
    const { engine, order, maxRunning } = gatedEngine();
    const got = new Map<number, number>();
    const batches: number[] = [];
    const q = new BatchQueue<number>(engine, 3, SIZE, (f, tags) => {
      batches.push(tags.length);
      tags.forEach((t, i) => got.set(t, f[i * 2]!));
    });
    for (let v = 0; v < 12; v++) await q.add(fill(v), v);
    await q.drain();
    expect([...got.keys()].sort((a, b) => a - b)).toEqual([...Array(12).keys()]);
    for (const [t, f] of got) expect(f).toBe(t);
    expect(batches).toEqual([3, 3, 3, 3]);
    expect(order.indexOf(1)).toBeLessThan(order.indexOf(0));
    expect(order.indexOf(3)).toBeLessThan(order.indexOf(2));
    // call 0 is held until call 1 is done, so both were inside at once; never more than parallel (2) + 1
    expect(maxRunning()).toBeGreaterThanOrEqual(2);
    expect(maxRunning()).toBeLessThanOrEqual(3);
  });

  it('after an engine failure: add and drain throw it, nothing more is sent, and settle waits for the batches still inside', async () => {
    let inside = 0;
    let maxInside = 0;
    let calls = 0;
    const engine: Engine = {
      ...stubEngine(3),
      async embed(_input, n) {
        const call = calls++;
        inside++;
        maxInside = Math.max(maxInside, inside);
        await new Promise((r) => setTimeout(r, call === 0 ? 5 : 40));
        inside--;
        if (call === 0) throw new Error('engine broke');
        return new Float32Array(n * 2);
      },
    };
    const q = new BatchQueue<number>(engine, 1, SIZE, () => {});
    let thrown: unknown;
    try {
      for (let v = 0; v < 100; v++) await q.add(fill(v), v);
    } catch (e) {
      thrown = e;
    }
    expect(String(thrown)).toContain('engine broke');
    expect(q.failed).toBe(true);
    await expect(q.add(fill(1), 1)).rejects.toThrow('engine broke');
    await expect(q.drain()).rejects.toThrow('engine broke');
    const sent = calls;
    expect(sent).toBeLessThanOrEqual(4); // the failing batch found at most parallel + 1 in flight
    await q.settle();
    expect(inside).toBe(0);
    expect(calls).toBe(sent);
  });

  it('an onBatch that throws fails the queue the same way', async () => {
    const q = new BatchQueue<number>(stubEngine(), 2, SIZE, () => { throw new Error('disk full'); });
    await q.add(fill(1), 1);
    await q.add(fill(2), 2); // sent; a second buffer is free, so the failure is not known yet
    await expect(q.drain()).rejects.toThrow('disk full');
    expect(q.failed).toBe(true);
    await expect(q.add(fill(3), 3)).rejects.toThrow('disk full');
  });

  it('settle() sends nothing: views gathered but not sent stay unsent', async () => {
    const stats: StubStats = { calls: 0, running: 0, maxRunning: 0, order: [] };
    const q = new BatchQueue<number>(stubEngine(1, () => 1, stats), 4, SIZE, () => {});
    await q.add(fill(1), 1);
    await q.settle();
    expect(stats.calls).toBe(0);
    await q.drain();
    expect(stats.calls).toBe(1);
  });
});
