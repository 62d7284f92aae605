// downloadFile's own contract, against a local server (resolveWeights and fetchArchive, its users, are
// tested beside their modules): limits, URL checks, progress, and both checksums.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheDir, downloadFile } from '../src/download.js';
import { serve, type LocalServer } from './helpers/http.js';

const body = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7) & 0xff));
const sha256 = createHash('sha256').update(body).digest('hex');
const md5 = createHash('md5').update(body).digest('hex');
let base = '';
const handler: http.RequestListener = (req, res) => {
  switch (req.url) {
    case '/ok':
      res.writeHead(200, { 'content-length': body.length });
      return res.end(body);
    case '/chunked': // no Content-Length
      res.writeHead(200);
      return res.end(body);
    case '/redirect':
      res.writeHead(302, { location: '/ok' });
      return res.end();
    default:
      res.writeHead(404);
      return res.end();
  }
};
let server: LocalServer;
const root = mkdtempSync(join(tmpdir(), 'viewprobe-download-'));

beforeAll(async () => {
  server = await serve(handler);
  base = server.base;
});
afterAll(async () => {
  await server.close();
  rmSync(root, { recursive: true, force: true });
});

describe('downloadFile', () => {
  it('refuses a body over maxBytes, announced or streamed, and leaves no file behind', async () => {
    const dir = join(root, 'limits');
    await expect(downloadFile({ url: `${base}/ok`, dest: join(dir, 'a'), maxBytes: 1000 })).rejects.toThrow(`the server announces ${body.length} bytes, more than the 1000-byte limit`);
    await expect(downloadFile({ url: `${base}/chunked`, dest: join(dir, 'b'), maxBytes: 1000 })).rejects.toThrow('the body exceeds the 1000-byte limit');
    expect(readdirSync(dir)).toEqual([]);
  });

  it('names a bad URL and an unsupported scheme', async () => {
    await expect(downloadFile({ url: 'http://[oops', dest: join(root, 'u', 'a') })).rejects.toThrow('invalid URL "http://[oops"');
    await expect(downloadFile({ url: 'ftp://example.org/w', dest: join(root, 'u', 'b') })).rejects.toThrow('unsupported URL scheme "ftp:"');
  });

  it('reports progress with the announced total and returns the size, sha256 and md5', async () => {
    const seen: [number, number | undefined][] = [];
    const got = await downloadFile({ url: `${base}/redirect`, dest: join(root, 'p', 'w'), onProgress: (r, t) => seen.push([r, t]) });
    expect(got).toEqual({ path: join(root, 'p', 'w'), size: body.length, sha256, md5 });
    expect(seen.at(-1)).toEqual([body.length, body.length]);
  });

  it('checks an expected md5 and sha256 (either case); a mismatch leaves no file', async () => {
    const dir = join(root, 'sums');
    const ok = await downloadFile({ url: `${base}/ok`, dest: join(dir, 'ok'), expectedMd5: md5.toUpperCase(), expectedSha256: sha256 });
    expect(readFileSync(ok.path).equals(body)).toBe(true);
    const wrongMd5 = 'f'.repeat(32);
    await expect(downloadFile({ url: `${base}/ok`, dest: join(dir, 'bad-md5'), expectedMd5: wrongMd5 }))
      .rejects.toThrow(`checksum mismatch: md5 ${md5}, expected ${wrongMd5}`);
    await expect(downloadFile({ url: `${base}/ok`, dest: join(dir, 'bad-sha'), expectedMd5: md5, expectedSha256: '0'.repeat(64) }))
      .rejects.toThrow(`checksum mismatch: sha256 ${sha256}, expected ${'0'.repeat(64)}`);
    expect(existsSync(join(dir, 'bad-md5')) || existsSync(join(dir, 'bad-sha'))).toBe(false);
    expect(readdirSync(dir)).toEqual(['ok']);
  });
});

describe('cacheDir', () => {
  it('VIEWPROBE_HOME, then XDG_CACHE_HOME/viewprobe, then ~/.cache/viewprobe', () => {
    expect(cacheDir({ VIEWPROBE_HOME: '/a', XDG_CACHE_HOME: '/b' })).toBe('/a');
    expect(cacheDir({ XDG_CACHE_HOME: '/b' })).toBe('/b/viewprobe');
    expect(cacheDir({})).toMatch(/\.cache\/viewprobe$/);
  });
});
