// Which views of an image still have to be extracted: the ones wanted, less the ones stored, less the
// ones this run already took on for an identical file (same content, so the same features).

export interface ViewsWanted {
  /** Augmented views 0..views-1. */
  views: number;
  /** The eval-transform view. */
  clean: boolean;
  /** The preset's extra test-time views 0..tta-1 (val and eval images; absent: none). */
  tta?: number;
}

export interface ViewsHeld {
  /** Augmented views 0..aug-1 stored or claimed. */
  aug: number;
  clean: boolean;
  /** Test-time views 0..tta-1 stored or claimed. */
  tta?: number;
}

export interface MissingViews {
  /** Augmented views [augFrom, augTo) to extract (empty when augTo === augFrom). */
  augFrom: number;
  augTo: number;
  clean: boolean;
  /** Test-time views [ttaFrom, ttaTo) to extract; present only when some are wanted. */
  ttaFrom?: number;
  ttaTo?: number;
  /** How many views that is. */
  count: number;
}

export function missingViews(want: ViewsWanted, held: ViewsHeld): MissingViews {
  const augFrom = held.aug;
  const augTo = Math.max(held.aug, want.views);
  const clean = want.clean && !held.clean;
  const count = augTo - augFrom + (clean ? 1 : 0);
  if (!want.tta) return { augFrom, augTo, clean, count };
  const ttaFrom = held.tta ?? 0;
  const ttaTo = Math.max(ttaFrom, want.tta);
  return { augFrom, augTo, clean, ttaFrom, ttaTo, count: count + ttaTo - ttaFrom };
}

/** What a cache holds of an image (the store answers these from its index). */
export interface HeldInCache {
  augViews(hash: string): number;
  hasClean(hash: string): boolean;
  ttaViews?(hash: string): number;
}

/**
 * The views this run has taken on, by image content, so that identical files are extracted once.
 * A claim is given back when its image cannot be decoded, so a copy of the same bytes under another
 * name does not count on views nobody will make.
 */
export class Claims {
  private readonly aug = new Map<string, number>();
  private readonly clean = new Set<string>();
  private readonly tta = new Map<string, number>();

  constructor(private readonly cache: HeldInCache) {}

  /** Claims and returns the views of `hash` that neither the cache nor this run has yet. */
  claim(hash: string, want: ViewsWanted): MissingViews {
    const held: ViewsHeld = {
      aug: Math.max(this.cache.augViews(hash), this.aug.get(hash) ?? 0),
      clean: this.clean.has(hash) || (want.clean && this.cache.hasClean(hash)),
      ...(want.tta ? { tta: Math.max(this.cache.ttaViews?.(hash) ?? 0, this.tta.get(hash) ?? 0) } : {}),
    };
    const missing = missingViews(want, held);
    if (missing.augTo > missing.augFrom) this.aug.set(hash, missing.augTo);
    if (missing.clean) this.clean.add(hash);
    if (missing.ttaTo! > missing.ttaFrom!) this.tta.set(hash, missing.ttaTo!);
    return missing;
  }

  release(hash: string, m: MissingViews): void {
    if (m.augTo > m.augFrom) this.aug.set(hash, m.augFrom);
    if (m.clean) this.clean.delete(hash);
    if (m.ttaTo! > m.ttaFrom!) this.tta.set(hash, m.ttaFrom!);
  }
}
