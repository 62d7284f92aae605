// src compiles under the strict build config with no unused locals, and tests and benches compile
// against src (test/global-setup.ts already refuses to run tests on a build that fails).
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
