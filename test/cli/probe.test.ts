// The probe flow through the real CLI on ../shared/data/tiny with the random ResNet18: extract
// --preset probe --pool gem records GeM in the fingerprint and stores the test-time view of each val
// image; train and eval use the average over the views; eval --data and predict extract and average
// the same views; --pool/--layers override the preset's features.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { FeatureCache } from '../../src/cache/store.js';
import { featureSpecFor } from '../../src/cli/feature-options.js';
import { getPreset } from '../../src/image/presets.js';
import { runCli, runCliJson } from '../helpers/cli.js';
import { describeShared, sharedPath } from '../helpers/shared.js';

const tmp = mkdtempSync(join(tmpdir(), 'vp-probe-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

it('the probe preset asks for the average pool of layer4 unless --pool/--layers say otherwise', () => {
  const p = getPreset('probe');
  expect(featureSpecFor(p, {})).toEqual({ pool: ['avg'], layers: [4] });
  expect(featureSpecFor(p, { pool: 'gem' })).toEqual({ pool: ['gem3'], layers: [4] });
  expect(featureSpecFor(getPreset('standard'), { layers: '4,3' })).toEqual({ pool: ['avg'], layers: [4, 3] });
});

describeShared('probe flow on tiny', ['data/tiny/train.txt', 'weights/resnet18-random.safetensors'], () => {
  const weights = sharedPath('weights/resnet18-random.safetensors');
  const cache = join(tmp, 'cache');
  const run = join(tmp, 'run');

  it('extract, train, eval, eval --data and predict', async () => {
    const s = runCliJson<{ extracted: number; failed: unknown[] }>([
      'extract', '--train', sharedPath('data/tiny/train.txt'), '--val', sharedPath('data/tiny/val.txt'), '--weights', weights,
      '--engine', 'onnx', '--threads', '2', '--preset', 'probe', '--views', '2', '--size', '96', '--pool', 'gem', '--cache', cache,
    ]);
    expect(s.failed).toEqual([]);
    expect(s.extracted).toBe(24 * (2 + 1) + 12 * 2);
    const c = await FeatureCache.open(cache, { readOnly: true });
    const info = c.info()!;
    expect(info.fingerprint).toMatchObject({ preset: 'probe', inputSize: 96, pool: ['gem3'], dim: 512 });
    expect(info.fingerprint.layers).toBeUndefined(); // the default, not written
    const val = c.readSplit('val');
    expect(val.ttaViews).toBe(1);
    expect(c.readSplit('train').ttaViews).toBeUndefined();
    await c.close();

    const t = runCliJson<{ best: { valAcc: number } }>(['train', '--cache', cache, '--out', run, '--epochs', '3']);
    expect(t._stderr).toMatch(/12 val images \(clean \+ 1 test-time view, averaged\)/);
    const e = runCliJson<{ eval: { accuracy: number; n: number } }>(['eval', '--run', run]);
    expect(e.eval.n).toBe(12);
    // eval --data on the val list, through a fresh cache: the same views, so the same accuracy.
    const d = runCliJson<{ eval: { accuracy: number; n: number } }>(['eval', '--run', run, '--data', sharedPath('data/tiny/val.txt'), '--cache', join(tmp, 'data-cache'), '--weights', weights]);
    expect(d.eval.n).toBe(12);
    expect(d.eval.accuracy).toBe(e.eval.accuracy);
    const dc = await FeatureCache.open(join(tmp, 'data-cache'), { readOnly: true });
    expect(dc.info()!.counts.ttaViews).toBe(12);
    await dc.close();

    const p = runCli(['predict', '--run', run, '--weights', weights, '--json', sharedPath('data/tiny/val/beignets/1222571.jpg')]);
    expect(p.status, p.stderr).toBe(0);
    expect((JSON.parse(p.stdout) as { top: unknown[] }[])[0]!.top.length).toBe(3);
  }, 300_000);

  it('without --val, training images get the test-time views too (for the cross-validation of sweep)', async () => {
    const cvCache = join(tmp, 'cv-cache');
    const s = runCliJson<{ extracted: number }>(['extract', '--train', sharedPath('data/tiny/train.txt'), '--weights', weights,
      '--engine', 'onnx', '--threads', '2', '--preset', 'probe', '--views', '1', '--size', '64', '--cache', cvCache]);
    expect(s.extracted).toBe(24 * (1 + 1 + 1));
    const c = await FeatureCache.open(cvCache, { readOnly: true });
    expect(c.readSplit('train').ttaViews).toBe(1);
    await c.close();
    const r = runCliJson<{ selection: { kind: string } }>(['sweep', '--cache', cvCache, '--out', join(tmp, 'cv-run'), '--grid', 'epochs=2', '--folds', '3', '--workers', '1']);
    expect(r.selection.kind).toBe('cv');
  }, 300_000);

  it('another --pool on the same cache is refused, naming the field', () => {
    const r = runCli(['extract', '--train', sharedPath('data/tiny/train.txt'), '--weights', weights, '--engine', 'onnx',
      '--preset', 'probe', '--size', '96', '--views', '1', '--cache', cache]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/pool: this cache holds \["gem3"\], you asked \["avg"\]/);
  });
});
