// Options shared by several commands, and the checks every numeric option goes through. A value
// outside its documented range stops the command at parse time, before it opens a cache or
// allocates anything, with one line naming the option, the value and the range (exit 2).
import { availableParallelism } from 'node:os';
import type { Argv } from 'yargs';
import { UserError } from '../errors.js';
import { log } from '../log.js';

export interface Range {
  min: number;
  max: number;
  /** Whole numbers only. */
  int?: boolean;
  /** The minimum itself is not allowed (e.g. a learning rate > 0). */
  minExclusive?: boolean;
}

export function describeRange(r: Range): string {
  const kind = r.int ? 'a whole number' : 'a number';
  return `${kind} ${r.minExclusive ? '>' : '>='} ${r.min} and <= ${r.max}`;
}

// A plain decimal, optionally with an exponent: what a person types. yargs' own number parsing
// would turn `--views=` into 0 and `--views abc` into NaN, so numeric options take the raw text.
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** The yargs `coerce` of a numeric option: returns the value or throws a UserError naming `--name`. */
export function checkNumber(name: string, r: Range): (v: unknown) => number {
  return (v: unknown) => {
    if (Array.isArray(v)) throw new UserError(`--${name} was given ${v.length} times; give it once`);
    if ((typeof v === 'string' && v.trim() === '') || typeof v === 'boolean' || v === undefined) throw new UserError(`--${name} needs a value: ${describeRange(r)}`);
    const n = typeof v === 'number' ? v : typeof v === 'string' && DECIMAL.test(v.trim()) ? Number(v.trim()) : NaN;
    const ok = Number.isFinite(n) && (r.minExclusive ? n > r.min : n >= r.min) && n <= r.max && (!r.int || Number.isInteger(n));
    if (!ok) throw new UserError(`--${name} must be ${describeRange(r)} (got ${typeof v === 'string' ? JSON.stringify(v) : String(v)})`);
    return n + 0; // -0 -> 0
  };
}

/**
 * A numeric option with its range checked and shown in --help. `requiresArg` makes a bare `--views`
 * an error instead of silently meaning the default. No yargs `type`: the check sees what was typed.
 */
export function numberOption(describe: string, range: Range, name: string) {
  return {
    requiresArg: true,
    describe: `${describe} [${describeRange(range).replace(/^an? /, '')}]`,
    coerce: checkNumber(name, range),
  };
}

/** Threads beyond the machine's cores only oversubscribe it: capped, with a note. */
export function capThreads(v: number, name = 'threads'): number {
  const cores = availableParallelism();
  if (v > cores) {
    log(`note: --${name} ${v} is more than this machine's ${cores} cores; using ${cores}`);
    return cores;
  }
  return v;
}

const THREADS: Range = { min: 1, max: 4096, int: true };
export const SEED: Range = { min: 0, max: 2 ** 32 - 1, int: true };

/** Where the backbone runs; eval, predict and export take the architecture from the run, so only these. */
export function runtimeOptions<T>(y: Argv<T>) {
  return y
    .option('weights', { type: 'string', requiresArg: true, describe: 'backbone weights (safetensors); default: download resnet18 IMAGENET1K_V1 once' })
    .option('engine', { choices: ['auto', 'onnx', 'tfjs'] as const, default: 'auto' as const, describe: 'backbone runtime' })
    .option('device', { choices: ['auto', 'cpu', 'cuda'] as const, default: 'auto' as const })
    .option('threads', {
      ...numberOption('CPU threads for the backbone (default: all cores)', THREADS, 'threads'),
      coerce: (v: unknown) => capThreads(checkNumber('threads', THREADS)(v)),
    });
}

export function backboneOptions<T>(y: Argv<T>) {
  return runtimeOptions(y)
    .option('backbone', { type: 'string', default: 'resnet18', requiresArg: true, describe: 'architecture of the default weights' });
}

export function jsonOption<T>(y: Argv<T>) {
  return y.option('json', { type: 'boolean', default: false, describe: 'print the result as JSON on stdout' });
}

type CamelCase<S extends string> = S extends `${infer H}-${infer T}` ? `${H}${Capitalize<CamelCase<T>>}` : S;
/**
 * The typed arguments a builder defines, camelCased (`--step-size` -> stepSize), without yargs'
 * `_` and `$0`: what a command's run function takes, so that tests can call it directly.
 */
export type ArgsOf<B extends (y: Argv) => Argv<unknown>> = ReturnType<B> extends Argv<infer U>
  ? { [K in keyof U as K extends `${string}-${string}` ? CamelCase<K & string> : K extends '_' | '$0' ? never : K]: U[K] }
  : never;
