import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hashBytes, hashFile, isSha256Hex } from '../../src/data/hash.js';

describe('content hashes', () => {
  it('hashBytes is sha256 (FIPS 180-2 test vectors)', () => {
    expect(hashBytes(Buffer.from('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(hashBytes(new Uint8Array(0))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('hashFile streams a file to the same digest, and rejects a missing file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vp-hash-'));
    try {
      const big = Buffer.alloc(3 * 65536 + 17);
      for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
      writeFileSync(join(dir, 'f.bin'), big);
      expect(await hashFile(join(dir, 'f.bin'))).toBe(hashBytes(big));
      await expect(hashFile(join(dir, 'none'))).rejects.toThrow(/ENOENT/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('isSha256Hex accepts only 64 lowercase hex digits', () => {
    expect(isSha256Hex('a'.repeat(64))).toBe(true);
    expect(isSha256Hex('A'.repeat(64))).toBe(false);
    expect(isSha256Hex('a'.repeat(63))).toBe(false);
  });
});
