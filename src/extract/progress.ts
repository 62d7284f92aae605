// What extract's progress line says: images, views extracted and cached, the rate, and an ETA from the
// views still to extract (a rerun whose first half is cached is not half done). Printed by src/progress.ts.
import { progressPrinter, type ProgressOptions } from '../progress.js';
import type { ExtractProgress } from './pipeline.js';

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
