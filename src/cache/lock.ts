// The writer lock of a cache folder: a file holding the writer's pid, host and process start time.
// A second writer refuses at once (it would only duplicate work; LMDB itself keeps the data consistent
// regardless). A lock left by a dead process (pid gone, or the pid reused by a process that started
// later) is stale and taken over. Locks from another host cannot be checked and are respected.
import { hostname } from 'node:os';
import { linkSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError, fsReason } from '../errors.js';

export const LOCK_FILE = 'writer.lock';

interface LockHolder {
  pid: number;
  host: string;
  since: string;
  procStart?: string;
}

function procStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: count fields after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function holderAlive(h: LockHolder): boolean {
  if (h.host !== hostname()) return true;
  try {
    process.kill(h.pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  const started = procStartTime(h.pid);
  return !(h.procStart && started && started !== h.procStart);
}

export class WriterLock {
  private released = false;
  private readonly onExit = () => this.release();

  private constructor(readonly file: string, private readonly content: string) {
    process.once('exit', this.onExit);
  }

  static acquire(abs: string, shown: string): WriterLock {
    const file = join(abs, LOCK_FILE);
    const content = JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString(), procStart: procStartTime(process.pid) } satisfies LockHolder);
    const tmp = join(abs, `.${LOCK_FILE}.${process.pid}.${Date.now()}`);
    try {
      writeFileSync(tmp, content);
    } catch (e) {
      throw new UserError(`cache folder ${shown} is not writable (${fsReason(e)}): a writer needs a folder it can write to (readers can still open it)`);
    }
    try {
      for (let attempt = 0; attempt < 5; attempt++) {
        try {
          // link() creates the lock with its full content at once, or fails if one exists.
          linkSync(tmp, file);
          return new WriterLock(file, content);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new UserError(`cannot lock cache ${shown}: ${fsReason(e)}`);
        }
        let text: string;
        try {
          text = readFileSync(file, 'utf8');
        } catch {
          continue;
        }
        let holder: LockHolder | undefined;
        try {
          holder = JSON.parse(text) as LockHolder;
        } catch {
          holder = undefined;
        }
        if (holder && typeof holder.pid === 'number' && holderAlive(holder)) {
          const who = holder.pid === process.pid && holder.host === hostname() ? 'this same process' : `pid ${holder.pid}`;
          throw new UserError(`cache ${shown} is in use by another writer (${who} on ${holder.host}, since ${holder.since}): wait for it to finish or use another --cache (if no such process runs, delete ${file})`);
        }
        // Stale: remove it only if it is still the lock we judged, then try again.
        try {
          if (readFileSync(file, 'utf8') === text) unlinkSync(file);
        } catch {
          /* someone else removed it first */
        }
      }
      throw new UserError(`cannot lock cache ${shown}: the lock file ${file} keeps changing`);
    } finally {
      try {
        unlinkSync(tmp);
      } catch {
        /* already gone */
      }
    }
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    process.removeListener('exit', this.onExit);
    try {
      if (readFileSync(this.file, 'utf8') === this.content) unlinkSync(this.file);
    } catch {
      /* already gone */
    }
  }
}

/** For a writer that takes no lock: can it create files in the folder at all? */
export function probeWritable(abs: string, shown: string): void {
  const probe = join(abs, `.write-probe-${process.pid}`);
  try {
    writeFileSync(probe, '');
    unlinkSync(probe);
  } catch (e) {
    throw new UserError(`cache folder ${shown} is not writable (${fsReason(e)}): a writer needs a folder it can write to (readers can still open it)`);
  }
}

