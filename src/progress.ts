// The one progress printer: a status line on stderr, redrawn in place on a terminal (at most every
// `ttyEveryMs`, with a bar when the fraction is known) and, when stderr is a log file, a plain line
// now and then (every `logEveryMs`, and optionally at each quarter), so that logs of batch jobs stay
// readable. What the line says is the caller's (extract/progress.ts, the weights download).

export interface ProgressPrinter {
  /** The current state; `fraction` (0..1) when known. */
  update(text: string, fraction?: number): void;
  /** Ends the line on a terminal (drawing the last state); in a log, prints the last state if anything was printed. */
  done(): void;
}

export interface ProgressOptions {
  stream?: Pick<NodeJS.WriteStream, 'write' | 'isTTY'>;
  /** Draw a [####....] bar before the text on a terminal. */
  bar?: boolean;
  ttyEveryMs?: number;
  logEveryMs?: number;
  /** In a log, also print a line as the fraction passes 25, 50 and 75 %. */
  logQuarters?: boolean;
  now?: () => number;
}

const BAR_WIDTH = 24;

export function progressPrinter(o: ProgressOptions = {}): ProgressPrinter {
  const stream = o.stream ?? process.stderr;
  const tty = Boolean(stream.isTTY);
  const now = o.now ?? (() => performance.now());
  const ttyEvery = o.ttyEveryMs ?? 200;
  const logEvery = o.logEveryMs ?? 10_000;
  const start = now();
  let lastDraw = -Infinity;
  let lastLog = start;
  let lastQuarter = 0;
  let last: { text: string; fraction?: number } | undefined;
  let printed: string | undefined;
  const draw = () => {
    const f = last!.fraction;
    const fill = f === undefined ? 0 : Math.round(Math.min(1, Math.max(0, f)) * BAR_WIDTH);
    const bar = o.bar && f !== undefined ? `[${'#'.repeat(fill)}${'.'.repeat(BAR_WIDTH - fill)}] ` : '';
    stream.write(`\r${bar}${last!.text}\x1b[K`);
    printed = last!.text;
  };
  return {
    update(text, fraction) {
      last = { text, fraction };
      const t = now();
      if (tty) {
        if (t - lastDraw < ttyEvery) return;
        lastDraw = t;
        draw();
        return;
      }
      const quarter = o.logQuarters && fraction !== undefined ? Math.floor(4 * fraction) : 0;
      if (t - lastLog >= logEvery || (quarter > lastQuarter && quarter < 4)) {
        lastLog = t;
        lastQuarter = Math.max(lastQuarter, quarter);
        stream.write(text + '\n');
        printed = text;
      }
    },
    done() {
      if (!last || printed === undefined) return;
      if (tty) {
        draw();
        stream.write('\n');
      } else if (printed !== last.text) {
        stream.write(last.text + '\n');
      }
    },
  };
}
