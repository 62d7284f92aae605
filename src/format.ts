// Number and table formatting shared by every command's human-readable output.

/** 0.8318 -> "83.2%"; null (not measured) -> "–". */
export function pct(v: number | null): string {
  return v === null ? '–' : `${(v * 100).toFixed(1)}%`;
}

/** 0.0005 -> "5e-4", 0.00025 -> "2.5e-4": the tutorial's way of printing the learning rate. */
export function formatLr(lr: number): string {
  return lr.toExponential().replace('e+', 'e');
}

export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Aligned text columns: the first `rightAlignFrom` columns padded right, the rest left-padded (numbers). */
export function padTable(rows: string[][], rightAlignFrom = 1): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c >= rightAlignFrom ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ').trimEnd());
}
