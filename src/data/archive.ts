// A dataset published as one .tar.gz: downloaded once into the per-user cache dir (as the default
// weights are: temp file renamed into place, progress on stderr), checked against the checksums its
// publisher gives, and unpacked beside it. The first download's size and sha256 are recorded next to
// the archive, and any later download (or cached copy) that differs is refused, so a file that
// changes on the server is noticed even where the publisher pins only an md5.
//   <home>/datasets/<name>-<url hash>.tar.gz        the archive
//   <home>/datasets/<name>-<url hash>.tar.gz.json   its record: url, size, sha256, md5, date
//   <home>/datasets/<name>-<url hash>/              the unpacked tree (+ .viewprobe-unpacked.json)
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { extract as untar } from 'tar';
import { downloadFile, downloadProgress } from '../download.js';
import { UserError, errorMessage } from '../errors.js';
import { log } from '../log.js';

export interface ArchiveSource {
  /** Names the cached files; letters, digits, `.`, `_`, `-`. */
  name: string;
  url: string;
  /** For the log lines: what this is and where it comes from. */
  description: string;
  /** The publisher's checksums (lower-case hex); give at least one. */
  md5?: string;
  sha256?: string;
  /** Refuse a body larger than this. */
  maxBytes: number;
}

export interface FetchArchiveOptions {
  /** The per-user cache dir (download.ts cacheDir()). */
  home: string;
  quiet?: boolean;
  /** Appended to a failure: what to pass instead. */
  hint?: string;
  /** For tests: shorter timeouts. */
  connectTimeoutMs?: number;
  idleTimeoutMs?: number;
}

export interface FetchedArchive {
  /** The unpacked tree. */
  dir: string;
  /** cache: already unpacked; archive: unpacked from the cached archive; download: fetched now. */
  source: 'cache' | 'archive' | 'download';
  size: number;
  sha256: string;
}

interface ArchiveRecord {
  url: string;
  size: number;
  sha256: string;
  md5: string;
  downloaded: string;
}

const UNPACKED_MARK = '.viewprobe-unpacked.json';

export function archivePaths(src: ArchiveSource, home: string) {
  if (!/^[\w.-]+$/.test(src.name)) throw new Error(`archive name "${src.name}" must be letters, digits, . _ -`);
  // One set of files per URL, so that an overridden URL never reuses another one's files.
  const stem = `${src.name}-${createHash('sha256').update(src.url).digest('hex').slice(0, 12)}`;
  const dir = join(home, 'datasets');
  return { dir, archive: join(dir, `${stem}.tar.gz`), record: join(dir, `${stem}.tar.gz.json`), unpacked: join(dir, stem) };
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

async function hashFile(file: string): Promise<{ size: number; sha256: string; md5: string }> {
  const sha = createHash('sha256');
  const md5 = createHash('md5');
  let size = 0;
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    size += chunk.length;
    sha.update(chunk);
    md5.update(chunk);
  }
  return { size, sha256: sha.digest('hex'), md5: md5.digest('hex') };
}

/** Why `got` is not the archive the source and the record describe, or undefined when it is. */
function mismatch(got: { size: number; sha256: string; md5: string }, src: ArchiveSource, rec: ArchiveRecord | undefined): string | undefined {
  if (src.md5 && got.md5 !== src.md5.toLowerCase()) return `md5 ${got.md5}, expected ${src.md5.toLowerCase()}`;
  if (src.sha256 && got.sha256 !== src.sha256.toLowerCase()) return `sha256 ${got.sha256}, expected ${src.sha256.toLowerCase()}`;
  if (rec && (got.sha256 !== rec.sha256 || got.size !== rec.size)) {
    return `sha256 ${got.sha256} (${got.size} bytes), but the copy first downloaded on ${rec.downloaded} had sha256 ${rec.sha256} (${rec.size} bytes)`;
  }
  return undefined;
}

