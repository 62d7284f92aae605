// The cache folder and LMDB's data file seen from outside: the checks that keep a damaged or foreign
// file from crashing the process, and what a failed write means (LMDB reports a short write to a full
// disk as EIO).
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, statSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { UserError, errorMessage, fsReason } from '../errors.js';
import { LOCK_FILE } from './lock.js';

/** An LMDB error in words: errno codes as fsReason words, else lmdb's own message. */
export function lmdbReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (typeof code === 'string' && code.startsWith('E')) return fsReason(e);
  return errorMessage(e).replace(/^Error:\s*/, '');
}

/** The cause of a write that ran out of room, in words, and what the user can do about it. */
export interface OutOfSpace {
  /** e.g. "no space left on device", "file-size limit (ulimit -f: 100 KiB) reached". */
  words: string;
  /** e.g. "free space". */
  remedy: string;
}

/** A write to the cache that failed; `outOfSpace` is set when a full disk or a file-size limit stopped it. */
export class CacheWriteError extends UserError {
  constructor(message: string, readonly outOfSpace?: OutOfSpace) {
    super(message);
    this.name = 'CacheWriteError';
  }
}

const MiB = 2 ** 20;
/** Below this much free space a failed write is taken for a full disk. */
const FULL_BELOW_BYTES = 64 * MiB;

/**
 * Why writing `dataFile` (in `dir`) failed, as the store reports it. LMDB turns a short write into
 * EIO, which is what both a full disk and a file-size limit (RLIMIT_FSIZE, `ulimit -f`) give, so the
 * cause is found the way a person would: the free space on the disk, then the process's limit.
 */
export function writeFailure(e: unknown, shown: string, dir: string, dataFile: string): CacheWriteError {
  const code = (e as NodeJS.ErrnoException)?.code;
  const free = freeBytes(dir);
  const limit = fileSizeLimit();
  const keep = 'that batch was not kept; everything committed before it is intact';
  if (code === 'ENOSPC' || code === 'EDQUOT' || (free !== undefined && free < FULL_BELOW_BYTES)) {
    const words = code === 'EDQUOT' ? 'disk quota exceeded' : 'no space left on device';
    return new CacheWriteError(`cache ${shown}: ${words}${free === undefined ? '' : ` (${(free / MiB).toFixed(1)} MB free)`}: ${keep} — free some space and rerun to resume`, { words, remedy: 'free space' });
  }
  if (code === 'EFBIG' || (limit !== undefined && fileSize(dataFile) + 16 * MiB >= limit)) {
    const words = `file-size limit${limit === undefined ? '' : ` (ulimit -f: ${Math.round(limit / 1024)} KiB)`} reached`;
    return new CacheWriteError(`cache ${shown}: the ${words}: ${keep} — raise the limit (or use a --cache elsewhere) and rerun to resume`, { words, remedy: 'raise the limit' });
  }
  const note = free === undefined ? '' : `; ${(free / MiB).toFixed(1)} MB free on that disk`;
  return new CacheWriteError(`cache ${shown}: writing a batch failed (${lmdbReason(e)}${note}). That batch was not kept; everything committed before it is intact — free some space and rerun to resume`);
}

function freeBytes(dir: string): number | undefined {
  try {
    const s = statfsSync(dir);
    return s.bavail * s.bsize;
  } catch {
    return undefined;
  }
}

/** This process's soft RLIMIT_FSIZE in bytes (Linux), or undefined when unlimited or unknown. */
export function fileSizeLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max file size'));
    const soft = line?.slice('Max file size'.length).trim().split(/\s+/)[0];
    return soft && /^\d+$/.test(soft) ? Number(soft) : undefined;
  } catch {
    return undefined;
  }
}

export function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/**
 * LMDB trusts its data file: a foreign, empty or truncated data.mdb crashes the process (SIGSEGV or
 * SIGBUS from the memory map) instead of failing. So the header is checked here first: both meta
 * pages carry LMDB's magic and data version, and the file reaches the last page the newest one names.
 */
function checkDataFile(file: string, shown: string, readOnly: boolean): void {
  const size = statSync(file).size;
  if (size === 0) {
    // A writer may start over on an empty file (LMDB initialises it); a reader has nothing to read.
    if (readOnly) throw new UserError(`cache ${shown} is empty (its data.mdb has 0 bytes)`);
    return;
  }
  const damaged = (why: string) =>
    new UserError(`cache ${shown} is damaged or not a viewprobe cache: data.mdb ${why}. Move it away (or delete ${shown}) and rerun extract`);
  const META = 24; // page header size in this LMDB build (8-byte page numbers plus a txn id)
  const readAt = (pos: number, len: number): Buffer => {
    const buf = Buffer.alloc(len);
    const fd = openSync(file, 'r');
    try {
      readSync(fd, buf, 0, len, pos);
    } finally {
      closeSync(fd);
    }
    return buf;
  };
  if (size < 256) throw damaged(`has only ${size} bytes`);
  const p0 = readAt(0, 256);
  if (p0.readUInt32LE(META) !== 0xbeefc0de) throw damaged('is not an LMDB file');
  const version = p0.readUInt32LE(META + 4);
  if (version !== 2) throw damaged(`has LMDB data version ${version} (this build reads 2)`);
  const psize = p0.readUInt32LE(META + 24);
  if (psize < 512 || psize > 65536 || (psize & (psize - 1)) !== 0) throw damaged(`names an impossible page size ${psize}`);
  if (size < 2 * psize) throw damaged(`is truncated (${size} bytes)`);
  const p1 = readAt(psize, 256);
  if (p1.readUInt32LE(META) !== 0xbeefc0de) throw damaged('has a damaged second meta page');
  const newest = p1.readBigUInt64LE(META + 128) > p0.readBigUInt64LE(META + 128) ? p1 : p0;
  const lastPage = newest.readBigUInt64LE(META + 120);
  const needed = (lastPage + 1n) * BigInt(psize);
  if (needed > BigInt(size)) throw damaged(`is truncated (${size} bytes; its last commit needs ${needed})`);
}

/**
 * The checks before LMDB opens `abs`: a folder (created for a writer), not someone else's files, and
 * a data.mdb that LMDB can map without crashing.
 */
export function checkCacheFolder(abs: string, shown: string, readOnly: boolean): void {
  let st;
  try {
    st = statSync(abs);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new UserError(`cache ${shown}: ${fsReason(e)}`);
  }
  if (st && !st.isDirectory()) throw new UserError(`cache ${shown} is a file, not a folder: give --cache a folder (new, or an existing cache)`);
  const dataFile = join(abs, 'data.mdb');
  if (readOnly) {
    if (!st) throw new UserError(`cache ${shown} does not exist (run extract first)`);
    if (!existsSync(dataFile)) throw new UserError(`${shown} is not a viewprobe cache (no data.mdb in it)`);
  } else {
    if (!st) {
      try {
        mkdirSync(abs, { recursive: true });
      } catch (e) {
        throw new UserError(`cannot create cache folder ${shown}: ${fsReason(e)}`);
      }
    } else if (!existsSync(dataFile)) {
      const other = readdirSync(abs).filter((n) => n !== LOCK_FILE && n !== 'lock.mdb' && !n.startsWith('.'));
      if (other.length > 0) {
        throw new UserError(`${shown} is not empty and holds no viewprobe cache (it has ${other.slice(0, 3).join(', ')}${other.length > 3 ? ', ...' : ''}): give --cache a new or empty folder`);
      }
    }
  }
  if (existsSync(dataFile)) checkDataFile(dataFile, shown, readOnly);
}
