// Content hashes of image files: the identity of an image in the cache (same bytes = same features,
// whatever the path or split).
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/** sha256 of a buffer, lowercase hex. */
export function hashBytes(buf: Uint8Array): string {
  return createHash('sha256').update(buf).digest('hex');
}

/** sha256 of a file's bytes, lowercase hex, streamed (for callers that do not read the file anyway). */
export function hashFile(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('error', reject)
      .on('data', (chunk) => h.update(chunk))
      .on('end', () => resolve(h.digest('hex')));
  });
}

/** True for a lowercase hex sha256 (what hashBytes/hashFile return). */
export function isSha256Hex(s: string): boolean {
  return /^[0-9a-f]{64}$/.test(s);
}
