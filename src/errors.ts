// Errors a user can act on: printed as one line (no stack trace) by the CLI, exit code 2.
export class UserError extends Error {
  constructor(message: string, readonly exitCode = 2) {
    super(message);
    this.name = 'UserError';
  }
}

/** Bad input in a file, located to its line: `file:line: message`. */
export class InputError extends UserError {
  constructor(readonly file: string, readonly line: number | undefined, detail: string) {
    super(line === undefined ? `${file}: ${detail}` : `${file}:${line}: ${detail}`);
    this.name = 'InputError';
  }
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

const ERRNO_REASONS: Record<string, string> = {
  ENOENT: 'no such file',
  ENOTDIR: 'a parent of it is a file, not a folder',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'is a directory',
  ELOOP: 'too many levels of symbolic links (a symlink loop?)',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EFBIG: 'file too large (a file-size limit?)',
  EMFILE: 'too many open files',
};

/**
 * A file-system error as words a user can act on ("permission denied"), the same everywhere.
 * `overrides` words a code for its context (a missing image is "file not found").
 */
export function fsReason(e: unknown, overrides: Partial<Record<string, string>> = {}): string {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (typeof code === 'string') {
    const words = overrides[code] ?? ERRNO_REASONS[code];
    if (words) return words;
    return `${code}: ${errorMessage(e).split('\n')[0]}`;
  }
  return errorMessage(e).split('\n')[0]!;
}
