// A long extract must survive anything in the data and any interruption: broken files are skipped
// and recorded, --strict makes them an error, Ctrl-C commits the batches in flight and says how to resume.
import { chmodSync, mkdtempSync, rmSync, writeFileSync, mkdirSync, copyFileSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import sharp from 'sharp';
import { FeatureCache } from '../../src/cache/store.js';
import { describeShared, sharedPath } from '../helpers/shared.js';
import { BIN, runCli, startCli, waitForCommittedViews } from '../helpers/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'vp-hard-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describeShared('extract on broken inputs', ['data/tiny/train', 'weights/resnet18-random.safetensors'], () => {
  const weights = sharedPath('weights/resnet18-random.safetensors');
  const data = join(tmp, 'data');
  const good = sharedPath('data/tiny/train/beignets');
  const broken: Record<string, string> = {};

  beforeAll(async () => {
    for (const c of ['a', 'b']) mkdirSync(join(data, c), { recursive: true });
    const src = readFileSync(join(good, '1011780.jpg'));
    copyFileSync(join(good, '1011780.jpg'), join(data, 'a', 'ok1.jpg'));
    copyFileSync(sharedPath('data/tiny/train/bibimbap', '1230874.jpg'), join(data, 'b', 'ok2.jpg'));
    writeFileSync((broken.truncated = join(data, 'a', 'truncated.jpg')), src.subarray(0, src.length >> 1));
    writeFileSync((broken.empty = join(data, 'a', 'empty.jpg')), Buffer.alloc(0));
    writeFileSync((broken.random = join(data, 'b', 'random.jpg')), Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 24)));
    writeFileSync((broken.text = join(data, 'b', 'notes.png')), 'this is a text file, not a PNG\n');
    // a PNG named .jpg is odd but valid: it must be processed, not skipped
    await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 200, g: 30, b: 90 } } }).png().toFile(join(data, 'b', 'png-named.jpg'));
    symlinkSync(join(data, 'b'), join(data, 'b', 'loop')); // a symlink loop inside a class folder
  });

  it('skips and records every unreadable image, finishes the rest, and says so in the exit code and summary', async () => {
    const cache = join(tmp, 'cache');
    const r = runCli(['extract', '--train', data, '--cache', cache, '--weights', weights, '--views', '1', '--json']);
    expect(r.status, r.stderr).toBe(3);
    const s = JSON.parse(r.stdout) as { images: number; failed: { path: string; reason: string }[]; extracted: number };
    expect(s.failed.map((f) => f.path).sort()).toEqual(Object.values(broken).sort());
    for (const f of s.failed) expect(f.reason).toContain(f.path);
    expect(s.extracted).toBe(3 * 2); // ok1, ok2, png-named: 1 augmented + 1 clean each
    expect(r.stderr).toMatch(/4 images failed/);
    const c = await FeatureCache.open(cache, { readOnly: true });
    try {
      expect(c.failures().map((f) => f.path).sort()).toEqual(Object.values(broken).sort());
      expect(c.readSplit('train').labels.length).toBe(3);
    } finally {
      await c.close();
    }
    const info = runCli(['cache', 'info', '--cache', cache]);
    expect(info.status).toBe(0);
    expect(info.stdout + info.stderr).toContain('truncated.jpg');
  });

  it('--strict turns a failed image into an error', () => {
    const r = runCli(['extract', '--train', data, '--cache', join(tmp, 'strict'), '--weights', weights, '--views', '1', '--strict']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--strict: \d+ image\(s\) could not be read/);
  });

  it('Ctrl-C (SIGINT) stops after committing the batches in flight, prints how to resume, and the rerun completes', async () => {
    const cache = join(tmp, 'sigint');
    const args = ['extract', '--train', sharedPath('data/tiny/train.txt'), '--cache', cache, '--weights', weights,
      '--views', '3', '--batch', '4', '--commit-views', '4', '--concurrency', '1'];
    const child = startCli(args);
    let stderr = '';
    child.stderr!.on('data', (d) => { stderr += String(d); });
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    await waitForCommittedViews(cache, child, 120_000);
    child.kill('SIGINT');
    const code = await exited;
    expect(code, stderr).toBe(130);
    expect(stderr).toMatch(/rerun the same command to resume/);
    const c = await FeatureCache.open(cache, { readOnly: true });
    const partialViews = c.info()!.counts.augViews;
    await c.close();
    expect(partialViews).toBeGreaterThan(0);
    expect(partialViews).toBeLessThan(24 * 3);
    const again = runCli([...args, '--json']);
    expect(again.status, again.stderr).toBe(0);
    const s = JSON.parse(again.stdout) as { extracted: number; alreadyCached: number };
    expect(s.extracted + s.alreadyCached).toBe(24 * 4);
    expect(s.alreadyCached).toBeGreaterThan(0);
  });
});

// Root reads any file, so an unreadable photo can only be made for another user: as root, the CLI
// runs as `nobody` (uid 65534) on a dataset where one file has mode 000.
describeShared('extract on an unreadable file', ['data/tiny/train', 'weights/resnet18-random.safetensors'], () => {
  it('skips and records it with the reason; the others are extracted', async (ctx) => {
    const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : undefined;
    if (asNobody) {
      // The checkout and the weights must be readable by nobody for the CLI to run as nobody at all.
      const probe = spawnSync(process.execPath, ['-e', `require('fs').accessSync(${JSON.stringify(BIN)}); require('fs').accessSync(${JSON.stringify(sharedPath('weights/resnet18-random.safetensors'))})`], { ...asNobody });
      if (probe.status !== 0) ctx.skip(`user nobody cannot read the checkout or ../shared here, so an unreadable file cannot be made for it`);
    }
    const dir = mkdtempSync(join(tmpdir(), 'vp-unreadable-'));
    try {
      chmodSync(dir, 0o777);
      for (const c of ['a', 'b']) mkdirSync(join(dir, 'data', c), { recursive: true, mode: 0o777 });
      chmodSync(join(dir, 'data'), 0o777);
      const src = sharedPath('data/tiny/train/beignets', '1011780.jpg');
      copyFileSync(src, join(dir, 'data', 'a', 'ok.jpg'));
      copyFileSync(src, join(dir, 'data', 'b', 'secret.jpg'));
      chmodSync(join(dir, 'data', 'a', 'ok.jpg'), 0o644);
      chmodSync(join(dir, 'data', 'b', 'secret.jpg'), 0o000);
      const cache = join(dir, 'cache');
      const r = runCli(['extract', '--train', join(dir, 'data'), '--cache', cache, '--weights', sharedPath('weights/resnet18-random.safetensors'),
        '--views', '1', '--json'], { HOME: dir }, asNobody);
      expect(r.status, r.stderr).toBe(3);
      const s = JSON.parse(r.stdout) as { failed: { path: string; reason: string }[]; extracted: number };
      expect(s.failed).toHaveLength(1);
      expect(s.failed[0]!.path).toBe(join(dir, 'data', 'b', 'secret.jpg'));
      expect(s.failed[0]!.reason).toBe(`${join(dir, 'data', 'b', 'secret.jpg')}: permission denied`);
      expect(s.extracted).toBe(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
