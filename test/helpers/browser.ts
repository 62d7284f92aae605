// Tests that run a page in headless Chromium (Debian's chromium, driven by playwright-core): they skip
// with a message where none is installed, except under CI (CI=true), where that is a failure.
import { existsSync } from 'node:fs';
import { describe, it } from 'vitest';
import { describeShared } from './shared.js';

export const CHROMIUM = process.env.VIEWPROBE_CHROMIUM ?? '/usr/bin/chromium';
export const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

/** `describe` when Chromium (and the shared files in `needs`) are here. */
export function describeBrowser(name: string, needs: string[], fn: () => void): void {
  if (existsSync(CHROMIUM)) {
    describeShared(name, needs, fn);
    return;
  }
  const msg = `no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set VIEWPROBE_CHROMIUM)`;
  if (process.env.CI === 'true') {
    describe(name, () => { it('has a Chromium to run in', () => { throw new Error(`${msg} — under CI this is a failure, not a skip (.ci/run installs it)`); }); });
  } else {
    console.warn(`SKIP ${name}: ${msg}`);
    describe.skip(`${name} [skipped: ${msg}]`, fn);
  }
}
