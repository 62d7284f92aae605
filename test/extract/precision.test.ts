// --precision int8 through the CLI, on the tiny data set with the random ResNet18: the calibration
// stored in the cache and named by its fingerprint, refusals between precisions, resume, shards and
// merge, and the run's calibration in train / predict / eval --data / embed.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { calibrationHash, readCalibration } from '../../src/cache/calibration.js';
import { FeatureCache } from '../../src/cache/store.js';
import type { Fingerprint, SplitFeatures } from '../../src/cache/types.js';
import { runCli } from '../helpers/cli.js';
import { describeShared, sharedPath } from '../helpers/shared.js';

const tmp = mkdtempSync(join(tmpdir(), 'vp-int8-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function read(dir: string): Promise<{ fp: Fingerprint; train: SplitFeatures }> {
  const c = await FeatureCache.open(dir, { readOnly: true });
  try {
    return { fp: c.fingerprint()!, train: c.readSplit('train') };
  } finally {
    await c.close();
  }
}

describeShared('--precision int8 (CLI)', ['data/tiny/train.txt', 'data/tiny/val.txt', 'weights/resnet18-random.safetensors'], () => {
  const weights = sharedPath('weights/resnet18-random.safetensors');
  const train = sharedPath('data/tiny/train.txt');
  const val = sharedPath('data/tiny/val.txt');
  const extract = (cache: string, ...more: string[]) => runCli(['extract', '--train', train, '--cache', cache, '--weights', weights, ...more]);
  const int8 = join(tmp, 'int8');

  beforeAll(() => {
    // 8 calibration images instead of 32 keep the test quick; the shards below ask the same.
    const r = extract(int8, '--val', val, '--views', '1', '--precision', 'int8', '--calibration-images', '8');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/int8: calibrating on the clean views of 8 training images \(percentile:99\.999\)/);
    expect(r.stderr).toMatch(/backbone: resnet18 int8/);
  });

  it('the cache keeps its calibration beside the features, and its fingerprint names it', async () => {
    const { fp } = await read(int8);
    const cal = readCalibration(int8);
    expect(fp.precision).toBe('int8');
    expect(fp.calibration).toBe(calibrationHash(cal));
    expect(cal).toMatchObject({ arch: 'resnet18', preset: 'seed', inputSize: 244, method: 'percentile:99.999' });
    expect(cal.images).toHaveLength(8);
    const info = runCli(['cache', 'info', '--cache', int8]);
    expect(info.stdout).toMatch(/, int8 \(calibration [0-9a-f]{12}\)/);
  });

  it('an int8 cache refuses an fp32 extract, and an fp32 cache an int8 one, naming the difference before any work', () => {
    const r = extract(int8, '--views', '1');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/holds features made with other settings: precision: this cache holds int8, you asked fp32/);
    const fp32 = join(tmp, 'fp32');
    expect(runCli(['extract', '--val', val, '--cache', fp32, '--weights', weights]).status).toBe(0);
    const back = extract(fp32, '--views', '1', '--precision', 'int8');
    expect(back.status).toBe(2);
    expect(back.stderr).toMatch(/precision: this cache holds fp32, you asked int8/);
    expect(back.stderr).not.toMatch(/calibrating|backbone:/);
  });

  it('a resumed int8 extract reuses the stored calibration: the same features as one run with it, and a changed file is refused', async () => {
    const before = readFileSync(join(int8, 'calibration.json'));
    const more = extract(int8, '--views', '3', '--precision', 'int8');
    expect(more.status, more.stderr).toBe(0);
    expect(more.stderr).toMatch(/int8: reusing the calibration stored in /);
    expect(more.stderr).not.toMatch(/calibrating/);
    expect(readFileSync(join(int8, 'calibration.json'))).toEqual(before);
    const otherMethod = extract(int8, '--views', '3', '--precision', 'int8', '--calibration-method', 'minmax');
    expect(otherMethod.status).toBe(2);
    expect(otherMethod.stderr).toMatch(/was calibrated with percentile:99\.999 on 8 images, and one cache holds one calibration/);

    const once = join(tmp, 'once');
    const r = extract(once, '--views', '3', '--precision', 'int8', '--calibration', join(int8, 'calibration.json'));
    expect(r.status, r.stderr).toBe(0);
    const [a, b] = [await read(int8), await read(once)];
    expect(b.fp).toEqual(a.fp);
    expect(b.train.views).toBe(3);
    // Integer arithmetic: the int8 features do not depend on which batch a view ran in.
    expect(Buffer.from(b.train.aug.buffer).equals(Buffer.from(a.train.aug.buffer))).toBe(true);
    expect(Buffer.from(b.train.clean!.buffer).equals(Buffer.from(a.train.clean!.buffer))).toBe(true);

    const cal = readCalibration(once);
    cal.ranges.nchw = [cal.ranges.nchw![0] * 2, cal.ranges.nchw![1]];
    writeFileSync(join(once, 'calibration.json'), JSON.stringify(cal));
    const tampered = extract(once, '--views', '3', '--precision', 'int8');
    expect(tampered.status).toBe(2);
    expect(tampered.stderr).toMatch(/calibration\.json is not the calibration these features were made with/);
    const other = extract(int8, '--views', '3', '--precision', 'int8', '--calibration', join(once, 'calibration.json'));
    expect(other.status).toBe(2);
    expect(other.stderr).toMatch(/calibration: this cache holds [0-9a-f]{12}…, you asked [0-9a-f]{12}…/);
  });

  it('shards calibrate alike (on the whole training list, by content hash) and merge with their calibration', async () => {
    const shards = [0, 1].map((i) => join(tmp, `shard-${i}`));
    shards.forEach((dir, i) => {
      const r = extract(dir, '--views', '1', '--precision', 'int8', '--calibration-images', '8', '--shard', `${i}/2`);
      expect(r.status, r.stderr).toBe(0);
    });
    expect(readCalibration(shards[0]!)).toEqual(readCalibration(int8));
    expect(readCalibration(shards[1]!)).toEqual(readCalibration(int8));
    const merged = join(tmp, 'merged');
    const m = runCli(['cache', 'merge', merged, ...shards]);
    expect(m.status, m.stderr).toBe(0);
    expect(readCalibration(merged, (await read(int8)).fp.calibration)).toEqual(readCalibration(int8));
    expect((await read(merged)).fp).toEqual((await read(int8)).fp);
  });

  it('predict, eval --data and embed use the run\'s calibration; another precision needs its own cache', async () => {
    const run = join(tmp, 'run');
    const t = runCli(['train', '--cache', int8, '--out', run, '--epochs', '3']);
    expect(t.status, t.stderr).toBe(0);
    const img = sharedPath('data/tiny/val/beignets/1222571.jpg');
    const p = runCli(['predict', '--run', run, '--json', img]);
    expect(p.status, p.stderr).toBe(0);
    expect(p.stderr).toMatch(/backbone: resnet18 int8/);
    const p32 = runCli(['predict', '--run', run, '--precision', 'fp32', img]);
    expect(p32.status, p32.stderr).toBe(0);
    expect(p32.stderr).not.toMatch(/int8/);

    const e = runCli(['eval', '--run', run, '--data', val, '--json']);
    expect(e.status, e.stderr).toBe(0);
    expect(e.stderr).toMatch(/backbone: resnet18 int8/);
    const e32 = runCli(['eval', '--run', run, '--data', val, '--precision', 'fp32']);
    expect(e32.status).toBe(2);
    expect(e32.stderr).toMatch(/precision: this cache holds int8, you asked fp32/);
    // Into another cache: the calibration goes along, so that cache is complete on its own.
    const other = join(tmp, 'evalcache');
    const eo = runCli(['eval', '--run', run, '--data', val, '--cache', other]);
    expect(eo.status, eo.stderr).toBe(0);
    expect(readCalibration(other, (await read(int8)).fp.calibration)).toEqual(readCalibration(int8));

    // embed with the cache's calibration gives exactly the clean-view features extract stored.
    const noCal = runCli(['embed', '--weights', weights, '--precision', 'int8', img]);
    expect(noCal.status).toBe(2);
    expect(noCal.stderr).toMatch(/needs --calibration FILE\|CACHE/);
    const trainImg = sharedPath('data/tiny/train/beet_salad/1193418.jpg');
    const emb = runCli(['embed', '--weights', weights, '--precision', 'int8', '--calibration', int8, '--json', trainImg]);
    expect(emb.status, emb.stderr).toBe(0);
    const f = Float32Array.from((JSON.parse(emb.stdout) as { features: number[] }[])[0]!.features);
    const { train: s } = await read(int8);
    const row = s.paths.indexOf(trainImg);
    expect(row).toBeGreaterThanOrEqual(0);
    expect(Array.from(f)).toEqual(Array.from(s.clean!.subarray(row * s.dim, (row + 1) * s.dim)));
  });

  it('an fp32 run predicts in int8 only with a calibration given', () => {
    const fp32run = join(tmp, 'fp32run');
    const fp32 = join(tmp, 'fp32b');
    expect(runCli(['extract', '--train', train, '--val', val, '--cache', fp32, '--weights', weights, '--views', '0']).status).toBe(0);
    expect(runCli(['train', '--cache', fp32, '--out', fp32run, '--epochs', '2', '--views', 'clean']).status).toBe(0);
    const img = sharedPath('data/tiny/val/beignets/1222571.jpg');
    const no = runCli(['predict', '--run', fp32run, '--precision', 'int8', img]);
    expect(no.status).toBe(2);
    expect(no.stderr).toMatch(/trained on fp32 features, so it has no int8 calibration: pass --calibration/);
    const yes = runCli(['predict', '--run', fp32run, '--precision', 'int8', '--calibration', int8, img]);
    expect(yes.status, yes.stderr).toBe(0);
  });

  it('an int8 run whose cache is gone is refused, naming the cache and what to pass', async () => {
    const moved = join(tmp, 'int8-moved');
    const gone = join(tmp, 'int8-gone-run');
    cpSync(int8, moved, { recursive: true });
    expect(runCli(['train', '--cache', moved, '--out', gone, '--epochs', '2']).status).toBe(0);
    rmSync(moved, { recursive: true });
    const r = runCli(['predict', '--run', gone, '--weights', weights, sharedPath('data/tiny/val/beignets/1222571.jpg')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`kept in its cache ${moved}, which is gone: pass --calibration FILE`);
    expect(r.stderr).toMatch(/or --precision fp32/);
  });
});
