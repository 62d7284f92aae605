// Where the backbone weights come from: `--weights FILE`, or the default ResNet18 IMAGENET1K_V1
// safetensors, downloaded once into a per-user cache. A download lands in a temp file and is renamed
// into place only once complete (length, sha256, safetensors structure), so a partial file is never
// used; its size and sha256 go into a sidecar JSON that is checked each time the file is reused.
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { UserError, errorMessage } from '../errors.js';
import { log } from '../log.js';
import { progressPrinter } from '../progress.js';
import { readSafetensors, type SafetensorsFile } from './safetensors.js';

/** timm's copy of torchvision's ResNet18 IMAGENET1K_V1, with torchvision's tensor names. */
export const DEFAULT_WEIGHTS_URL = 'https://huggingface.co/timm/resnet18.tv_in1k/resolve/main/model.safetensors';
export const DEFAULT_ARCH = 'resnet18';

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
    await opts.validate?.(tmp);
    await rename(tmp, opts.dest);
    return { path: opts.dest, size: received, sha256 };
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

interface Sidecar {
  url: string;
  size: number;
  sha256: string;
  downloaded: string;
}

export interface ResolveOptions {
  weights?: string;
  backbone?: string;
  quiet?: boolean;
  env?: NodeJS.ProcessEnv;
  /** For tests: shorter timeouts. */
  connectTimeoutMs?: number;
  idleTimeoutMs?: number;
}

export interface ResolvedWeights {
  path: string;
  source: 'file' | 'cache' | 'download';
  /** The file, already read and checked when the cache or a download needed that anyway (read it once). */
  file?: SafetensorsFile;
}

/** The weights file to load: `--weights`, or the default downloaded once into the cache dir. */
export async function resolveWeights(opts: ResolveOptions = {}): Promise<ResolvedWeights> {
  if (opts.weights) return { path: resolve(opts.weights), source: 'file' };
  const arch = (opts.backbone ?? DEFAULT_ARCH).toLowerCase();
  if (arch !== DEFAULT_ARCH) {
    throw new UserError(`there are no default weights for ${arch} (only ${DEFAULT_ARCH}); pass --weights FILE (a ${arch} safetensors file)`);
  }
  const env = opts.env ?? process.env;
  const url = env.VIEWPROBE_WEIGHTS_URL || DEFAULT_WEIGHTS_URL;
  const expected = env.VIEWPROBE_WEIGHTS_SHA256?.trim().toLowerCase() || undefined;
  // One file per URL, so that overriding the URL never reuses another file.
  const dest = join(cacheDir(env), 'weights', `${arch}-${createHash('sha256').update(url).digest('hex').slice(0, 12)}.safetensors`);
  const say = (m: string) => { if (!opts.quiet) log(m); };

  const reused = await checkCached(dest, url, expected);
  if (reused && typeof reused !== 'string') return { path: dest, source: 'cache', file: reused };
  if (reused) say(`weights: the cached ${dest} ${reused}; downloading it again`);

  say(`weights: downloading the default ${arch} weights (torchvision IMAGENET1K_V1) from ${url}`);
  const progress = opts.quiet ? undefined : downloadProgress();
  let file: SafetensorsFile | undefined;
  try {
    const got = await downloadFile({
      url,
      dest,
      ...(expected ? { expectedSha256: expected } : {}),
      ...(opts.connectTimeoutMs ? { connectTimeoutMs: opts.connectTimeoutMs } : {}),
      ...(opts.idleTimeoutMs ? { idleTimeoutMs: opts.idleTimeoutMs } : {}),
      // The whole structure, so that a body cut short by a server that sent no Content-Length is refused.
      validate: async (tmpPath) => {
        try {
          file = await readSafetensors(tmpPath);
        } catch (e) {
          // The temp file's name means nothing to the user.
          throw new Error(errorMessage(e).replace(`${tmpPath}: `, 'the downloaded file is '));
        }
      },
      ...(progress ? { onProgress: progress.update } : {}),
    });
    progress?.done();
    const sidecar: Sidecar = { url, size: got.size, sha256: got.sha256, downloaded: new Date().toISOString() };
    await writeFile(`${dest}.json.tmp`, JSON.stringify(sidecar, null, 2) + '\n');
    await rename(`${dest}.json.tmp`, `${dest}.json`);
    say(`weights: saved ${dest} (${got.size} bytes, sha256 ${got.sha256})`);
    return { path: dest, source: 'download', ...(file ? { file: { ...file, path: dest } } : {}) };
  } catch (e) {
    progress?.done();
    const why = errorMessage(e).split('\n')[0];
    throw new UserError(`cannot get the default ${arch} weights from ${url}: ${why}; pass --weights FILE (a ResNet safetensors file)`);
  }
}

/**
 * The cached file, read and checked against its sidecar (and the expected sha256); else why it cannot
 * be used, or undefined if there is none. Reading it here is the read the backbone needs anyway.
 */
async function checkCached(dest: string, url: string, expected: string | undefined): Promise<SafetensorsFile | string | undefined> {
  let side: Sidecar;
  try {
    side = JSON.parse(await readFile(`${dest}.json`, 'utf8')) as Sidecar;
  } catch {
    return undefined;
  }
  let st;
  try {
    st = await stat(dest);
  } catch {
    return 'is missing';
  }
  if (side.url !== url) return 'was downloaded from another URL';
  if (st.size !== side.size) return `is ${st.size} bytes, its record says ${side.size}`;
  let file: SafetensorsFile;
  try {
    file = await readSafetensors(dest);
  } catch (e) {
    return `cannot be read (${errorMessage(e).split('\n')[0]})`;
  }
  if (file.sha256 !== side.sha256) return 'does not match its recorded sha256';
  if (expected && file.sha256 !== expected) return `has sha256 ${file.sha256}, not the expected ${expected}`;
  return file;
}

/** The download's progress: "  12.3 / 45.6 MB (27%)", at each quarter in a log. */
function downloadProgress() {
  const printer = progressPrinter({ logQuarters: true });
  const mb = (n: number) => (n / 1e6).toFixed(1);
  return {
    update(received: number, total: number | undefined) {
      printer.update(`  ${mb(received)}${total ? ` / ${mb(total)} MB (${Math.floor((100 * received) / total)}%)` : ' MB'}`, total ? received / total : undefined);
    },
    done: () => printer.done(),
  };
}
