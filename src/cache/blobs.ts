// Where a view's floats live. The views of one commit are packed into blobs (values of ~8 MB); each
// image's index entry lists segments into them: [firstView, views, blob, offsetInViews] per run of
// augmented views, [blob, offsetInViews] for its clean view, and (third slot, absent in caches written
// before it) segments shaped like aug ones for the preset's extra test-time views.

/** A commit's views are packed into values of about this size (bounded memory when reading one). */
export const BLOB_TARGET_BYTES = 8 << 20;

export type AugSeg = [start: number, views: number, blob: number, offset: number];
export type CleanLoc = [blob: number, offset: number];
export type FeatureIndex = [aug: AugSeg[], clean: CleanLoc | null, tta?: AugSeg[]];
/** Augmented train views, the eval-transform view, the extra test-time views. */
export type FeatureKind = 'aug' | 'clean' | 'tta';

/** How many augmented views 0..n-1 the segments cover without a gap. */
export function contiguousViews(segs: AugSeg[]): number {
  let have = 0;
  for (const [start, views] of [...segs].sort((a, b) => a[0] - b[0])) {
    if (start > have) break;
    have = Math.max(have, start + views);
  }
  return have;
}

/** Packs rows of `dim` floats into blobs numbered from `next`, handing each full blob to `put`. */
export class BlobPacker {
  private parts: Uint8Array[] = [];
  private views = 0;

  constructor(public next: number, private readonly dim: number, private readonly put: (blob: number, bytes: Buffer) => void) {}

  /** Where `data` (whole rows) will be: [blob, offset in views]. The data must not change until finish(). */
  place(data: Float32Array): [blob: number, offset: number] {
    const views = data.length / this.dim;
    if (this.views > 0 && (this.views + views) * this.dim * 4 > BLOB_TARGET_BYTES) this.flush();
    const at: [number, number] = [this.next, this.views];
    this.parts.push(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    this.views += views;
    return at;
  }

  /** Writes the last blob; returns the next free blob number. */
  finish(): number {
    this.flush();
    return this.next;
  }

  private flush(): void {
    if (this.parts.length === 0) return;
    this.put(this.next++, Buffer.concat(this.parts));
    this.parts = [];
    this.views = 0;
  }
}

/** Items grouped by the blob they read, so that each blob is fetched once; blobs in ascending order. */
export function groupByBlob<T>(items: Iterable<[blob: number, item: T]>): [number, T[]][] {
  const groups = new Map<number, T[]>();
  for (const [blob, item] of items) {
    let list = groups.get(blob);
    if (!list) groups.set(blob, (list = []));
    list.push(item);
  }
  return [...groups].sort((a, b) => a[0] - b[0]);
}

/** Where one feature segment of a split goes: `views` rows from `srcView` of its block into `dst` at `dstFloat`. */
export interface ReadPart {
  srcView: number;
  dst: Float32Array;
  dstFloat: number;
  views: number;
}

/**
 * The arrays a split reads into and, per block, the segments to copy (so each block is fetched once):
 * views = the augmented views every row has (capped by maxViews); the clean array only when every
 * row has its clean view; test-time views only beside clean ones (they are averaged with them).
 */
export function planSplitRead(rows: FeatureIndex[], dim: number, opts: { maxViews?: number; maxTtaViews?: number }) {
  const n = rows.length;
  let views = n === 0 ? 0 : Infinity;
  for (const r of rows) views = Math.min(views, contiguousViews(r[0]));
  if (opts.maxViews !== undefined) views = Math.min(views, opts.maxViews);
  const hasClean = n > 0 && rows.every((r) => r[1]);
  let ttaViews = hasClean ? Infinity : 0;
  for (const r of rows) ttaViews = Math.min(ttaViews, r[2] ? contiguousViews(r[2]) : 0);
  if (opts.maxTtaViews !== undefined) ttaViews = Math.min(ttaViews, opts.maxTtaViews);
  const aug = new Float32Array(n * views * dim);
  const clean = hasClean ? new Float32Array(n * dim) : null;
  const tta = ttaViews > 0 ? new Float32Array(n * ttaViews * dim) : undefined;
  const parts: [number, ReadPart][] = [];
  const segments = (segs: AugSeg[], dst: Float32Array, i: number, have: number) => {
    for (const [start, count, blob, offset] of segs) {
      if (start < have) parts.push([blob, { srcView: offset, dst, dstFloat: (i * have + start) * dim, views: Math.min(count, have - start) }]);
    }
  };
  rows.forEach((r, i) => {
    segments(r[0], aug, i, views);
    if (clean) parts.push([r[1]![0], { srcView: r[1]![1], dst: clean, dstFloat: i * dim, views: 1 }]);
    if (tta) segments(r[2]!, tta, i, ttaViews);
  });
  return { views, ttaViews, aug, clean, tta, parts };
}