/** The unpacked archive: from the cache when it is there and matches its record, else downloaded and unpacked. */
export async function fetchArchive(src: ArchiveSource, opts: FetchArchiveOptions): Promise<FetchedArchive> {
  const p = archivePaths(src, opts.home);
  const say = (m: string) => { if (!opts.quiet) log(m); };
  const fail = (why: string) => new UserError(`cannot get ${src.description} from ${src.url}: ${why}${opts.hint ? `; ${opts.hint}` : ''}`);
  const rec = await readJson<ArchiveRecord>(p.record);
  if (rec && rec.url !== src.url) throw fail(`${p.record} records another URL (${rec.url}); delete it`);

  if (rec) {
    const mark = await readJson<{ sha256: string }>(join(p.unpacked, UNPACKED_MARK));
    if (mark?.sha256 === rec.sha256) return { dir: p.unpacked, source: 'cache', size: rec.size, sha256: rec.sha256 };
  }

  let got: { size: number; sha256: string; md5: string } | undefined;
  let source: FetchedArchive['source'] = 'archive';
  if (rec && (await stat(p.archive).catch(() => undefined))?.size === rec.size) {
    got = await hashFile(p.archive);
    const bad = mismatch(got, src, rec);
    if (bad) {
      say(`${src.description}: the cached ${p.archive} has ${bad}; downloading it again`);
      got = undefined;
    }
  }
  if (!got) {
    say(`${src.description}: downloading ${src.url}`);
    const progress = opts.quiet ? undefined : downloadProgress();
    try {
      got = await downloadFile({
        url: src.url,
        dest: p.archive,
        maxBytes: src.maxBytes,
        ...(src.md5 ? { expectedMd5: src.md5 } : {}),
        // The first download's sha256 pins every later one.
        ...(src.sha256 || rec ? { expectedSha256: src.sha256 ?? rec!.sha256 } : {}),
        ...(opts.connectTimeoutMs ? { connectTimeoutMs: opts.connectTimeoutMs } : {}),
        ...(opts.idleTimeoutMs ? { idleTimeoutMs: opts.idleTimeoutMs } : {}),
        ...(progress ? { onProgress: progress.update } : {}),
      });
    } catch (e) {
      const why = errorMessage(e).split('\n')[0]!;
      const changed = rec && !src.sha256 && why.startsWith('checksum mismatch: sha256');
      throw fail(changed ? `${why}, the sha256 of the copy first downloaded on ${rec.downloaded} (recorded in ${p.record}; delete it to accept the new file)` : why);
    } finally {
      progress?.done();
    }
    source = 'download';
    if (!rec) {
      const record: ArchiveRecord = { url: src.url, size: got.size, sha256: got.sha256, md5: got.md5, downloaded: new Date().toISOString() };
      await writeFile(`${p.record}.tmp`, JSON.stringify(record, null, 2) + '\n');
      await rename(`${p.record}.tmp`, p.record);
    }
    say(`${src.description}: saved ${p.archive} (${got.size} bytes, sha256 ${got.sha256}, md5 ${got.md5})`);
  }

  await unpack(p.archive, p.unpacked, got.sha256, (m) => say(`${src.description}: ${m}`)).catch((e: unknown) => {
    throw fail(`cannot unpack ${p.archive}: ${errorMessage(e).split('\n')[0]}`);
  });
  return { dir: p.unpacked, source, size: got.size, sha256: got.sha256 };
}

/**
 * Unpacks into a temp folder renamed into place once complete, with a mark naming the archive, so a
 * half-unpacked tree is never taken for a whole one. Only files and folders are written (no links,
 * devices); tar keeps every entry inside the folder (no absolute paths, no `..`).
 */
async function unpack(archive: string, dest: string, sha256: string, say: (m: string) => void): Promise<void> {
  const tmp = `${dest}.${process.pid}.${Math.random().toString(36).slice(2)}.part`;
  const t0 = Date.now();
  let files = 0;
  say(`unpacking into ${dest}`);
  try {
    await mkdir(tmp, { recursive: true });
    await untar({
      file: archive,
      cwd: tmp,
      strict: true,
      filter: (_path, entry) => {
        const type = 'type' in entry ? entry.type : undefined;
        const keep = type === 'File' || type === 'OldFile' || type === 'Directory';
        if (keep && type !== 'Directory') files++;
        return keep;
      },
    });
    await writeFile(join(tmp, UNPACKED_MARK), JSON.stringify({ sha256, files }) + '\n');
    await rm(dest, { recursive: true, force: true });
    await rename(tmp, dest);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  say(`unpacked ${files} files in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}
