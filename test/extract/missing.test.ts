// Which views are missing: a pure function of what is wanted and what is held, and the run's claims.
import { describe, expect, it } from 'vitest';
import { Claims, missingViews } from '../../src/extract/missing.js';

describe('missingViews', () => {
  it('is the wanted views past those held, plus the clean view when wanted and not held', () => {
    expect(missingViews({ views: 10, clean: true }, { aug: 0, clean: false })).toEqual({ augFrom: 0, augTo: 10, clean: true, count: 11 });
    expect(missingViews({ views: 10, clean: true }, { aug: 4, clean: true })).toEqual({ augFrom: 4, augTo: 10, clean: false, count: 6 });
    expect(missingViews({ views: 3, clean: false }, { aug: 5, clean: false })).toEqual({ augFrom: 5, augTo: 5, clean: false, count: 0 });
    expect(missingViews({ views: 0, clean: true }, { aug: 7, clean: true })).toEqual({ augFrom: 7, augTo: 7, clean: false, count: 0 });
  });
});

describe('Claims', () => {
  it('takes the cache and earlier claims into account, and gives a released claim back', () => {
    const stored = new Map([['h1', 4]]);
    const claims = new Claims({ augViews: (h) => stored.get(h) ?? 0, hasClean: (h) => h === 'h1' });
    const first = claims.claim('h1', { views: 10, clean: true });
    expect(first).toEqual({ augFrom: 4, augTo: 10, clean: false, count: 6 });
    expect(claims.claim('h1', { views: 10, clean: true }).count).toBe(0); // an identical file later
    expect(claims.claim('h1', { views: 12, clean: false })).toMatchObject({ augFrom: 10, augTo: 12 });
    const other = claims.claim('h2', { views: 2, clean: true });
    expect(other.count).toBe(3);
    claims.release('h2', other);
    expect(claims.claim('h2', { views: 2, clean: true }).count).toBe(3);
  });
});
