// What extract's progress line says: images, views extracted and cached, the rate, and an ETA from the
// views still to extract (a rerun whose first half is cached is not half done). Printed by src/progress.ts.
import { progressPrinter, type ProgressOptions } from '../progress.js';

export interface ExtractProgress {
  imagesDone: number;
  imagesTotal: number;
  /** Views the engine computed so far. */
  viewsExtracted: number;
  viewsCached: number;
  /** Views still to extract: those of images not looked at yet all count. */
  viewsLeft: number;
  failed: number;
  seconds: number;
  /** Seconds since the first view went to the engine (the time behind viewsExtracted). */
  extractSeconds: number;
}

export interface ProgressReporter {
  update(p: ExtractProgress): void;
  done(): void;
}

export function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.round(s)}s`;
}

/** Views per second of extraction, and the seconds the views still to extract will take at that rate. */
export function extractEta(p: ExtractProgress): { rate: number; eta: number } {
  const rate = p.extractSeconds > 0 ? p.viewsExtracted / p.extractSeconds : 0;
  return { rate, eta: p.viewsLeft === 0 ? 0 : rate > 0 ? p.viewsLeft / rate : NaN };
}

export function progressLine(label: string, p: ExtractProgress): string {
  const { rate, eta } = extractEta(p);
  return `${label} ${p.imagesDone}/${p.imagesTotal} images, ${p.viewsExtracted} views extracted` +
    `${p.viewsCached ? `, ${p.viewsCached} cached` : ''}${p.failed ? `, ${p.failed} failed` : ''}, ` +
    `${rate.toFixed(1)} views/s, ETA ${fmtTime(eta)}`;
}

export function progressReporter(label: string, opts: ProgressOptions = {}): ProgressReporter {
  const printer = progressPrinter({ bar: true, ...opts });
  return {
    update(p) {
      const done = p.viewsExtracted + p.viewsCached;
      printer.update(progressLine(label, p), done + p.viewsLeft > 0 ? done / (done + p.viewsLeft) : 1);
    },
    done: () => printer.done(),
  };
}

/** The pipeline's counts behind an ExtractProgress. */
export class ProgressCounts {
  imagesDone = 0;
  /** Views the engine computed. */
  extracted = 0;
  private skipped = 0;
  private firstView: number | undefined;

  constructor(private readonly imagesTotal: number, private readonly viewsWanted: number, private readonly t0: number) {}

  /** The first view goes to the engine. */
  started(): void {
    this.firstView ??= performance.now();
  }

  /** An image is through; `notToDo` of its wanted views will not be extracted (unreadable, other shard). */
  imageDone(notToDo = 0): void {
    this.imagesDone++;
    this.skipped += notToDo;
  }

  snapshot(viewsCached: number, failed: number): ExtractProgress {
    const now = performance.now();
    return {
      imagesDone: this.imagesDone, imagesTotal: this.imagesTotal, viewsExtracted: this.extracted, viewsCached,
      viewsLeft: Math.max(0, this.viewsWanted - viewsCached - this.skipped - this.extracted), failed,
      seconds: (now - this.t0) / 1000, extractSeconds: this.firstView === undefined ? 0 : (now - this.firstView) / 1000,
    };
  }
}
