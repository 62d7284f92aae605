// The build (npm ci's `prepare`) emits dist/ whatever the type errors, and the global setup only warns,
// so without this test a type error or an unused import would pass `npm test` and surface first in CI.
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

async function typecheck(args: string[]): Promise<string> {
  try {
    await promisify(execFile)(process.execPath, [tsc, ...args], { maxBuffer: 16 << 20 });
    return '';
  } catch (e) {
    return String((e as { stdout?: string }).stdout ?? e);
  }
}

describe('typecheck', () => {
  it('src compiles under the strict build config with no unused locals', async () => {
    expect(await typecheck(['-p', 'tsconfig.json', '--noEmit', '--noUnusedLocals'])).toBe('');
  }, 120_000);

  it('tests and benches compile against src', async () => {
    expect(await typecheck(['-p', 'tsconfig.test.json'])).toBe('');
  }, 120_000);
});
