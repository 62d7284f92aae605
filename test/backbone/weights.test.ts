import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { UserError } from '../../src/errors.js';
import { DEFAULT_WEIGHTS_URL, resolveWeights } from '../../src/backbone/weights.js';
import { readSafetensors } from '../../src/backbone/safetensors.js';
import { refusedBase, serve, type LocalServer } from '../helpers/http.js';

/** A small but complete safetensors file (what the server hands out). */
function fixture(): Buffer {
  const data = Buffer.from(new Float32Array(4096).map((_, i) => Math.sin(i)).buffer);
  let json = JSON.stringify({ __metadata__: { arch: 'resnet18' }, w: { dtype: 'F32', shape: [4096], data_offsets: [0, data.length] } });
  while ((8 + json.length) % 8) json += ' ';
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, Buffer.from(json), data]);
}

const body = fixture();
const bodySha = createHash('sha256').update(body).digest('hex');
const hits: Record<string, number> = {};
let base = '';
const handler: http.RequestListener = (req, res) => {
  const path = req.url ?? '/';
  hits[path] = (hits[path] ?? 0) + 1;
  switch (path) {
    case '/ok':
      res.writeHead(200, { 'content-length': body.length });
      return res.end(body);
    case '/chunked-truncated': // no Content-Length, ends cleanly after half: only the structure check can tell
      res.writeHead(200);
      return res.end(body.subarray(0, body.length >> 1));
    case '/interrupted': // announces the full length, then the connection dies mid-file
      res.writeHead(200, { 'content-length': body.length });
      res.write(body.subarray(0, body.length >> 1));
      return setTimeout(() => res.socket?.destroy(), 20);
    case '/stall': // headers, a little data, then silence
      res.writeHead(200, { 'content-length': body.length });
      return res.write(body.subarray(0, 100));
    case '/no-response':
      return; // never answers
    case '/redirect':
      res.writeHead(302, { location: '/ok' });
      return res.end();
    case '/loop':
      res.writeHead(301, { location: '/loop' });
      return res.end();
    default:
      res.writeHead(404);
      return res.end('not found');
  }
};
let server: LocalServer;

const root = mkdtempSync(join(tmpdir(), 'viewprobe-weights-'));
let n = 0;
/** A fresh cache dir per case, so that cases never see each other's files. */
function env(path: string, extra: Record<string, string> = {}) {
  const home = join(root, `home${n++}`);
  return { home, env: { VIEWPROBE_HOME: home, VIEWPROBE_WEIGHTS_URL: base + path, ...extra } };
}
function filesIn(home: string): string[] {
  const dir = join(home, 'weights');
  return existsSync(dir) ? readdirSync(dir) : [];
}

beforeAll(async () => {
  server = await serve(handler);
  base = server.base;
});
afterAll(async () => {
  await server.close();
  rmSync(root, { recursive: true, force: true });
});

async function failure(path: string, opts: { extra?: Record<string, string>; connectTimeoutMs?: number; idleTimeoutMs?: number } = {}) {
  const { home, env: e } = env(path, opts.extra);
  const err = await resolveWeights({ env: e, quiet: true, connectTimeoutMs: opts.connectTimeoutMs, idleTimeoutMs: opts.idleTimeoutMs }).then(() => undefined, (x: unknown) => x);
  expect(err).toBeInstanceOf(UserError);
  const msg = (err as Error).message;
  expect(msg).not.toContain('\n');
  expect(msg).toMatch(/pass --weights FILE/);
  // No partial file may ever be left where a later run would pick it up.
  expect(filesIn(home)).toEqual([]);
  return msg;
}

