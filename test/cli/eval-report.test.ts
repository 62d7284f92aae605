// eval --data --report through the CLI: the most confident mistakes are thumbnails of the --data
// images themselves (a run on the random ResNet18 is at chance, so there are mistakes to show).
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { thumbnailDataUri } from '../../src/image/thumbnail.js';
import { runCli } from '../helpers/cli.js';
import { describeShared, sharedPath } from '../helpers/shared.js';

const tmp = mkdtempSync(join(tmpdir(), 'vp-eval-report-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const unescape = (s: string) => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

describeShared('eval --data --report', ['data/tiny/train.txt', 'data/tiny/val.txt', 'weights/resnet18-random.safetensors'], () => {
  const run = join(tmp, 'run');
  const data = join(tmp, 'new data');

  beforeAll(() => {
    const cache = join(tmp, 'cache');
    for (const args of [
      ['extract', '--train', sharedPath('data/tiny/train.txt'), '--val', sharedPath('data/tiny/val.txt'), '--cache', cache,
        '--weights', sharedPath('weights/resnet18-random.safetensors'), '--views', '0', '--engine', 'onnx'],
      ['train', '--cache', cache, '--out', run, '--epochs', '3', '--views', 'clean'],
    ]) {
      const r = runCli(args);
      expect(r.status, r.stderr).toBe(0);
    }
    // the tiny val photos as a folder dataset of their own, in a path with a space
    for (const line of readFileSync(sharedPath('data/tiny/val.txt'), 'utf8').trim().split('\n')) {
      const rel = line.split(' ')[0]!;
      const [, cls, file] = rel.split('/');
      mkdirSync(join(data, cls!), { recursive: true });
      copyFileSync(sharedPath('data/tiny', rel), join(data, cls!, file!));
    }
  });

  it('shows the most confident mistakes as thumbnails of the --data images, without the note for images that chose the head', async () => {
    const report = join(tmp, 'report.html');
    const r = runCli(['eval', '--run', run, '--data', data, '--cache', join(tmp, 'eval-cache'), '--report', report, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { eval: { n: number; correct: number } };
    const wrong = j.eval.n - j.eval.correct;
    expect(wrong).toBeGreaterThan(0);
    const html = readFileSync(report, 'utf8');
    expect(html).toContain('<h2>Most confident mistakes</h2>');
    expect(html).not.toContain('took part in choosing');
    expect(html).not.toContain('Sweep');
    const cards = html.match(/<figure class="mistake">[\s\S]*?<\/figure>/g)!;
    expect(cards).toHaveLength(Math.min(12, wrong));
    for (const c of cards) {
      const file = unescape(/<span class="file" title="([^"]+)">/.exec(c)![1]!);
      expect(file.startsWith(data + '/'), file).toBe(true);
      const src = /<img src="([^"]+)"/.exec(c)![1]!;
      expect(src).toBe(await thumbnailDataUri(file, { size: 128 }));
    }
  });
});
