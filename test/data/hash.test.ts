// hashBytes is Node's sha256 and is not tested here; what is ours is the shape a cache accepts as one.
import { describe, expect, it } from 'vitest';
import { hashBytes, isSha256Hex } from '../../src/data/hash.js';

describe('content hashes', () => {
  it('isSha256Hex accepts only 64 lowercase hex digits, which is what hashBytes gives', () => {
    expect(isSha256Hex(hashBytes(Buffer.from('any bytes')))).toBe(true);
    expect(isSha256Hex('a'.repeat(64))).toBe(true);
    expect(isSha256Hex('A'.repeat(64))).toBe(false);
    expect(isSha256Hex('a'.repeat(63))).toBe(false);
    expect(isSha256Hex('a'.repeat(65))).toBe(false);
    expect(isSha256Hex(`${'a'.repeat(63)}g`)).toBe(false);
  });
});
