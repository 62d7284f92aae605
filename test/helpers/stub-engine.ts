// A stand-in backbone for pipeline tests that need no weights: fast, deterministic, and able to
// run several batches at once that finish out of order.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import type { Engine } from '../../src/backbone/engine.js';

export interface StubStats {
  calls: number;
  running: number;
  maxRunning: number;
  /** Call numbers in the order the calls finished. */
  order: number[];
}

/**
 * Features: the mean of a view's input and its first value, so views are told apart. With
 * `parallel` > 1 each call waits `delayMs(call)` BEFORE reading its input, so batches finish out of
 * order and a buffer the pipeline refilled too early would show up as wrong features.
 */
export const stubEngine = (parallel = 1, delayMs?: (call: number) => number, stats: StubStats = { calls: 0, running: 0, maxRunning: 0, order: [] }): Engine => ({
  engine: 'onnx', backend: 'stub', device: 'cpu', threads: 1, dim: 2, parallel,
  allocInput: (floats) => new Float32Array(floats),
  async embed(input, n, h, w) {
    const call = stats.calls++;
    stats.maxRunning = Math.max(stats.maxRunning, ++stats.running);
    if (delayMs) await new Promise((r) => setTimeout(r, delayMs(call)));
    const len = h * w * 3;
    const out = new Float32Array(n * 2);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = i * len; j < (i + 1) * len; j++) s += input[j]!;
      out[i * 2] = s / len;
      out[i * 2 + 1] = input[i * len]!;
    }
    stats.running--;
    stats.order.push(call);
    return out;
  },
  async dispose() {},
});

/** `count` small JPEGs without symmetry (so augmented views differ), each different from the others. */
export async function syntheticImages(dir: string, count: number): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const paths: string[] = [];
  for (let k = 0; k < count; k++) {
    const px = Buffer.alloc(64 * 48 * 3);
    for (let i = 0; i < px.length; i++) px[i] = (i * (7 + k) + (i % (192 - k))) & 255; // no symmetry: views differ
    const path = join(dir, `img${k}.jpg`);
    await sharp(px, { raw: { width: 64, height: 48, channels: 3 } }).jpeg().toFile(path);
    paths.push(path);
  }
  return paths;
}


/**
 * The stub engine with `parallel` 2, where each even call waits until the next call has finished:
 * batch 1 finishes before batch 0, 3 before 2, ... whatever the machine's load (a test that needs
 * out-of-order batches must not count on timers). The features are computed after the wait, so a
 * buffer refilled too early shows. The number of calls must be even, or the last one waits forever.
 */
export function gatedEngine(): { engine: Engine; order: number[]; maxRunning: () => number } {
  const base = stubEngine(2);
  const release: (() => void)[] = [];
  const order: number[] = [];
  let calls = 0;
  let running = 0;
  let maxRunning = 0;
  const engine: Engine = {
    ...base,
    async embed(input, n, h, w) {
      const call = calls++;
      maxRunning = Math.max(maxRunning, ++running);
      if (call % 2 === 0) await new Promise<void>((r) => { release[call] = r; });
      const out = await base.embed(input, n, h, w);
      running--;
      order.push(call);
      if (call % 2 === 1) setTimeout(() => release[call - 1]!(), 1);
      return out;
    },
  };
  return { engine, order, maxRunning: () => maxRunning };
}
