// Where the project's shared data (photos, weights, references) lives: `../shared` beside the
// checkout unless VIEWPROBE_SHARED says otherwise.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root (the folder holding package.json), from src/ or dist/. */
export const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export function sharedDir(): string {
  return resolve(process.env.VIEWPROBE_SHARED ?? join(packageRoot, '..', 'shared'));
}

export function sharedPath(...parts: string[]): string {
  return join(sharedDir(), ...parts);
}

export function hasShared(...parts: string[]): boolean {
  return existsSync(sharedPath(...parts));
}

/** viewprobe's version, from its package.json. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
}
