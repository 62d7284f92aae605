// Downloads for files viewprobe fetches once and keeps (the default weights, the demo's dataset): into
// a per-user cache dir, through a temp file renamed into place only once complete (length, checksums,
// a caller's structure check), so a partial file is never used. Plain Errors with a one-line reason;
// the caller says what was being fetched and what to pass instead.
import { createHash } from 'node:crypto';
import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { errorMessage } from './errors.js';
import { progressPrinter } from './progress.js';

/** `$VIEWPROBE_HOME`, else `$XDG_CACHE_HOME/viewprobe`, else `~/.cache/viewprobe`. */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.VIEWPROBE_HOME) return resolve(env.VIEWPROBE_HOME);
  if (env.XDG_CACHE_HOME) return resolve(env.XDG_CACHE_HOME, 'viewprobe');
  return join(homedir(), '.cache', 'viewprobe');
}

export interface DownloadOptions {
  url: string;
  dest: string;
  /** Lower-case hex; a mismatch fails the download. */
  expectedSha256?: string;
  /** Lower-case hex, for sources that publish only an md5; a mismatch fails the download. */
  expectedMd5?: string;
  /** Until the response headers arrive. */
  connectTimeoutMs?: number;
  /** Longest silence allowed while the body streams. */
  idleTimeoutMs?: number;
  maxRedirects?: number;
  /** Refuse bodies larger than this (a ResNet file is < 1 GB). */
  maxBytes?: number;
  /** Checks the complete temp file before it is renamed into place; throws to reject it. */
  validate?: (tmpPath: string) => Promise<void>;
  onProgress?: (received: number, total: number | undefined) => void;
}

export interface Downloaded {
  path: string;
  size: number;
  sha256: string;
  md5: string;
}

/** Downloads `url` to `dest` atomically. Throws plain Errors with a one-line reason. */
export async function downloadFile(opts: DownloadOptions): Promise<Downloaded> {
  const dir = dirname(opts.dest);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${basename(opts.dest)}.${process.pid}.${Math.random().toString(36).slice(2)}.part`);
  // One controller for the whole transfer: a timer that fires aborts it with the reason it records.
  const abort = new AbortController();
  let why: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  const arm = (ms: number, reason: () => string) => {
    clearTimeout(timer);
    timer = setTimeout(() => { why = reason(); abort.abort(); }, ms);
  };
  let received = 0;
  let total: number | undefined;
  let file: FileHandle | undefined;
  try {
    const connect = opts.connectTimeoutMs ?? 15_000;
    arm(connect, () => `no response within ${connect / 1000}s (connect timeout)`);
    const res = await get(opts.url, abort.signal, opts.maxRedirects ?? 5).catch((e: unknown) => { throw new Error(why ?? fetchReason(e)); });
    const lenHeader = res.headers.get('content-length');
    total = lenHeader !== null && /^\d+$/.test(lenHeader) ? Number(lenHeader) : undefined;
    const maxBytes = opts.maxBytes ?? 1 << 30;
    if (total !== undefined && total > maxBytes) {
      abort.abort();
      throw new Error(`the server announces ${total} bytes, more than the ${maxBytes}-byte limit`);
    }
    const hash = createHash('sha256');
    const md5 = createHash('md5');
    const idle = opts.idleTimeoutMs ?? 30_000;
    file = await open(tmp, 'wx');
    try {
      arm(idle, () => `no data for ${idle / 1000}s after ${received} bytes (idle timeout)`);
      for await (const chunk of (res.body ?? []) as AsyncIterable<Uint8Array>) {
        arm(idle, () => `no data for ${idle / 1000}s after ${received} bytes (idle timeout)`);
        received += chunk.length;
        if (received > maxBytes) {
          why = `the body exceeds the ${maxBytes}-byte limit`;
          abort.abort();
          throw new Error(why);
        }
        hash.update(chunk);
        md5.update(chunk);
        await file.write(chunk);
        opts.onProgress?.(received, total);
      }
    } catch (e) {
      if (why) throw new Error(why);
      throw new Error(`the connection closed after ${received}${total !== undefined ? ` of ${total}` : ''} bytes`);
    } finally {
      clearTimeout(timer);
      await file.close();
    }
    if (total !== undefined && received !== total) throw new Error(`truncated: got ${received} of ${total} bytes`);
    const sha256 = hash.digest('hex');
    if (opts.expectedSha256 && sha256 !== opts.expectedSha256.toLowerCase()) {
      throw new Error(`checksum mismatch: sha256 ${sha256}, expected ${opts.expectedSha256.toLowerCase()}`);
    }
    const md5Hex = md5.digest('hex');
    if (opts.expectedMd5 && md5Hex !== opts.expectedMd5.toLowerCase()) {
      throw new Error(`checksum mismatch: md5 ${md5Hex}, expected ${opts.expectedMd5.toLowerCase()}`);
    }
    await opts.validate?.(tmp);
    await rename(tmp, opts.dest);
    return { path: opts.dest, size: received, sha256, md5: md5Hex };
  } finally {
    clearTimeout(timer);
    await rm(tmp, { force: true });
  }
}

/** The response to `url` after at most `redirectsLeft` redirects; any status but 200 is an error. */
async function get(url: string, signal: AbortSignal, redirectsLeft: number): Promise<Response> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`invalid URL "${url}"`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`unsupported URL scheme "${u.protocol}"`);
  // Redirects by hand, to bound them and to name the last hop when there are too many.
  const res = await fetch(u, { headers: { 'user-agent': 'viewprobe' }, redirect: 'manual', signal });
  const location = res.headers.get('location');
  if (res.status >= 300 && res.status < 400 && location) {
    await res.body?.cancel();
    if (redirectsLeft <= 0) throw new Error(`too many redirects (last to ${location})`);
    return get(new URL(location, u).toString(), signal, redirectsLeft - 1);
  }
  if (res.status !== 200) {
    await res.body?.cancel();
    throw new Error(`HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''} from ${u.host}`);
  }
  return res;
}

/** fetch says only "fetch failed"; the reason (ECONNREFUSED, a DNS failure) is in its cause. */
function fetchReason(e: unknown): string {
  const cause = (e as { cause?: unknown })?.cause;
  return errorMessage(cause instanceof Error ? cause : e);
}


/** A download's progress: "  12.3 / 45.6 MB (27%)", through the one progress printer (a log line per quarter off a TTY). */
export function downloadProgress() {
  const printer = progressPrinter({ logQuarters: true });
  const mb = (n: number) => (n / 1e6).toFixed(1);
  return {
    update(received: number, total: number | undefined) {
      printer.update(`  ${mb(received)}${total ? ` / ${mb(total)} MB (${Math.floor((100 * received) / total)}%)` : ' MB'}`, total ? received / total : undefined);
    },
    done: () => printer.done(),
  };
}
