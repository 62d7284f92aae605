// Everything human-facing goes to stderr, so that stdout stays clean for --json output.
export function log(message: string): void {
  process.stderr.write(message.endsWith('\n') ? message : message + '\n');
}

/** Prints a value as JSON on stdout: the only thing --json commands write there. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value) + '\n');
}

/** Prints a command's human-readable result on stdout (what `> file` should capture). */
export function printText(lines: string | string[]): void {
  const text = Array.isArray(lines) ? lines.join('\n') : lines;
  process.stdout.write(text.endsWith('\n') ? text : text + '\n');
}
