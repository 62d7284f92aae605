// Tests that must kill or race real processes (SIGKILL mid-commit, two writers, a file-size limit)
// run project code in a plain `node` child. Node 20 cannot run TypeScript, so children import the
// compiled modules in dist/, which test/global-setup.ts rebuilds from src/ before every run.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { packageRoot } from '../../src/shared.js';

/** file:// URL of a compiled module, e.g. distModule('cache/store.js'). */
export function distModule(rel: string): string {
  return pathToFileURL(join(packageRoot, 'dist', rel)).href;
}

/** Writes an ESM script into `dir` (the test's own temp folder, so it goes when the test cleans up). */
export function childScript(dir: string, name: string, source: string): string {
  const file = join(dir, name);
  writeFileSync(file, source);
  return file;
}

export interface Child {
  proc: ChildProcess;
  /** Resolves with the first stdout line matching, rejects if the child exits first. */
  waitFor(re: RegExp): Promise<string>;
  /** Everything the child wrote so far. */
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns `node script args...` (or a shell command when `shell` is given) with line-wise stdout watching. */
export function startChild(script: string, args: string[] = [], opts: { shell?: string; env?: NodeJS.ProcessEnv } = {}): Child {
  const proc = opts.shell
    ? spawn('/bin/sh', ['-c', opts.shell], { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env })
    : spawn(process.execPath, [script, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
  let out = '';
  let err = '';
  let ended = false;
  const waiters: { re: RegExp; resolve: (s: string) => void; reject: (e: Error) => void }[] = [];
  const check = () => {
    for (const w of [...waiters]) {
      const line = out.split('\n').find((l) => w.re.test(l));
      if (line !== undefined) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  };
  proc.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    check();
  });
  proc.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => {
    // 'close' comes after the stdio pipes are drained, so stdout() is complete by then.
    proc.on('close', (code, signal) => {
      ended = true;
      check();
      for (const w of waiters.splice(0)) w.reject(new Error(`child exited (${code ?? signal}) before printing ${w.re}; stdout: ${out.slice(-500)} stderr: ${err.slice(-2000)}`));
      res({ code, signal });
    });
  });
  return {
    proc,
    waitFor: (re) =>
      new Promise<string>((res, rej) => {
        const w = { re, resolve: res, reject: rej };
        waiters.push(w);
        check();
        if (ended && waiters.includes(w)) {
          waiters.splice(waiters.indexOf(w), 1);
          rej(new Error(`child already exited without printing ${re}; stderr: ${err.slice(-2000)}`));
        }
      }),
    stdout: () => out,
    stderr: () => err,
    exited,
  };
}

let mountable: boolean | undefined;
/** Whether this process may mount a tmpfs (root with CAP_SYS_ADMIN, as in a privileged container). */
export function canMount(): boolean {
  if (mountable !== undefined) return mountable;
  if (process.getuid?.() !== 0) return (mountable = false);
  const probe = mkdtempSync(join(tmpdir(), 'vp-mnt-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe], { stdio: 'ignore' });
    execFileSync('umount', [probe], { stdio: 'ignore' });
    mountable = true;
  } catch {
    mountable = false;
  }
  rmSync(probe, { recursive: true, force: true });
  return mountable;
}
