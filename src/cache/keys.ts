// How the cache's rows are keyed. Members and failures are keyed [split, path]; lmdb-js encodes such
// an array key element by element (ordered-binary), so rows sort by split, then by path.
import { createHash } from 'node:crypto';

/** LMDB keys are limited to ~1978 bytes; longer paths are keyed by a prefix plus their hash. */
export const MAX_KEY_PATH_BYTES = 1500;

export type RowKey = [split: string, path: string];

/** The key of a member or failure row. Throws for a split name no dataset would give (over 200 bytes). */
export function rowKey(split: string, path: string): RowKey {
  if (Buffer.byteLength(split) + Buffer.byteLength(path) <= MAX_KEY_PATH_BYTES) return [split, path];
  if (Buffer.byteLength(split) > 200) throw new Error(`split name too long: ${split.slice(0, 50)}...`);
  // A byte-bounded prefix keeps the order roughly by path; the digest keeps the key unique.
  const prefix = Buffer.from(path, 'utf8').subarray(0, 600).toString('utf8');
  return [split, `${prefix}\u2026${createHash('sha256').update(path).digest('hex')}`];
}

/** The key range holding every row of `split` and no row of another split. */
export function splitRange(split: string): { start: RowKey; end: RowKey } {
  // Array keys compare element by element and a string element ends with a 0 byte, so
  // [split] < [split, any path] < [split + U+0001] < [split + any printable suffix].
  return { start: [split] as unknown as RowKey, end: [`${split}\u0001`] as unknown as RowKey };
}
