// Progress on stderr: a redrawn bar when stderr is a terminal, a plain line every 10 s otherwise
// (logs of batch jobs stay readable).
import type { ExtractProgress } from './pipeline.js';

export interface ProgressReporter {
  update(p: ExtractProgress): void;
  done(): void;
}

function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.round(s)}s`;
}

export function progressReporter(label: string, stream: NodeJS.WriteStream = process.stderr): ProgressReporter {
  const tty = Boolean(stream.isTTY);
  let lastLine = 0;
  let drawn = false;
  let last: ExtractProgress | undefined;
  const line = (p: ExtractProgress) => {
    const frac = p.imagesTotal ? p.imagesDone / p.imagesTotal : 1;
    const rate = p.viewsExtracted / Math.max(1e-9, p.seconds);
    const eta = frac > 0 ? p.seconds * (1 - frac) / frac : NaN;
    return `${label} ${p.imagesDone}/${p.imagesTotal} images, ${p.viewsExtracted} views extracted` +
      `${p.viewsCached ? `, ${p.viewsCached} cached` : ''}${p.failed ? `, ${p.failed} failed` : ''}, ` +
      `${rate.toFixed(1)} views/s, ETA ${fmtTime(eta)}`;
  };
  return {
    update(p) {
      last = p;
      if (tty) {
        const width = 24;
        const frac = p.imagesTotal ? p.imagesDone / p.imagesTotal : 1;
        const fill = Math.round(frac * width);
        stream.write(`\r[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${line(p)}\x1b[K`);
        drawn = true;
      } else if (p.seconds - lastLine >= 10) {
        lastLine = p.seconds;
        stream.write(line(p) + '\n');
      }
    },
    done() {
      if (tty && drawn) stream.write('\n');
      else if (!tty && last && last.seconds >= 10) stream.write(line(last) + '\n');
    },
  };
}
