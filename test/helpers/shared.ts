// Tests that need ../shared skip with a clear message on a checkout without it, but under CI
// (CI=true) missing shared data is a failure, never a silent skip.
import { describe } from 'vitest';
import { hasShared, sharedPath } from '../../src/shared.js';

export { sharedPath };

export function describeShared(name: string, needs: string[], fn: () => void): void {
  const missing = needs.filter((p) => !hasShared(p));
  if (missing.length === 0) {
    describe(name, fn);
    return;
  }
  const msg = `shared data missing (${missing.map((p) => sharedPath(p)).join(', ')}); set VIEWPROBE_SHARED`;
  if (process.env.CI === 'true') {
    describe(name, () => {
      throw new Error(`${msg} — under CI this is a failure, not a skip`);
    });
  } else {
    console.warn(`SKIP ${name}: ${msg}`);
    describe.skip(`${name} [skipped: ${msg}]`, fn);
  }
}
