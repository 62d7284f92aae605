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
