// Every numeric option of every command, through the real parser (main()), against a table of bad
// values: each must stop the command at parse time with exit 2 and one line naming the option,
// before any command code runs. The command modules are replaced by recorders here, so a value the
// parser let through shows up as a command that ran (and nothing is touched on disk either way);
// test/cli/options-cli.test.ts repeats a few cases through real child processes.
import { availableParallelism } from 'node:os';
import yargs, { type Argv } from 'yargs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

const ran = vi.hoisted(() => [] as { command: string; args: Record<string, unknown> }[]);
vi.mock('../../src/cli/embed.js', () => ({ runEmbed: async (a: Record<string, unknown>) => (ran.push({ command: 'embed', args: a }), 0) }));
vi.mock('../../src/cli/extract.js', () => ({ runExtract: async (a: Record<string, unknown>) => (ran.push({ command: 'extract', args: a }), 0) }));
vi.mock('../../src/cli/train.js', () => ({ runTrain: async (a: Record<string, unknown>) => (ran.push({ command: 'train', args: a }), 0) }));
vi.mock('../../src/cli/eval.js', () => ({ runEval: async (a: Record<string, unknown>) => (ran.push({ command: 'eval', args: a }), 0) }));
vi.mock('../../src/cli/compare.js', () => ({ runCompare: async (a: Record<string, unknown>) => (ran.push({ command: 'compare', args: a }), 0) }));
vi.mock('../../src/cli/predict.js', () => ({ runPredict: async (a: Record<string, unknown>) => (ran.push({ command: 'predict', args: a }), 0) }));
vi.mock('../../src/cli/cache.js', () => ({
  runCacheInfo: async (a: Record<string, unknown>) => (ran.push({ command: 'cache info', args: a }), 0),
  runCacheMerge: async (a: Record<string, unknown>) => (ran.push({ command: 'cache merge', args: a }), 0),
}));

const { main } = await import('../../src/cli/main.js');
const c = await import('../../src/cli/commands.js');

/** What each command needs besides the option under test (the recorders never look at it). */
const BASE: Record<string, string[]> = {
  embed: ['embed', 'a.jpg'],
  extract: ['extract', '--train', 'data'],
  train: ['train', '--out', 'run'],
  eval: ['eval', '--run', 'run'],
  compare: ['compare', 'run1', 'run2'],
  predict: ['predict', 'a.jpg', '--run', 'run'],
  'cache info': ['cache', 'info'],
  'cache merge': ['cache', 'merge', 'out', 'in1', 'in2'],
};

const BUILDERS: Record<string, (y: Argv) => Argv<unknown>> = {
  embed: c.embedBuilder, extract: c.extractBuilder, train: c.trainBuilder, eval: c.evalBuilder, compare: c.compareBuilder,
  predict: c.predictBuilder, 'cache info': c.cacheInfoBuilder, 'cache merge': c.cacheMergeBuilder,
};

/** Whole numbers min..max: what is wrong with each bad value is spelled out by the value itself. */
function badWhole(min: number, max: number): string[] {
  return [String(min - 1), '-1', '-7', '2.5', String(min + 0.5), String(max + 1), String(max * 10), ...(max < 1e9 ? ['1e9'] : []), '99999999999999999999999',
    '1e400', 'Infinity', '-Infinity', 'NaN', 'abc', '3x', '0x10', '1,000', '', ' ', 'true'];
}
/** Real numbers in (min, max] (minExclusive) or [min, max]. */
function badReal(min: number, max: number, minExclusive: boolean): string[] {
  return [...(minExclusive ? [String(min)] : []), String(min - 0.5), '-1', String(max * 1.5), '1e308', '1e400', 'Infinity', 'NaN', 'abc', '1e-3x', '', 'true'];
}

