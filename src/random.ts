// Seeded randomness (the lowest layer: head init, training, the sweep, and augmentation may all use it).
// Every random choice (head init, batch order, which cached view an image shows in an epoch, CV folds)
// comes from its own named stream derived from the user's seed, so that changing how one stream is
// consumed never shifts the others, and the same seed replays a run.

/** Independent streams derived from one seed. */
export const Stream = {
  init: 1,
  shuffle: 2,
  views: 3,
  folds: 4,
  sweep: 5,
} as const;

function mix32(h: number): number {
  // murmur3's finaliser: a bijection on 32-bit words with good avalanche.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** mulberry32: small, fast, and good enough for shuffles and weight init; the state is one 32-bit word. */
export class Rng {
  private state: number;

  constructor(seed: number, stream: number, sub = 0) {
    if (!Number.isSafeInteger(seed)) throw new Error(`seed must be an integer, got ${seed}`);
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 4294967296) >>> 0;
    this.state = mix32(mix32(mix32(lo ^ 0x9e3779b9) ^ hi) ^ mix32((stream * 0x632be5ab) ^ sub));
  }

  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform in [0, 1) with 24 random bits: every value is exactly a float32. */
  uniform(): number {
    return (this.nextU32() >>> 8) / 16777216;
  }

  /** Uniform integer in [0, n), n <= 2^32. */
  int(n: number): number {
    return Math.floor((this.nextU32() / 4294967296) * n);
  }

  /** Fisher-Yates shuffle in place. */
  shuffle<T extends { length: number; [i: number]: number }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i]!;
      a[i] = a[j]!;
      a[j] = t;
    }
    return a;
  }
}

/** 0..n-1 in a seeded random order. */
export function permutation(rng: Rng, n: number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  return rng.shuffle(p);
}
