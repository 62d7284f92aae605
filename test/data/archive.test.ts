// fetchArchive against a local server handing out a tiny .tar.gz built here: checksums (pass, fail,
// the first download's record as a pin), redirects, reuse of the unpacked tree and of the archive,
// what unpacking writes, and the message when nothing answers.
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create as tarCreate } from 'tar';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { archivePaths, fetchArchive, type ArchiveSource } from '../../src/data/archive.js';
import { UserError } from '../../src/errors.js';
import { refusedBase, serve, type LocalServer } from '../helpers/http.js';

const root = mkdtempSync(join(tmpdir(), 'viewprobe-archive-'));

/** A dataset in Imagenette's layout (top/train/<class>/, top/val/<class>/), plus a symlink that must not be unpacked. */
async function makeArchive(name: string, variant = ''): Promise<Buffer> {
  const src = join(root, `src-${name}`);
  for (const split of ['train', 'val']) {
    for (const cls of ['n01', 'n02']) {
      const dir = join(src, 'top', split, cls);
      mkdirSync(dir, { recursive: true });
      for (let i = 0; i < 3; i++) writeFileSync(join(dir, `img${i}.JPEG`), `${split}/${cls}/${i}${variant}`);
    }
  }
  symlinkSync('/etc/passwd', join(src, 'top', 'link'));
  const file = join(root, `${name}.tar.gz`);
  await tarCreate({ gzip: true, file, cwd: src, portable: true }, ['top']);
  return readFileSync(file);
}

let v1: Buffer;
let v2: Buffer;
let swapped: Buffer;
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const hits: Record<string, number> = {};
let base = '';
const handler: http.RequestListener = (req, res) => {
  const path = req.url ?? '/';
  hits[path] = (hits[path] ?? 0) + 1;
  if (path.startsWith('/v1')) {
    res.writeHead(200, { 'content-length': v1.length });
    return res.end(v1);
  }
  if (path.startsWith('/v2')) {
    res.writeHead(200, { 'content-length': v2.length });
    return res.end(v2);
  }
  if (path.startsWith('/swap')) { // whatever `swapped` says: a file that changes on the server
    res.writeHead(200, { 'content-length': swapped.length });
    return res.end(swapped);
  }
  if (path.startsWith('/moved')) {
    res.writeHead(301, { location: '/v1/moved' });
    return res.end();
  }
  res.writeHead(404);
  res.end();
};
let server: LocalServer;

beforeAll(async () => {
  v1 = await makeArchive('v1');
  v2 = await makeArchive('v2', ' changed');
  swapped = v1;
  server = await serve(handler);
  base = server.base;
});
afterAll(async () => {
  await server.close();
  rmSync(root, { recursive: true, force: true });
});

let n = 0;
function setup(path: string, extra: Partial<ArchiveSource> = {}) {
  const home = join(root, `home${n++}`);
  const src: ArchiveSource = { name: 'tiny', url: base + path, description: 'the tiny set', maxBytes: 1 << 20, ...extra };
  return { home, src, paths: archivePaths(src, home) };
}

function treeOf(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(join(d, e.name), r);
      else out.push(r);
    }
  };
  walk(dir, '');
  return out.sort();
}

