// Some tests run the real CLI in a child process (kill/resume, signals): they need dist/ to match src/.
// tsc emits even when it reports type errors; those are the typecheck's business (npm ci's `prepare`
// fails on them), so here they are only a warning.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';

export default function setup(): void {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  try {
    execFileSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { stdio: 'pipe' });
  } catch (e) {
    const out = String((e as { stdout?: Buffer }).stdout ?? '');
    console.warn(`global-setup: tsc reported errors (dist/ was still emitted):\n${out.slice(0, 2000)}`);
  }
}
