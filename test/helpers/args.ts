// A command's arguments as the CLI would parse them: the builder's defaults (and checks), then the
// test's own values on top. Tests call the run functions with these, so they see real defaults.
import yargs, { type Argv } from 'yargs';
import type { ArgsOf } from '../../src/cli/options.js';

export function parseArgs<B extends (y: Argv) => Argv<unknown>>(builder: B, argv: string[]): ArgsOf<B> {
  const parsed = builder(yargs(argv)).exitProcess(false).fail((msg, err) => { throw err ?? new Error(msg); }).parseSync();
  return parsed as unknown as ArgsOf<B>;
}

/** Defaults of `builder` overlaid with `values` (options the builder demands must be in `values`). */
export function argsWith<B extends (y: Argv) => Argv<unknown>>(builder: B, values: Partial<ArgsOf<B>>): ArgsOf<B> {
  const demanded: string[] = [];
  for (const [k, v] of Object.entries(values)) {
    if (typeof v === 'string') demanded.push(`--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`, v);
  }
  return { ...parseArgs(builder, demanded), ...values } as ArgsOf<B>;
}