describe('fetchArchive', () => {
  it('downloads (md5 checked, progress on stderr), records size + sha256, unpacks files and folders only; then reuses the tree without the network', async () => {
    const { home, src, paths } = setup('/v1/a', { md5: md5(v1) });
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    let said = '';
    const got = await fetchArchive(src, { home }).finally(() => {
      said = stderr.mock.calls.map((c) => String(c[0])).join('');
      stderr.mockRestore();
    });
    expect(got).toEqual({ dir: paths.unpacked, source: 'download', size: v1.length, sha256: sha256(v1) });
    expect(said).toContain(`the tiny set: downloading ${base}/v1/a`);
    expect(said).toContain(`sha256 ${sha256(v1)}, md5 ${md5(v1)}`);
    expect(said).toMatch(/unpacked 12 files/);
    expect(JSON.parse(readFileSync(paths.record, 'utf8'))).toMatchObject({ url: src.url, size: v1.length, sha256: sha256(v1), md5: md5(v1) });
    const files = treeOf(paths.unpacked);
    expect(files).toContain('top/train/n01/img0.JPEG');
    expect(files.filter((f) => f.endsWith('.JPEG'))).toHaveLength(12);
    expect(readFileSync(join(paths.unpacked, 'top/val/n02/img2.JPEG'), 'utf8')).toBe('val/n02/2');
    // The symlink in the archive was not written.
    expect(existsSync(join(paths.unpacked, 'top', 'link')) || (() => { try { lstatSync(join(paths.unpacked, 'top', 'link')); return true; } catch { return false; } })()).toBe(false);
    // No temp files beside the results.
    expect(readdirSync(paths.dir).sort()).toEqual([`${paths.unpacked.split('/').pop()}`, `${paths.archive.split('/').pop()}`, `${paths.record.split('/').pop()}`].sort());

    const before = hits['/v1/a'];
    expect(await fetchArchive(src, { home, quiet: true })).toMatchObject({ dir: paths.unpacked, source: 'cache' });
    expect(hits['/v1/a']).toBe(before);
  });

  it('an md5 mismatch is refused in one line and leaves nothing behind', async () => {
    const { home, src, paths } = setup('/v1/b', { md5: 'f'.repeat(32) });
    const err = await fetchArchive(src, { home, quiet: true, hint: 'pass --data DIR' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toBe(`cannot get the tiny set from ${src.url}: checksum mismatch: md5 ${md5(v1)}, expected ${'f'.repeat(32)}; pass --data DIR`);
    expect(existsSync(paths.dir) ? readdirSync(paths.dir) : []).toEqual([]);
  });

  it('follows a redirect; a published sha256 is checked too', async () => {
    const { home, src } = setup('/moved', { sha256: sha256(v1) });
    expect(await fetchArchive(src, { home, quiet: true })).toMatchObject({ source: 'download', sha256: sha256(v1) });
    const bad = setup('/moved', { sha256: '0'.repeat(64) });
    await expect(fetchArchive(bad.src, { home: bad.home, quiet: true })).rejects.toThrow(/checksum mismatch: sha256/);
  });

  it('a half-gone tree is unpacked again from the cached archive, without the network', async () => {
    const { home, src, paths } = setup('/v1/c');
    await fetchArchive(src, { home, quiet: true });
    rmSync(join(paths.unpacked, '.viewprobe-unpacked.json'));
    rmSync(join(paths.unpacked, 'top', 'val'), { recursive: true });
    const before = hits['/v1/c'];
    expect(await fetchArchive(src, { home, quiet: true })).toMatchObject({ source: 'archive' });
    expect(hits['/v1/c']).toBe(before);
    expect(treeOf(paths.unpacked).filter((f) => f.startsWith('top/val/'))).toHaveLength(6);
  });

  it('a damaged cached archive is downloaded again', async () => {
    const { home, src, paths } = setup('/v1/d');
    await fetchArchive(src, { home, quiet: true });
    rmSync(paths.unpacked, { recursive: true });
    const damaged = Buffer.from(v1);
    damaged[damaged.length >> 1] ^= 0xff;
    writeFileSync(paths.archive, damaged);
    const before = hits['/v1/d']!;
    expect(await fetchArchive(src, { home, quiet: true })).toMatchObject({ source: 'download', sha256: sha256(v1) });
    expect(hits['/v1/d']).toBe(before + 1);
  });

  it('once recorded, a download whose bytes changed on the server is refused (no md5 pinned), naming the record', async () => {
    const { home, src, paths } = setup('/swap');
    await fetchArchive(src, { home, quiet: true });
    rmSync(paths.unpacked, { recursive: true });
    rmSync(paths.archive);
    swapped = v2;
    const err = (await fetchArchive(src, { home, quiet: true }).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toContain(`checksum mismatch: sha256 ${sha256(v2)}, expected ${sha256(v1)}, the sha256 of the copy first downloaded on`);
    expect(err.message).toContain(`recorded in ${paths.record}; delete it to accept the new file`);
    expect(existsSync(paths.archive)).toBe(false);
    // The same goes for a cached archive that no longer matches its record: it is fetched again, and refused.
    writeFileSync(paths.archive, v2);
    await expect(fetchArchive(src, { home, quiet: true })).rejects.toThrow(/first downloaded on/);
  });

  it('nothing listening: one line with the reason and the hint, no files', async () => {
    const home = join(root, 'offline');
    const src: ArchiveSource = { name: 'tiny', url: `${await refusedBase()}/x.tgz`, description: 'the tiny set', maxBytes: 1 << 20 };
    const err = (await fetchArchive(src, { home, quiet: true, hint: 'offline, pass --data DIR' }).catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(/^cannot get the tiny set from http:\/\/127\.0\.0\.1:\d+\/x\.tgz: connect ECONNREFUSED [^;]*; offline, pass --data DIR$/);
    expect(existsSync(join(home, 'datasets')) ? readdirSync(join(home, 'datasets')) : []).toEqual([]);
  });

  it('names must be plain file names', () => {
    expect(() => archivePaths({ name: '../x', url: 'http://a/b', description: 'd', maxBytes: 1 }, root)).toThrow(/must be letters/);
  });
});
