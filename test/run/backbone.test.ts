// Which weights eval --data and predict load for a run when --weights is not given: the file that
// extract recorded beside the cache. A recorded file that is gone is named, never silently replaced
// by the default download, unless it was the default download itself.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { UserError } from '../../src/errors.js';
import { openRunBackbone } from '../../src/run/backbone.js';
import type { Fingerprint } from '../../src/cache/types.js';

const tmp = mkdtempSync(join(tmpdir(), 'vp-run-backbone-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
// openRunBackbone says on stderr that it downloads; the tests read only what it throws.
beforeEach(() => { vi.spyOn(process.stderr, 'write').mockImplementation(() => true); });
afterEach(() => { vi.unstubAllEnvs(); vi.restoreAllMocks(); });

const SHA = 'ab'.repeat(32);
const FP: Fingerprint = { arch: 'resnet18', weightsSha256: SHA, preset: 'seed', inputSize: 244, transformVersion: 1, seed: 0, dim: 512 };
const opts = { engine: 'onnx' as const, device: 'cpu' as const, threads: 1 };

function cacheWithHint(name: string, hint: unknown): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'weights.json'), JSON.stringify(hint));
  return dir;
}

describe('openRunBackbone without --weights', () => {
  // The default download points at a closed local port: an attempt fails fast, and shows in the message.
  const home = join(tmp, 'home');
  const stubEnv = () => {
    vi.stubEnv('VIEWPROBE_HOME', home);
    vi.stubEnv('VIEWPROBE_WEIGHTS_URL', 'http://127.0.0.1:9/w.safetensors');
  };

  it('names a recorded weights file that is gone and says how to pass it', async () => {
    stubEnv();
    const gone = join(tmp, 'moved-away.safetensors');
    const cache = cacheWithHint('c1', { path: gone, sha256: SHA });
    await expect(openRunBackbone(FP, 512, 'run r', opts, cache)).rejects.toThrow(UserError);
    await expect(openRunBackbone(FP, 512, 'run r', opts, cache)).rejects.toThrow(
      `the backbone weights this run was trained on are gone: ${gone} (recorded in ${join(cache, 'weights.json')}); pass that file, or one with sha256 ${SHA.slice(0, 12)}…, with --weights FILE`);
  });

  it('fetches the default again when the file that is gone was the default download', async () => {
    stubEnv();
    const cache = cacheWithHint('c2', { path: join(home, 'weights', 'resnet18-0123456789ab.safetensors'), sha256: SHA });
    await expect(openRunBackbone(FP, 512, 'run r', opts, cache)).rejects.toThrow(/^cannot get the default resnet18 weights from http:\/\/127\.0\.0\.1:9\//);
  });

  it('a hint for other weights, or no hint, leaves the default resolution as it was', async () => {
    stubEnv();
    const other = cacheWithHint('c3', { path: join(tmp, 'gone.safetensors'), sha256: 'cd'.repeat(32) });
    await expect(openRunBackbone(FP, 512, 'run r', opts, other)).rejects.toThrow(/^cannot get the default resnet18 weights/);
    const none = join(tmp, 'c4');
    mkdirSync(none);
    await expect(openRunBackbone(FP, 512, 'run r', opts, none)).rejects.toThrow(/^cannot get the default resnet18 weights/);
  });
});
