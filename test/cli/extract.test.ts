// `viewprobe extract` as a command: the batch is checked against memory before a cache exists, and
// the summary is the result (stdout) while the backbone line and progress are the log (stderr).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { checkBatchMemory } from '../../src/cli/extract.js';
import { describeShared, sharedPath } from '../helpers/shared.js';
import { runCli } from '../helpers/cli.js';

const GiB = 2 ** 30;
const tmp = mkdtempSync(join(tmpdir(), 'vp-extract-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('checkBatchMemory', () => {
  it('lets a CPU batch through while its batches in flight (about 12 MiB a 224 px view) fit in half the memory', () => {
    expect(() => checkBatchMemory(8, 224, 4, true, 24 * GiB)).not.toThrow();
    expect(() => checkBatchMemory(128, 224, 4, true, 24 * GiB)).not.toThrow(); // 128 x 4 x 11.5 MiB = 5.7 GiB
  });

  it('refuses one that would not, saying how much it needs and which batch fits', () => {
    let e: unknown;
    try {
      checkBatchMemory(1024, 224, 4, true, 24 * GiB); // 46 GiB
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(UserError);
    const m = (e as Error).message;
    expect(m).toMatch(/^--batch 1024 would need about 45\.9 GiB \(4 batches in flight of 224 px views\), more than half of this machine's 24 GiB; use --batch (\d+) or less$/);
    const fits = Number(/use --batch (\d+)/.exec(m)![1]);
    expect(fits).toBe(267); // floor(12 GiB / (4 x 224*224*12 B x 20))
    expect(() => checkBatchMemory(fits, 224, 4, true, 24 * GiB)).not.toThrow();
    expect(() => checkBatchMemory(fits + 1, 224, 4, true, 24 * GiB)).toThrow(UserError);
    // more workers in flight, less room per batch
    expect(() => checkBatchMemory(128, 224, 32, true, 24 * GiB)).toThrow(/use --batch 33 or less/);
  });

  it('counts only the input buffers when the activations live on a GPU', () => {
    expect(() => checkBatchMemory(1024, 224, 4, false, 24 * GiB)).not.toThrow(); // 2.3 GiB of inputs
    expect(() => checkBatchMemory(1024, 224, 4, false, 4 * GiB)).toThrow(/--batch 1024 would need about 2\.3 GiB/);
  });
});

describeShared('extract through the CLI', ['data/tiny/train.txt', 'weights/resnet18-random.safetensors'], () => {
  const weights = sharedPath('weights/resnet18-random.safetensors');

  it('prints its summary on stdout and only the log on stderr', () => {
    const cache = join(tmp, 'cache');
    const r = runCli(['extract', '--val', sharedPath('data/tiny/val.txt'), '--cache', cache, '--weights', weights, '--engine', 'onnx']);
    expect(r.status, r.stderr).toBe(0);
    const out = r.stdout.split('\n').filter((l) => l !== '');
    expect(out[0]).toMatch(/^extract: \d+ images, \d+ views wanted: \d+ extracted, 0 already cached, 0 images failed$/);
    expect(out[1]).toMatch(/^ {2}[\d.]+ s, [\d.]+ views\/s on onnx \(.*\); cache /);
    expect(out).toHaveLength(2);
    expect(r.stderr).toMatch(/^backbone: resnet18 /m);
    expect(r.stderr).not.toMatch(/^extract: \d+ images/m);
    expect(r.stderr).not.toMatch(/views\/s on onnx/);
  });

  it('with --json: the JSON on stdout, the human summary on stderr', () => {
    const cache = join(tmp, 'cache');
    const r = runCli(['extract', '--val', sharedPath('data/tiny/val.txt'), '--cache', cache, '--weights', weights, '--engine', 'onnx', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.split('\n').filter((l) => l !== '');
    expect(lines).toHaveLength(1);
    const s = JSON.parse(lines[0]!) as { extracted: number; alreadyCached: number };
    expect(s.extracted).toBe(0);
    expect(s.alreadyCached).toBeGreaterThan(0);
    expect(r.stderr).toMatch(/^extract: \d+ images, \d+ views wanted: 0 extracted/m);
  });

  // 1024 views of 244 px on the CPU: about 14 GiB per batch in flight, and one thread gives at least 2 in flight
  it.skipIf(totalmem() > 56 * GiB)('refuses a --batch whose batches in flight would not fit in memory, before a cache exists', () => {
    const cache = join(tmp, 'cache-big-batch');
    const r = runCli(['extract', '--val', sharedPath('data/tiny/val.txt'), '--cache', cache, '--weights', weights, '--engine', 'onnx', '--device', 'cpu', '--threads', '1', '--batch', '1024']);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/^viewprobe: --batch 1024 would need about [\d.]+ GiB \(\d+ batches in flight of 244 px views\).* use --batch \d+ or less$/m);
    expect(existsSync(cache)).toBe(false);
  });
});
