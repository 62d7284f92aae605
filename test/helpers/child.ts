// Tests that must kill or race real processes (SIGKILL mid-commit, two writers, a file-size limit)
// run project code in a plain `node` child. Node 20 cannot run TypeScript and the tests must not
// depend on a prior build, so this transpiles the needed src modules (following their relative
// imports) into a temp folder whose node_modules links to the project's.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { packageRoot } from '../../src/shared.js';

let compiled: string | undefined;
const done = new Set<string>();

function transpileTree(srcFile: string, outRoot: string): void {
  if (done.has(srcFile)) return;
  done.add(srcFile);
  const text = readFileSync(srcFile, 'utf8');
  const out = ts.transpileModule(text, {
    compilerOptions: { module: ts.ModuleKind.NodeNext, target: ts.ScriptTarget.ES2022, esModuleInterop: true, verbatimModuleSyntax: false },
    fileName: srcFile,
  }).outputText;
  const dest = join(outRoot, relative(packageRoot, srcFile)).replace(/\.ts$/, '.js');
  mkdirSync(dirname(dest), { recursive: true });
  writeFileSync(dest, out);
  for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)\.js'/g)) {
    transpileTree(resolve(dirname(srcFile), `${m[1]}.ts`), outRoot);
  }
}

/**
 * A folder holding transpiled copies of the given src modules (paths relative to the package root,
 * e.g. 'src/cache/store.ts') and their relative imports; import them as `<dir>/src/.../x.js`.
 */
export function childModules(entries: string[]): string {
  if (!compiled) {
    compiled = mkdtempSync(join(tmpdir(), 'vp-child-'));
    writeFileSync(join(compiled, 'package.json'), '{"type":"module"}\n');
    symlinkSync(join(packageRoot, 'node_modules'), join(compiled, 'node_modules'), 'dir');
  }
  for (const e of entries) transpileTree(resolve(packageRoot, e), compiled);
  return compiled;
}

/** Writes an ESM script next to the transpiled modules and returns its path. */
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
    proc.on('exit', (code, signal) => {
      // Let the last stdout chunk arrive before failing the waiters.
      setImmediate(() => {
        ended = true;
        check();
        for (const w of waiters.splice(0)) w.reject(new Error(`child exited (${code ?? signal}) before printing ${w.re}; stdout: ${out.slice(-500)} stderr: ${err.slice(-2000)}`));
        res({ code, signal });
      });
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
