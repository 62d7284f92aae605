// A few of test/cli/options.test.ts's bad values again, through bin/viewprobe.js in a child process,
// with inputs that would let the command get to work: the process exits 2 with one line naming the
// option, prints no stack trace, and leaves no cache or run directory behind. The environment points
// the default-weights download at a closed local port, so a check that failed could not fetch anything.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'vp-options-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const env = { VIEWPROBE_HOME: join(tmp, 'home'), VIEWPROBE_WEIGHTS_URL: 'http://127.0.0.1:9/none.safetensors', VIEWPROBE_DEBUG: '1' };

describe('bad numeric options through the real CLI', () => {
  // a folder dataset that passes loadDataset (the files are not decoded before the backbone opens)
  const data = join(tmp, 'data');
  for (const c of ['a', 'b']) {
    mkdirSync(join(data, c), { recursive: true });
    writeFileSync(join(data, c, '1.jpg'), 'x');
  }
  const cache = join(tmp, 'cache');
  const run = join(tmp, 'run');

  const cases: [string[], string, RegExp][] = [
    [['extract', '--train', data, '--cache', cache, '--views', '1e9'], 'views', /--views must be a whole number >= 0 and <= 1000 \(got "1e9"\)/],
    [['extract', '--train', data, '--cache', cache, '--views'], 'views', /--views needs a value/],
    [['extract', '--train', data, '--cache', cache, '--batch', '100000'], 'batch', /--batch must be a whole number >= 1 and <= 1024/],
    [['extract', '--train', data, '--cache', cache, '--threads', '99999'], 'threads', /--threads must be a whole number >= 1 and <= 4096/],
    [['extract', '--train', data, '--cache', cache, '--commit-views', '0'], 'commit-views', /--commit-views must be/],
    [['train', '--cache', cache, '--out', run, '--lr', '1e308'], 'lr', /--lr must be a number > 0 and <= 10 \(got "1e308"\)/],
    [['train', '--cache', cache, '--out', run, '--epochs', '-3'], 'epochs', /--epochs must be/],
    [['train', '--cache', cache, '--out', run, '--batch', '64', '--batch', '32'], 'batch', /--batch was given 2 times/],
    [['predict', '--run', run, '--top', 'NaN', join(data, 'a', '1.jpg')], 'top', /--top must be/],
    [['eval', '--run', run, '--data', data, '--threads', '0'], 'threads', /--threads must be/],
  ];
  for (const [argv, name, message] of cases) {
    it(`viewprobe ${argv.map((a) => a.replace(tmp, '$TMP')).join(' ')}`, () => {
      const r = runCli(argv, env);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stdout).toBe('');
      const lines = r.stderr.split('\n').filter((l) => l !== '');
      expect(lines, r.stderr).toHaveLength(1); // VIEWPROBE_DEBUG=1 would add a stack trace to an internal error
      expect(lines[0]).toContain(`--${name}`);
      expect(lines[0]).toMatch(message);
      expect(existsSync(cache)).toBe(false);
      expect(existsSync(run)).toBe(false);
      expect(existsSync(env.VIEWPROBE_HOME)).toBe(false);
      expect(readdirSync(tmp).sort()).toEqual(['data']);
    });
  }
});
