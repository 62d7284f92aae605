// Runs the real CLI (dist/, built by test/global-setup.ts) in a child process, and watches the cache it writes.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { FeatureCache } from '../../src/cache/store.js';
import { packageRoot } from '../../src/shared.js';

export const BIN = join(packageRoot, 'bin', 'viewprobe.js');

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], env: Record<string, string> = {}, as?: { uid: number; gid: number }): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    ...as,
    encoding: 'utf8',
    env: { ...process.env, ...env },
    maxBuffer: 64 * 1024 * 1024,
    timeout: 600_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function runCliJson<T = unknown>(args: string[], env: Record<string, string> = {}): T & { _stderr: string } {
  const r = runCli([...args, '--json'], env);
  if (r.status !== 0 && r.status !== 3) {
    throw new Error(`viewprobe ${args.join(' ')} exited ${r.status}\n${r.stderr}`);
  }
  return { ...JSON.parse(r.stdout), _stderr: r.stderr };
}

export function startCli(args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * Polls the cache in `cacheDir` (LMDB readers do not block the writer) until `child` has committed
 * augmented views, has exited, or `timeoutMs` has passed; returns the views committed by then (0
 * if none). It never fails on time itself: the caller asserts on what the child got done.
 */
export async function waitForCommittedViews(cacheDir: string, child: ChildProcess, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  let committed = 0;
  while (committed === 0 && Date.now() - t0 < timeoutMs && child.exitCode === null) {
    await new Promise((res) => setTimeout(res, 50));
    try {
      const c = await FeatureCache.open(cacheDir, { readOnly: true });
      committed = c.info()?.counts.augViews ?? 0;
      await c.close();
    } catch {
      // not created yet
    }
  }
  return committed;
}
