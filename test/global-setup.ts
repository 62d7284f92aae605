// Some tests run the real CLI or the onnx worker threads from dist/, so dist/ must be built from this
// src/ before any test starts. tsc emits even when it reports errors, which would leave a dist/ that
// does not match what the tests check: a build that fails stops the run. tsc also never deletes what
// it emitted for a source file that is gone since, so those outputs (found by their source maps) go.
// The SIMD kernels (assembly/, AssemblyScript) are compiled first; a failed compile fails the run too.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export default function setup(): void {
  // The build script directly, not through npm: a nested npm repeats npm's config warnings and costs a second
  execFileSync(process.execPath, [join(root, 'scripts/build-wasm.js')], { cwd: root, stdio: 'inherit' });
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  try {
    execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.json')], { cwd: root, stdio: 'pipe', maxBuffer: 16 << 20 });
  } catch (e) {
    const out = String((e as { stdout?: Buffer }).stdout ?? '') + String((e as { stderr?: Buffer }).stderr ?? '');
    throw new Error(`global-setup: the build (tsc -p tsconfig.json) failed, so dist/ cannot be trusted; no test runs until it builds:\n${out.slice(0, 4000) || String(e)}`);
  }
  pruneOrphans(join(root, 'dist'));
}

/** Removes X.js and X.js.map where X.js.map says tsc made them from a file in src/ that no longer exists. */
function pruneOrphans(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      pruneOrphans(path);
      continue;
    }
    if (!entry.name.endsWith('.js.map')) continue;
    let sources: unknown;
    try {
      sources = (JSON.parse(readFileSync(path, 'utf8')) as { sources?: unknown }).sources;
    } catch {
      continue;
    }
    if (!Array.isArray(sources) || sources.length !== 1 || typeof sources[0] !== 'string') continue;
    const source = resolve(dir, sources[0]);
    if (!source.startsWith(join(root, 'src') + '/') || existsSync(source)) continue;
    rmSync(path);
    rmSync(path.slice(0, -'.map'.length), { force: true });
  }
}
