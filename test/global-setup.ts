// Some tests run the real CLI in a child process (kill/resume, signals): they need dist/ to match src/.
// tsc emits even when it reports type errors; those fail test/typecheck.test.ts, so here they are only
// a warning (one error should not fail every test that starts the CLI). The SIMD kernels (assembly/,
// AssemblyScript) are compiled first, and a failed compile fails the run: no test may use stale kernels.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';

export default function setup(): void {
  execFileSync('npm', ['run', '--silent', 'build:wasm'], { stdio: 'inherit' });
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  try {
    execFileSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { stdio: 'pipe' });
  } catch (e) {
    const out = String((e as { stdout?: Buffer }).stdout ?? '');
    console.warn(`global-setup: tsc reported errors (dist/ was still emitted):\n${out.slice(0, 2000)}`);
  }
}
