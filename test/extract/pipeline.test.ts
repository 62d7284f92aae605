// The extract pipeline end to end through the CLI on ../shared/data/tiny (24 train, 12 val images)
// with the random ResNet18: counts, incremental reruns, and a SIGKILL in the middle.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { FeatureCache } from '../../src/cache/store.js';
import { describeShared, sharedPath } from '../helpers/shared.js';
import { runCliJson, startCli, waitForCommittedViews } from '../helpers/cli.js';

interface Summary {
  images: number;
  views: number;
  extracted: number;
  alreadyCached: number;
  failed: unknown[];
  engine: string;
}

const tmp = mkdtempSync(join(tmpdir(), 'vp-extract-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describeShared('extract on tiny', ['data/tiny/train.txt', 'weights/resnet18-random.safetensors'], () => {
  const train = sharedPath('data/tiny/train.txt');
  const val = sharedPath('data/tiny/val.txt');
  const weights = sharedPath('weights/resnet18-random.safetensors');
  const base = ['extract', '--train', train, '--val', val, '--weights', weights, '--engine', 'onnx', '--threads', '2'];
  const full = join(tmp, 'full');

  async function readAll(dir: string, maxViews?: number) {
    const c = await FeatureCache.open(dir, { readOnly: true });
    try {
      return { train: c.readSplit('train', { maxViews }), val: c.readSplit('val') };
    } finally {
      await c.close();
    }
  }

  it('stores images x (views + clean) + val views, and a rerun does no backbone work', async () => {
    const s = runCliJson<Summary>([...base, '--cache', full, '--views', '2', '--batch', '16']);
    expect(s.failed).toEqual([]);
    expect(s.images).toBe(36);
    expect(s.extracted).toBe(24 * (2 + 1) + 12);
    const { train: tr, val: va } = await readAll(full);
    expect(tr.labels.length).toBe(24);
    expect(tr.views).toBe(2);
    expect(tr.dim).toBe(512);
    expect(tr.aug.length).toBe(24 * 2 * 512);
    expect(tr.clean?.length).toBe(24 * 512);
    expect(va.labels.length).toBe(12);
    expect(va.clean?.length).toBe(12 * 512);
    // augmented views differ from each other and from the clean view
    expect(tr.aug.subarray(0, 512)).not.toEqual(tr.aug.subarray(512, 1024));
    expect(tr.aug.subarray(0, 512)).not.toEqual(tr.clean!.subarray(0, 512));

    const again = runCliJson<Summary>([...base, '--cache', full, '--views', '2', '--batch', '16']);
    expect(again.extracted).toBe(0);
    expect(again.alreadyCached).toBe(24 * 3 + 12);
  });

  it('raising K extracts only the new views and keeps the old ones', async () => {
    const before = await readAll(full);
    const s = runCliJson<Summary>([...base, '--cache', full, '--views', '3', '--batch', '16']);
    expect(s.extracted).toBe(24);
    const after = await readAll(full);
    expect(after.train.views).toBe(3);
    for (let i = 0; i < 24; i++) {
      for (let v = 0; v < 2; v++) {
        const a = after.train.aug.subarray((i * 3 + v) * 512, (i * 3 + v + 1) * 512);
        const b = before.train.aug.subarray((i * 2 + v) * 512, (i * 2 + v + 1) * 512);
        expect(a).toEqual(b);
      }
    }
  });

  it('a SIGKILL after the first committed batch, then a rerun, gives the same features as an uninterrupted run', async () => {
    const killed = join(tmp, 'killed');
    const args = [...base, '--cache', killed, '--views', '2', '--batch', '4', '--concurrency', '2'];
    const child = startCli(args);
    let stderr = '';
    child.stderr!.on('data', (d) => { stderr += String(d); });
    const exited = new Promise<void>((r) => child.on('exit', () => r()));
    const committed = await waitForCommittedViews(killed, child, 120_000);
    expect(child.exitCode, stderr).toBeNull();
    child.kill('SIGKILL');
    await exited;
    expect(committed).toBeGreaterThan(0);

    const partial = await readAll(killed);
    expect(partial.train.labels.length + partial.val.labels.length).toBeLessThan(36);

    const s = runCliJson<Summary>(args);
    expect(s.extracted).toBeGreaterThan(0);
    expect(s.extracted).toBeLessThan(24 * 3 + 12);
    const resumed = await readAll(killed);
    const reference = await readAll(full, 2);
    expect(resumed.train.paths).toEqual(reference.train.paths);
    expect(resumed.train.views).toBe(2);
    expect(maxRelDiff(resumed.train.aug, reference.train.aug)).toBeLessThan(1e-6);
    expect(maxRelDiff(resumed.train.clean!, reference.train.clean!)).toBeLessThan(1e-6);
    expect(maxRelDiff(resumed.val.clean!, reference.val.clean!)).toBeLessThan(1e-6);
  });
});

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}