describe('resolveWeights', () => {
  it('--weights FILE is used as given, without any download', async () => {
    const { env: e } = env('/ok');
    expect(await resolveWeights({ weights: 'some/file.safetensors', env: e })).toMatchObject({ source: 'file' });
    expect(hits['/ok'] ?? 0).toBe(0);
  });

  it('downloads once (progress on stderr, sidecar with size + sha256), then reuses the cached file', async () => {
    const { home, env: e } = env('/ok');
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    let said = '';
    const first = await resolveWeights({ env: e }).finally(() => {
      said = stderr.mock.calls.map((c) => String(c[0])).join('');
      stderr.mockRestore();
    });
    expect(said).toContain(`downloading the default resnet18 weights`);
    expect(said).toContain(`sha256 ${bodySha}`);
    expect(first.source).toBe('download');
    expect(readFileSync(first.path).equals(body)).toBe(true);
    // The download was read and checked whole; the backbone gets that read instead of a second one.
    expect(first.file).toMatchObject({ path: first.path, sha256: bodySha });
    const side = JSON.parse(readFileSync(first.path + '.json', 'utf8'));
    expect(side).toMatchObject({ url: base + '/ok', size: body.length, sha256: bodySha });
    expect((await readSafetensors(first.path)).sha256).toBe(bodySha);
    const before = hits['/ok'];
    const again = await resolveWeights({ env: e, quiet: true });
    expect(again).toMatchObject({ path: first.path, source: 'cache', file: { path: first.path, sha256: bodySha } });
    expect(hits['/ok']).toBe(before);
    expect(filesIn(home).sort()).toEqual([expect.stringMatching(/^resnet18-\w+\.safetensors$/), expect.stringMatching(/\.safetensors\.json$/)].sort());
  });

  it('a cached file that no longer matches its record is downloaded again', async () => {
    const { env: e } = env('/ok');
    const first = await resolveWeights({ env: e, quiet: true });
    const bad = Buffer.from(body);
    bad[bad.length - 1] ^= 1;
    writeFileSync(first.path, bad);
    const again = await resolveWeights({ env: e, quiet: true });
    expect(again.source).toBe('download');
    expect(readFileSync(again.path).equals(body)).toBe(true);
  });

  it('follows a redirect; an expected sha256 that matches is accepted', async () => {
    const { env: e } = env('/redirect', { VIEWPROBE_WEIGHTS_SHA256: bodySha.toUpperCase() });
    const got = await resolveWeights({ env: e, quiet: true });
    expect(readFileSync(got.path).equals(body)).toBe(true);
  });

  it('404', async () => {
    expect(await failure('/missing')).toMatch(/^cannot get the default resnet18 weights from http:\/\/127\.0\.0\.1:\d+\/missing: HTTP 404 Not Found/);
  });

  it('wrong checksum', async () => {
    const msg = await failure('/ok', { extra: { VIEWPROBE_WEIGHTS_SHA256: 'ab'.repeat(32) } });
    expect(msg).toContain(`checksum mismatch: sha256 ${bodySha}, expected ${'ab'.repeat(32)}`);
  });

  it('redirect loop', async () => {
    expect(await failure('/loop')).toMatch(/too many redirects/);
  });

  it('interrupted mid-file', async () => {
    expect(await failure('/interrupted')).toMatch(/the connection closed after \d+ of \d+ bytes|truncated: got \d+ of \d+ bytes/);
  });

  it('truncated without a Content-Length (caught by the safetensors structure check)', async () => {
    expect(await failure('/chunked-truncated')).toMatch(/the downloaded file is not a valid safetensors file: .*run past the end of the data/);
  });

  it('a server that stalls mid-body (idle timeout) or never answers (connect timeout)', async () => {
    expect(await failure('/stall', { idleTimeoutMs: 300 })).toMatch(/no data for 0\.3s after 100 bytes \(idle timeout\)/);
    expect(await failure('/no-response', { connectTimeoutMs: 300 })).toMatch(/no response within 0\.3s \(connect timeout\)/);
  });

  it('offline (connection refused): one line that says to pass --weights', async () => {
    const home = join(root, 'offline');
    const err = await resolveWeights({ env: { VIEWPROBE_HOME: home, VIEWPROBE_WEIGHTS_URL: `${await refusedBase()}/w` }, quiet: true }).catch((x: Error) => x);
    expect((err as Error).message).toMatch(/^cannot get the default resnet18 weights from .*: connect ECONNREFUSED .*; pass --weights FILE/);
  });

  it('there is no default for other architectures', async () => {
    await expect(resolveWeights({ backbone: 'resnet50', env: {} })).rejects.toThrow(/no default weights for resnet50 .*pass --weights FILE/);
  });
});

describe('the default weights', () => {
  it('the default URL is timm\'s copy of torchvision IMAGENET1K_V1', () => {
    expect(DEFAULT_WEIGHTS_URL).toBe('https://huggingface.co/timm/resnet18.tv_in1k/resolve/main/model.safetensors');
  });
});