// The documented ranges, written out here rather than read from commands.ts, so that a range
// changed there by mistake fails this table.
const THREADS = badWhole(1, 4096);
const TABLE: Record<string, Record<string, string[]>> = {
  embed: { threads: THREADS, size: badWhole(32, 1024) },
  extract: {
    threads: THREADS,
    size: badWhole(32, 1024),
    views: badWhole(0, 1000),
    batch: badWhole(1, 1024),
    seed: badWhole(0, 2 ** 32 - 1),
    concurrency: badWhole(1, 1024),
    'commit-views': badWhole(1, 100_000),
    shards: badWhole(1, 100_000),
    'calibration-images': badWhole(1, 100_000),
  },
  train: {
    epochs: badWhole(1, 100_000),
    lr: badReal(0, 10, true),
    'step-size': badWhole(1, 100_000),
    gamma: badReal(0, 1, true),
    batch: badWhole(1, 65_536),
    seed: badWhole(0, 2 ** 32 - 1),
    'weight-decay': badReal(0, 1, false),
    'label-smoothing': badReal(0, 0.99, false),
  },
  eval: { threads: THREADS },
  compare: {},
  predict: { threads: THREADS, top: badWhole(1, 100_000) },
  'cache info': {},
  'cache merge': {},
};

let err: string[];
let out: string[];
beforeEach(() => {
  ran.length = 0;
  err = [];
  out = [];
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
});
afterEach(() => vi.restoreAllMocks());

async function cli(argv: string[]) {
  err.length = 0;
  out.length = 0;
  ran.length = 0;
  const code = await main(argv);
  return { code, stderr: err.join(''), stdout: out.join(''), ran: [...ran] };
}

/** Exit 2, one line on stderr naming --name, nothing on stdout, no command run. Returns the line for the message. */
async function expectRefused(argv: string[], name: string): Promise<string> {
  const r = await cli(argv);
  const what = `viewprobe ${argv.map((a) => JSON.stringify(a)).join(' ')}`;
  expect(r.ran.map((x) => x.command), `${what} ran the command`).toEqual([]);
  expect(r.code, `${what}: ${r.stderr}`).toBe(2);
  expect(r.stdout, what).toBe('');
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  expect(lines, what).toHaveLength(1);
  expect(lines[0], what).toMatch(/^viewprobe: /);
  expect(lines[0], what).toContain(`--${name}`);
  expect(lines[0], what).not.toMatch(/internal error|\bat .*:\d+:\d+|Error:/);
  return lines[0]!;
}

