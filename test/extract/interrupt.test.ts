// No native aborts: the real CLI in a child process, on a disk that fills up (a file-size limit, and
// a tiny tmpfs as root) and under Ctrl-C pressed twice. Each must end with its documented exit code
// and message, keep every committed transaction, and a rerun must complete with the features of an
// uninterrupted run. Before, all three ended in exit 134: "terminate called after throwing an instance
// of 'Napi::Error'" (onnxruntime workers torn down while running a batch).
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FeatureCache } from '../../src/cache/store.js';
import type { SplitFeatures } from '../../src/cache/types.js';
import { BIN, runCli, waitForCommittedViews } from '../helpers/cli.js';
import { canMount, startChild } from '../helpers/child.js';
import { describeShared, sharedPath } from '../helpers/shared.js';

const tmp = mkdtempSync(join(tmpdir(), 'vp-interrupt-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const IMAGES = 8;
const VIEWS = 10;
const TOTAL = IMAGES * (VIEWS + 1);

async function stored(cache: string): Promise<{ views: number; train: SplitFeatures; fileBytes: number }> {
  const c = await FeatureCache.open(cache, { readOnly: true });
  try {
    const info = c.info()!;
    return { views: info.counts.augViews + info.counts.cleanViews, train: c.readSplit('train'), fileBytes: info.counts.fileBytes };
  } finally {
    await c.close();
  }
}

describeShared('extract under real failures', ['data/tiny/train.txt', 'weights/resnet18-random.safetensors'], () => {
  const list = join(tmp, 'list', 'train.txt');
  const args = (cache: string) => ['extract', '--train', list, '--cache', cache, '--weights', sharedPath('weights/resnet18-random.safetensors'),
    '--views', String(VIEWS), '--batch', '4', '--commit-views', '4', '--concurrency', '1', '--engine', 'onnx', '--threads', '2'];
  let reference: { train: SplitFeatures; fileBytes: number };

  beforeAll(async () => {
    // 8 photos of two classes, by absolute path (so the list needs only classes.txt beside it).
    mkdirSync(join(tmp, 'list'));
    const lines = readFileSync(sharedPath('data/tiny/train.txt'), 'utf8').trim().split('\n');
    const picked = [...lines.slice(0, IMAGES / 2), ...lines.slice(8, 8 + IMAGES / 2)];
    writeFileSync(list, picked.map((l) => `${sharedPath('data/tiny', l.split(' ')[0]!)} ${l.split(' ')[1]}\n`).join(''));
    copyFileSync(sharedPath('data/tiny/classes.txt'), join(tmp, 'list', 'classes.txt'));
    const r = runCli([...args(join(tmp, 'reference')), '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).extracted).toBe(TOTAL);
    reference = await stored(join(tmp, 'reference'));
  });

  /** The rerun completes (every view, the earlier ones kept) and ends where an uninterrupted run ends. */
  async function rerunCompletes(cache: string, committed: number) {
    const r = runCli([...args(cache), '--json']);
    expect(r.status, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout) as { extracted: number; alreadyCached: number };
    expect(s.alreadyCached, r.stderr).toBe(committed);
    expect(s.extracted, r.stderr).toBe(TOTAL - committed);
    const got = await stored(cache);
    expect(got.train.paths).toEqual(reference.train.paths);
    expect(got.train.views).toBe(VIEWS);
    expect(got.train.aug).toEqual(reference.train.aug);
    expect(got.train.clean).toEqual(reference.train.clean);
  }

  it('disk full (a file-size limit): exit 2 naming the limit and the views kept; the rerun completes', async () => {
    const cache = join(tmp, 'fsize');
    // Half the finished cache's size, whatever unit the shell's ulimit -f counts in (512 or 1024 bytes).
    const blocks = Math.floor(reference.fileBytes / 2 / 1024);
    const child = startChild('', [], { shell: `ulimit -f ${blocks} && exec "${process.execPath}" "${BIN}" ${args(cache).map((a) => `"${a}"`).join(' ')}` });
    const { code } = await child.exited;
    const err = child.stderr();
    expect(err).not.toContain('terminate called');
    expect(code, err).toBe(2);
    const m = new RegExp(`^viewprobe: file-size limit \\(ulimit -f: \\d+ KiB\\) reached writing ${cache}; (\\d+) views committed, raise the limit and rerun to resume$`, 'm').exec(err);
    expect(m, err).not.toBeNull();
    const committed = Number(m![1]);
    expect(committed).toBeLessThan(TOTAL);
    expect((await stored(cache)).views).toBe(committed);
    await rerunCompletes(cache, committed);
  });

  it('disk full on a real tiny file system (tmpfs; root only): exit 2, "no space left on device"; the rerun completes once there is room', async (ctx) => {
    if (!canMount()) ctx.skip();
    const mnt = join(tmp, 'mnt');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${Math.ceil(reference.fileBytes / 2 / 4096) * 4096}`, 'tmpfs', mnt]);
    try {
      const cache = join(mnt, 'cache');
      const r = runCli(args(cache));
      expect(r.stderr).not.toContain('terminate called');
      expect(r.status, r.stderr).toBe(2);
      const m = new RegExp(`^viewprobe: no space left on device writing ${cache}; (\\d+) views committed, free space and rerun to resume$`, 'm').exec(r.stderr);
      expect(m, r.stderr).not.toBeNull();
      const committed = Number(m![1]);
      expect(committed).toBeGreaterThan(0);
      expect((await stored(cache)).views).toBe(committed);
      execFileSync('mount', ['-o', 'remount,size=64m', mnt]);
      await rerunCompletes(cache, committed);
    } finally {
      execFileSync('umount', [mnt]);
    }
  });

  it('Ctrl-C twice: exit 130 at once, no native abort, every committed transaction intact; the rerun completes', async () => {
    // A run may finish the work in flight before the second press lands (then there is nothing to
    // stop); that attempt proves nothing and is made again on a fresh cache.
    for (let attempt = 0; ; attempt++) {
      const cache = join(tmp, `sigint2-${attempt}`);
      const child = startChild('', [], { shell: `exec "${process.execPath}" "${BIN}" ${args(cache).map((a) => `"${a}"`).join(' ')} --json` });
      expect(await waitForCommittedViews(cache, child.proc, 120_000)).toBeGreaterThan(0);
      child.proc.kill('SIGINT');
      // The second press once the first is seen: two signals pending at once merge into one.
      while (!child.stderr().includes('viewprobe: interrupt:') && child.proc.exitCode === null) await new Promise((r) => setTimeout(r, 5));
      const second = performance.now();
      const sent = child.proc.exitCode === null && child.proc.kill('SIGINT');
      const { code, signal } = await child.exited;
      const err = child.stderr();
      const both = `stderr:\n${err}\nstdout:\n${child.stdout()}`;
      if (!sent && attempt < 3) continue;
      console.log(`extract exited ${((performance.now() - second) / 1000).toFixed(2)} s after the second Ctrl-C`);
      expect(err).not.toContain('terminate called');
      expect({ code, signal }, both).toEqual({ code: 130, signal: null });
      expect(err).toContain('second interrupt: stopping now');
      const m = /^interrupted: (\d+) views committed; rerun the same command to resume$/m.exec(err);
      expect(m, both).not.toBeNull();
      const committed = Number(m![1]);
      // The summary counts what is stored, and the cache opens and reads.
      expect(JSON.parse(child.stdout()).extracted, both).toBe(committed);
      expect((await stored(cache)).views).toBe(committed);
      await rerunCompletes(cache, committed);
      return;
    }
  });

  it('Ctrl-C once: the finished views are committed, the summary counts what is stored; the rerun completes', async () => {
    const cache = join(tmp, 'sigint1');
    const child = startChild('', [], { shell: `exec "${process.execPath}" "${BIN}" ${args(cache).map((a) => `"${a}"`).join(' ')} --json` });
    expect(await waitForCommittedViews(cache, child.proc, 120_000)).toBeGreaterThan(0);
    child.proc.kill('SIGINT');
    const { code } = await child.exited;
    const err = child.stderr();
    expect(code, err).toBe(130);
    const committed = JSON.parse(child.stdout()).extracted as number;
    expect(err).toContain(`interrupted: ${committed} views committed`);
    expect((await stored(cache)).views).toBe(committed);
    await rerunCompletes(cache, committed);
  });
});

