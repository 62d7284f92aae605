// predict and eval --data through the CLI, on a run trained from a tiny cache (random ResNet18).
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync, mkdirSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeShared, sharedPath } from '../helpers/shared.js';
import { runCli } from '../helpers/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'vp-predict-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describeShared('predict and eval --data', ['data/tiny/train.txt', 'weights/resnet18-random.safetensors', 'weights/resnet50-keras.safetensors'], () => {
  const weights = sharedPath('weights/resnet18-random.safetensors');
  const cache = join(tmp, 'cache');
  const run = join(tmp, 'run');

  beforeAll(() => {
    const ex = runCli(['extract', '--train', sharedPath('data/tiny/train.txt'), '--val', sharedPath('data/tiny/val.txt'),
      '--cache', cache, '--weights', weights, '--views', '1', '--engine', 'onnx']);
    expect(ex.status, ex.stderr).toBe(0);
    const tr = runCli(['train', '--cache', cache, '--out', run, '--epochs', '5']);
    expect(tr.status, tr.stderr).toBe(0);
  });

  it('predict prints top-k with probabilities summing to 1; a bad image gets an error line and the others still print', () => {
    const bad = join(tmp, 'broken.jpg');
    writeFileSync(bad, 'not an image at all');
    const imgs = [sharedPath('data/tiny/val/beignets/1222571.jpg'), bad, sharedPath('data/tiny/val/bibimbap/1004374.jpg')];
    // no --weights: the run's cache remembers them
    const r = runCli(['predict', '--run', run, '--top', '3', '--json', ...imgs]);
    expect(r.status, r.stderr).toBe(3);
    const out = JSON.parse(r.stdout) as { image: string; top?: { label: string; prob: number }[]; error?: string }[];
    expect(out.map((o) => o.image)).toEqual(imgs);
    expect(out[1]!.error).toMatch(/broken\.jpg/);
    expect(r.stderr).toMatch(/broken\.jpg: error:/);
    for (const o of [out[0]!, out[2]!]) {
      expect(o.top).toHaveLength(3);
      const sum = o.top!.reduce((s, t) => s + t.prob, 0);
      expect(sum).toBeCloseTo(1, 5); // 3 classes: top-3 is all of them
      expect(o.top![0]!.prob).toBeGreaterThanOrEqual(o.top![1]!.prob);
      expect(['beet_salad', 'beignets', 'bibimbap']).toContain(o.top![0]!.label);
    }
  });

  it('predict without --json: one line per image on stdout; the backbone line and errors on stderr', () => {
    const bad = join(tmp, 'broken2.jpg');
    writeFileSync(bad, 'not an image either');
    const good = sharedPath('data/tiny/val/bibimbap/1004374.jpg');
    const r = runCli(['predict', '--run', run, '--top', '2', good, bad]);
    expect(r.status, r.stderr).toBe(3);
    expect(r.stdout).toMatch(new RegExp(`^${good}: (beet_salad|beignets|bibimbap) [01]\\.\\d{3}, (beet_salad|beignets|bibimbap) [01]\\.\\d{3}\n$`));
    expect(r.stderr).toMatch(/^backbone: resnet18 /m);
    expect(r.stderr).toMatch(/broken2\.jpg: error:/);
    expect(r.stderr).not.toContain(`${good}:`);
  });

  it('predict refuses weights other than the ones the head was trained on', () => {
    const r = runCli(['predict', '--run', run, '--weights', sharedPath('weights/resnet50-keras.safetensors'), sharedPath('data/tiny/val/beignets/1222571.jpg')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/not the ones .* was trained on/);
  });

  it('eval --data on a new folder extracts its features and the confusion matrix sums to its image count', () => {
    // a folder dataset of 6 val images, same classes
    const dir = join(tmp, 'newdata');
    const pick: [string, string][] = [['beet_salad', '1263247.jpg'], ['beet_salad', '149937.jpg'], ['beignets', '1222571.jpg'],
      ['beignets', '1385293.jpg'], ['bibimbap', '1004374.jpg'], ['bibimbap', '1089605.jpg']];
    for (const [c, f] of pick) {
      mkdirSync(join(dir, c), { recursive: true });
      copyFileSync(sharedPath('data/tiny/val', c, f), join(dir, c, f));
    }
    const r = runCli(['eval', '--run', run, '--data', dir, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const e = JSON.parse(r.stdout) as { eval: { confusion: number[][]; accuracy: number } };
    const total = e.eval.confusion.flat().reduce((s, x) => s + x, 0);
    expect(total).toBe(6);
  });

  it('eval --data with an unreadable image exits 3 and names it; the readable ones are evaluated', () => {
    const dir = join(tmp, 'withbroken');
    mkdirSync(join(dir, 'beignets'), { recursive: true });
    mkdirSync(join(dir, 'bibimbap'), { recursive: true });
    copyFileSync(sharedPath('data/tiny/val/beignets/1222571.jpg'), join(dir, 'beignets', 'ok.jpg'));
    copyFileSync(sharedPath('data/tiny/val/bibimbap/1004374.jpg'), join(dir, 'bibimbap', 'ok.jpg'));
    const bad = join(dir, 'bibimbap', 'broken.jpg');
    writeFileSync(bad, 'not an image at all');
    mkdirSync(join(dir, 'beet_salad'));
    copyFileSync(sharedPath('data/tiny/val/beet_salad/1263247.jpg'), join(dir, 'beet_salad', 'ok.jpg'));
    const r = runCli(['eval', '--run', run, '--data', dir, '--json']);
    expect(r.status, r.stderr).toBe(3);
    expect(r.stderr).toContain(`failed: ${bad}: `);
    const e = JSON.parse(r.stdout) as { eval: { confusion: number[][] }; failed: { path: string; reason: string }[] };
    expect(e.failed.map((f) => f.path)).toEqual([bad]);
    expect(e.eval.confusion.flat().reduce((s, x) => s + x, 0)).toBe(3);
    const text = runCli(['eval', '--run', run, '--data', dir]);
    expect(text.status).toBe(3);
  });

  it('eval --data refuses a dataset whose classes are not the run\'s', () => {
    const dir = join(tmp, 'otherclasses');
    mkdirSync(join(dir, 'pizza'), { recursive: true });
    copyFileSync(sharedPath('data/tiny/val/beignets/1222571.jpg'), join(dir, 'pizza', 'a.jpg'));
    const r = runCli(['eval', '--run', run, '--data', dir]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/classes \[pizza\] are not the run's/);
  });
});

describeShared('train needs only the cache', ['data/tiny/train.txt', 'weights/resnet18-random.safetensors'], () => {
  it('trains after the weights file and every image are gone; predict and eval --data then name the missing weights', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vp-onlycache-'));
    try {
      cpSync(sharedPath('data/tiny'), join(dir, 'tiny'), { recursive: true });
      copyFileSync(sharedPath('weights/resnet18-random.safetensors'), join(dir, 'w.safetensors'));
      const cache = join(dir, 'cache');
      const ex = runCli(['extract', '--train', join(dir, 'tiny', 'train.txt'), '--val', join(dir, 'tiny', 'val.txt'),
        '--cache', cache, '--weights', join(dir, 'w.safetensors'), '--views', '1', '--engine', 'onnx']);
      expect(ex.status, ex.stderr).toBe(0);
      rmSync(join(dir, 'tiny'), { recursive: true });
      rmSync(join(dir, 'w.safetensors'));
      const tr = runCli(['train', '--cache', cache, '--out', join(dir, 'run'), '--epochs', '3', '--json']);
      expect(tr.status, tr.stderr).toBe(0);
      const s = JSON.parse(tr.stdout) as { best: { valAcc: number } };
      expect(s.best.valAcc).toBeGreaterThanOrEqual(0);
      expect(existsSync(join(dir, 'run', 'head-best.json'))).toBe(true);

      // The recorded weights are gone: say so, and how to pass them, instead of fetching the default
      // ResNet18 (the download is pointed at a closed local port, so an attempt would show).
      const env = { VIEWPROBE_HOME: join(dir, 'home'), VIEWPROBE_WEIGHTS_URL: 'http://127.0.0.1:9/w.safetensors' };
      const photo = sharedPath('data/tiny/val/beignets/1222571.jpg');
      const gone = new RegExp(`^viewprobe: the backbone weights this run was trained on are gone: ${join(dir, 'w.safetensors')} \\(recorded in ${join(cache, 'weights.json')}\\); pass that file, or one with sha256 [0-9a-f]{12}…, with --weights FILE$`, 'm');
      const p = runCli(['predict', '--run', join(dir, 'run'), photo], env);
      expect(p.status, p.stderr).toBe(2);
      expect(p.stderr).toMatch(gone);
      expect(p.stderr).not.toMatch(/download/);
      const e = runCli(['eval', '--run', join(dir, 'run'), '--data', sharedPath('data/tiny/val.txt')], env);
      expect(e.status, e.stderr).toBe(2);
      expect(e.stderr).toMatch(gone);
      expect(existsSync(join(dir, 'home'))).toBe(false);
      // and with them passed, predict works
      const w = runCli(['predict', '--run', join(dir, 'run'), '--weights', sharedPath('weights/resnet18-random.safetensors'), '--json', photo], env);
      expect(w.status, w.stderr).toBe(0);
      expect(JSON.parse(w.stdout)).toHaveLength(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