describe('numeric options: the table of bad values', () => {
  for (const [command, options] of Object.entries(TABLE)) {
    for (const [name, bad] of Object.entries(options)) {
      it(`${command} --${name}: ${bad.length} bad values, missing, given twice`, async () => {
        const base = BASE[command]!;
        for (const v of bad) {
          // both spellings: `--name v` and `--name=v` (the only way to pass an empty or a negative value unambiguously)
          const line = await expectRefused([...base, `--${name}=${v}`], name);
          if (v !== '' && !v.startsWith('-')) await expectRefused([...base, `--${name}`, v], name);
          // the message says what was given (or that nothing was) and the range
          if (v.trim() === '') expect(line).toMatch(new RegExp(`--${name} needs a value`));
          else expect(line).toContain(`(got "${v}")`);
          if (v.trim() !== '') expect(line).toMatch(/must be a (whole )?number [>=]+ [\d.e+-]+ and <= [\d.e+]+/);
        }
        // missing value: at the end, before another option, and negated
        expect(await expectRefused([...base, `--${name}`], name)).toBe(`viewprobe: --${name} needs a value`);
        await expectRefused([...base, `--${name}`, '--json'], name);
        await expectRefused([...base, `--no-${name}`], name);
        // given twice, even with the same valid value
        expect(await expectRefused([...base, `--${name}`, '3', `--${name}`, '3'], name)).toBe(`viewprobe: --${name} was given 2 times; give it once`);
      });
    }
  }

  it('the table holds every numeric option of every command (an option that rejects "abc" is numeric)', async () => {
    for (const [command, builder] of Object.entries(BUILDERS)) {
      const keys = Object.keys((builder(yargs([])) as unknown as { getOptions(): { key: Record<string, boolean> } }).getOptions().key)
        .filter((k) => k !== 'help' && k !== 'version');
      expect(keys.length, command).toBeGreaterThan(0);
      const numeric: string[] = [];
      for (const k of keys) {
        const r = await cli([...BASE[command]!, `--${k}`, 'abc']);
        if (r.code === 2 && r.stderr.includes(`--${k} must be`)) numeric.push(k);
      }
      expect(numeric.sort(), command).toEqual(Object.keys(TABLE[command]!).sort());
    }
  });

  it('a value inside every range reaches the command, as a number', async () => {
    const good: Record<string, Record<string, [string, number]>> = {
      extract: { threads: ['1', 1], views: ['0', 0], batch: ['1024', 1024], seed: ['4294967295', 4294967295], concurrency: ['1', 1], 'commit-views': ['100000', 100000], shards: ['1e3', 1000] },
      train: { epochs: ['1', 1], lr: ['10', 10], 'step-size': ['+3', 3], gamma: ['1', 1], batch: ['65536', 65536], seed: ['0', 0], 'weight-decay': ['1', 1], 'label-smoothing': ['0.99', 0.99] },
      predict: { top: ['100000', 100000] },
    };
    for (const [command, options] of Object.entries(good)) {
      for (const [name, [text, value]] of Object.entries(options)) {
        const r = await cli([...BASE[command]!, `--${name}`, text]);
        expect(r.code, `${command} --${name} ${text}: ${r.stderr}`).toBe(0);
        expect(r.ran).toHaveLength(1);
        const key = name.replace(/-(\w)/g, (_, ch: string) => ch.toUpperCase());
        expect(r.ran[0]!.args[key], `${command} --${name} ${text}`).toBe(value);
      }
    }
    const r = await cli([...BASE.train!, '--lr', '1e-3', '--gamma', '.5']);
    expect(r.ran[0]!.args).toMatchObject({ lr: 1e-3, gamma: 0.5, epochs: 50, batch: 64 });
    // -0 is 0, not a negative zero that prints as "0" but divides as -Infinity
    const z = await cli([...BASE.extract!, '--views=-0']);
    expect(Object.is(z.ran[0]!.args.views, 0)).toBe(true);
  });

  it('--threads above the machine\'s cores is capped to them, with a note', async () => {
    const cores = availableParallelism();
    const r = await cli([...BASE.eval!, '--threads', '4096']);
    expect(r.code).toBe(0);
    expect(r.ran[0]!.args.threads).toBe(Math.min(4096, cores));
    if (cores < 4096) expect(r.stderr).toBe(`note: --threads 4096 is more than this machine's ${cores} cores; using ${cores}\n`);
    const ok = await cli([...BASE.eval!, '--threads', '1']);
    expect(ok.ran[0]!.args.threads).toBe(1);
    expect(ok.stderr).toBe('');
  });
});

describe('commands and actions that do not exist name themselves', () => {
  const cases: [string[], string][] = [
    [['cache', 'frob'], 'viewprobe: unknown cache action "frob": use info or merge'],
    [['cache', 'info', '--cache'], 'viewprobe: --cache needs a value'],
    [['cache'], 'viewprobe: name a cache action: info or merge'],
    [['frob'], 'viewprobe: Unknown argument: frob'],
    [['extrct'], 'viewprobe: unknown command; did you mean extract?'],
    [[], 'viewprobe: name a command'],
    [['cache', 'info', 'extra'], 'viewprobe: Unknown argument: extra'],
    [['train', '--out', 'r', '--frob', '1'], 'viewprobe: Unknown argument: frob'],
    [['train', '--out', 'r', '--views', 'some'], 'viewprobe: Invalid values:'],
    [['extract', '--preset', 'fancy'], 'viewprobe: Invalid values:'],
    [['train'], 'viewprobe: Missing required argument: out'],
    [['train', '--out'], 'viewprobe: --out needs a value'],
  ];
  for (const [argv, message] of cases) {
    it(`viewprobe ${argv.join(' ')}`, async () => {
      const r = await cli(argv);
      expect(r.ran).toEqual([]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr.split('\n')[0]).toContain(message);
      expect(r.stderr).not.toMatch(/internal error|\bat .*:\d+:\d+/);
    });
  }

  it('the actions that exist still run', async () => {
    expect((await cli(['cache', 'info'])).ran.map((x) => x.command)).toEqual(['cache info']);
    expect((await cli(['cache', 'merge', 'o', 'a', 'b'])).ran.map((x) => x.command)).toEqual(['cache merge']);
  });
});
