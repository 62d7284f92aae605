// Finished views on their way to the cache. Batches finish in any order, so an image's views arrive
// in any order too; the cache stores an image's augmented views without gaps (0..n-1), so a view is
// committed once every view before it in its run is finished. Views are committed as they become
// contiguous, not when the image is complete: an interrupted `--views 1000` keeps what it finished,
// and the rerun draws only the rest. An image's member row is committed with (or after) its last view.
import type { CommitBatch, Failure, FeatureKind, Member } from '../cache/types.js';

/** The one thing the buffer needs of the cache: a synchronous, all-or-nothing write. */
export interface CacheWriter {
  commit(batch: CommitBatch): void;
}

/**
 * The views [start, start + count) of one image and kind that this run extracts. It holds only the
 * views finished and not yet committed, so memory stays bounded whatever the view count.
 */
export class ViewRun {
  private readonly finished = new Map<number, Float32Array>();
  /** Views finished from `start` on without a gap. */
  contiguous = 0;
  /** Views handed to the cache (a prefix of the contiguous ones). */
  committed = 0;

  constructor(
    readonly hash: string,
    readonly kind: FeatureKind,
    readonly start: number,
    readonly count: number,
    readonly image: ImageViews,
  ) {}

  get complete(): boolean {
    return this.contiguous === this.count;
  }

  /** Keeps (a copy of) view `index`, 0-based within the run; returns how many views became contiguous. */
  set(index: number, features: Float32Array): number {
    if (!(index >= 0 && index < this.count) || index < this.contiguous || this.finished.has(index)) {
      throw new Error(`view ${this.start + index} of ${this.hash} finished twice or out of range`);
    }
    this.finished.set(index, features.slice());
    const before = this.contiguous;
    while (this.finished.has(this.contiguous)) this.contiguous++;
    return this.contiguous - before;
  }

  /** The contiguous views not yet committed, as one array. */
  uncommitted(dim: number): Float32Array {
    const out = new Float32Array((this.contiguous - this.committed) * dim);
    for (let i = this.committed; i < this.contiguous; i++) out.set(this.finished.get(i)!, (i - this.committed) * dim);
    return out;
  }

  /** After a successful commit: the views up to `contiguous` are in the cache, and are let go. */
  markCommitted(): void {
    for (let i = this.committed; i < this.contiguous; i++) this.finished.delete(i);
    this.committed = this.contiguous;
  }
}

/** An image whose views are being extracted: its member row waits for all of its runs. */
export interface ImageViews {
  member: Member;
  open: number;
}

export class CommitBuffer {
  /** Runs holding contiguous views not yet committed. */
  private readonly dirty = new Set<ViewRun>();
  private ready = 0;
  private members: Member[] = [];
  private failures: Failure[] = [];
  private resolved: string[] = [];
  /** Views stored by this buffer's commits. */
  committedViews = 0;

  constructor(private readonly cache: CacheWriter, private readonly dim: number, private readonly commitViews: number) {}

  /** Views finished and ready to commit. */
  get pendingViews(): number {
    return this.ready;
  }

  /** Opens the runs of one image; its member is committed once all of them are. */
  openImage(member: Member, runs: { kind: FeatureKind; start: number; count: number }[]): ViewRun[] {
    const image: ImageViews = { member, open: runs.length };
    if (runs.length === 0) this.addMember(member);
    return runs.map((r) => new ViewRun(member.hash, r.kind, r.start, r.count, image));
  }

  /** One finished view. */
  viewDone(run: ViewRun, index: number, features: Float32Array): void {
    const gained = run.set(index, features);
    if (gained === 0) return;
    this.ready += gained;
    this.dirty.add(run);
    if (run.complete && --run.image.open === 0) this.addMember(run.image.member);
  }

  /** An image that needs no work (all its views are stored) is a member as it is. */
  addMember(member: Member): void {
    this.members.push(member);
    this.resolved.push(member.path);
  }

  addFailure(f: Failure): void {
    this.failures.push(f);
  }

  /** Commits when at least `commitViews` views are ready. */
  commitIfDue(): void {
    if (this.ready >= this.commitViews) this.commit();
  }

  /**
   * Writes everything ready in one transaction. If the write fails nothing is marked committed and the
   * error goes to the caller: the cache holds what it held before.
   */
  commit(): void {
    if (this.ready === 0 && this.members.length === 0 && this.failures.length === 0 && this.resolved.length === 0) return;
    const runs = [...this.dirty];
    const batch: CommitBatch = {
      features: runs.map((r) => ({
        hash: r.hash, kind: r.kind, start: r.start + r.committed, data: r.uncommitted(this.dim),
      })),
      members: this.members,
      failures: this.failures,
      resolved: this.resolved,
    };
    this.cache.commit(batch);
    for (const r of runs) r.markCommitted();
    this.dirty.clear();
    this.committedViews += this.ready;
    this.ready = 0;
    this.members = [];
    this.failures = [];
    this.resolved = [];
  }
}
