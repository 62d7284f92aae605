// Content hashes of image files: the identity of an image in the cache (same bytes = same features,
// whatever the path or split).
import { createHash } from 'node:crypto';

/** sha256 of a buffer, lowercase hex. */
export function hashBytes(buf: Uint8Array): string {
  return createHash('sha256').update(buf).digest('hex');
}

/** True for a lowercase hex sha256 (what hashBytes returns). */
export function isSha256Hex(s: string): boolean {
  return /^[0-9a-f]{64}$/.test(s);
}
