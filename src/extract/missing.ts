// Which views of an image still have to be extracted: the ones wanted, less the ones stored, less the
// ones this run already took on for an identical file (same content, so the same features).

export interface ViewsWanted {
  /** Augmented views 0..views-1. */
  views: number;
  /** The eval-transform view. */
  clean: boolean;
}

export interface ViewsHeld {
  /** Augmented views 0..aug-1 stored or claimed. */
  aug: number;
  clean: boolean;
}

export interface MissingViews {
  /** Augmented views [augFrom, augTo) to extract (empty when augTo === augFrom). */
  augFrom: number;
  augTo: number;
  clean: boolean;
  /** How many views that is. */
  count: number;
}

export function missingViews(want: ViewsWanted, held: ViewsHeld): MissingViews {
  const augFrom = held.aug;
  const augTo = Math.max(held.aug, want.views);
  const clean = want.clean && !held.clean;
  return { augFrom, augTo, clean, count: augTo - augFrom + (clean ? 1 : 0) };
}

/** What a cache holds of an image (the store answers these from its index). */
export interface HeldInCache {
  augViews(hash: string): number;
  hasClean(hash: string): boolean;
}

/**
 * The views this run has taken on, by image content, so that identical files are extracted once.
 * A claim is given back when its image cannot be decoded, so a copy of the same bytes under another
 * name does not count on views nobody will make.
 */
export class Claims {
  private readonly aug = new Map<string, number>();
  private readonly clean = new Set<string>();

  constructor(private readonly cache: HeldInCache) {}

  /** Claims and returns the views of `hash` that neither the cache nor this run has yet. */
  claim(hash: string, want: ViewsWanted): MissingViews {
    const held: ViewsHeld = {
      aug: Math.max(this.cache.augViews(hash), this.aug.get(hash) ?? 0),
      clean: this.clean.has(hash) || (want.clean && this.cache.hasClean(hash)),
    };
    const missing = missingViews(want, held);
    if (missing.augTo > missing.augFrom) this.aug.set(hash, missing.augTo);
    if (missing.clean) this.clean.add(hash);
    return missing;
  }

  release(hash: string, m: MissingViews): void {
    if (m.augTo > m.augFrom) this.aug.set(hash, m.augFrom);
    if (m.clean) this.clean.delete(hash);
  }
}
