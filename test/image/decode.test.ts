import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, mkdirSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DecodeError, decodeImage, sniffImageFormat, type RgbImage } from '../../src/image/decode.js';
import { describeShared, sharedPath } from '../helpers/shared.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'viewprobe-decode-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const W = 48;
const H = 32;

/** An upright test picture: smooth ramps (JPEG-friendly) plus a dark block in the top-left quarter, so every flip and turn shows. */
function upright(): RgbImage {
  const data = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const i = (y * W + x) * 3;
      const dark = x < 16 && y < 12;
      data[i] = dark ? 20 : 40 + x * 4;
      data[i + 1] = dark ? 20 : 40 + y * 6;
      data[i + 2] = dark ? 20 : 120;
    }
  }
  return { data, width: W, height: H };
}

const rawInput = (img: RgbImage, channels = 3) => ({ raw: { width: img.width, height: img.height, channels: channels as 3 } });

function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  expect(a.length).toBe(b.length);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i]! - b[i]!);
  return s / a.length;
}

function write(name: string, bytes: Uint8Array | string): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}

async function decodeError(input: string | Buffer, opts?: Parameters<typeof decodeImage>[1]): Promise<DecodeError> {
  try {
    await decodeImage(input, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(DecodeError);
    const err = e as DecodeError;
    expect(err.message).not.toContain('\n');
    return err;
  }
  throw new Error('expected decodeImage to fail');
}

/**
 * EXIF orientation N: where stored pixel (row r, col c) sits in the upright picture (W x H), from
 * the EXIF definition of where row 0 and column 0 of the stored image are (e.g. 6: row 0 = right, col 0 = top).
 */
const storedToUpright: Record<number, (r: number, c: number) => [number, number]> = {
  1: (r, c) => [r, c],
  2: (r, c) => [r, W - 1 - c],
  3: (r, c) => [H - 1 - r, W - 1 - c],
  4: (r, c) => [H - 1 - r, c],
  5: (r, c) => [c, r],
  6: (r, c) => [c, W - 1 - r],
  7: (r, c) => [H - 1 - c, W - 1 - r],
  8: (r, c) => [H - 1 - c, r],
};

function storedFor(orientation: number, u: RgbImage): RgbImage {
  const swap = orientation >= 5;
  const sw = swap ? H : W;
  const sh = swap ? W : H;
  const data = new Uint8Array(sw * sh * 3);
  const map = storedToUpright[orientation]!;
  for (let r = 0; r < sh; r++) {
    for (let c = 0; c < sw; c++) {
      const [ur, uc] = map(r, c);
      data.set(u.data.subarray((ur * W + uc) * 3, (ur * W + uc) * 3 + 3), (r * sw + c) * 3);
    }
  }
  return { data, width: sw, height: sh };
}

describe('decodeImage: odd but valid images', () => {
  it('reads a PNG and a WebP named .jpg by their content', async () => {
    const u = upright();
    const png = write('png-really.jpg', await sharp(u.data, rawInput(u)).png().toBuffer());
    const webp = write('webp-really.jpg', await sharp(u.data, rawInput(u)).webp({ lossless: true }).toBuffer());
    for (const p of [png, webp]) {
      const d = await decodeImage(p);
      expect([d.width, d.height]).toEqual([W, H]);
      expect(Buffer.from(d.data).equals(Buffer.from(u.data))).toBe(true);
    }
  });

  it('reads a 1x1 image', async () => {
    const p = write('one.png', await sharp({ create: { width: 1, height: 1, channels: 3, background: { r: 10, g: 20, b: 30 } } }).png().toBuffer());
    const d = await decodeImage(p);
    expect(d).toMatchObject({ width: 1, height: 1 });
    expect([...d.data]).toEqual([10, 20, 30]);
  });

  it('scales a 16-bit PNG to 8 bits', async () => {
    const u = upright();
    const buf = await sharp(u.data, rawInput(u)).toColourspace('rgb16').png().toBuffer();
    expect((await sharp(buf).metadata()).depth).toBe('ushort');
    const d = await decodeImage(write('sixteen.png', buf));
    expect(Buffer.from(d.data).equals(Buffer.from(u.data))).toBe(true);
  });

  it('converts a CMYK JPEG to RGB with the right colours', async () => {
    const u = upright();
    const buf = await sharp(u.data, rawInput(u)).toColourspace('cmyk').jpeg({ quality: 95 }).toBuffer();
    const meta = await sharp(buf).metadata();
    expect([meta.space, meta.channels]).toEqual(['cmyk', 4]);
    const d = await decodeImage(write('cmyk.jpg', buf));
    expect([d.width, d.height, d.data.length]).toEqual([W, H, W * H * 3]);
    // The round trip through a CMYK profile is lossy, but the picture must be the same picture.
    expect(meanAbsDiff(d.data, u.data)).toBeLessThan(15);
    const px = (x: number, y: number) => [...d.data.subarray((y * W + x) * 3, (y * W + x) * 3 + 3)];
    const [r, g, b] = px(40, 28); // reddish-green, blue 120 in the original (236, 208, 120)
    expect(r).toBeGreaterThan(b! + 60);
    expect(g).toBeGreaterThan(b! + 40);
    expect(Math.max(...px(2, 2))).toBeLessThan(50); // the dark block stays dark
  });

  it('copies a grayscale image to 3 equal channels', async () => {
    const gray = new Uint8Array(W * H);
    for (let i = 0; i < gray.length; i++) gray[i] = (i * 7) % 256;
    const buf = await sharp(gray, { raw: { width: W, height: H, channels: 1 } }).toColourspace('b-w').png().toBuffer();
    expect((await sharp(buf).metadata()).channels).toBe(1);
    const d = await decodeImage(write('gray.png', buf));
    const want = new Uint8Array(W * H * 3);
    for (let i = 0; i < gray.length; i++) want.fill(gray[i]!, 3 * i, 3 * i + 3);
    expect(Buffer.from(d.data).equals(Buffer.from(want))).toBe(true);
  });

  it('flattens alpha on black', async () => {
    const rgba = Buffer.alloc(16 * 4);
    for (let i = 0; i < 16; i++) rgba.set([200, 100, 50, i * 17], i * 4);
    const d = await decodeImage(write('alpha.png', await sharp(rgba, { raw: { width: 4, height: 4, channels: 4 } }).png().toBuffer()));
    expect(d.data.length).toBe(16 * 3);
    expect([...d.data.subarray(0, 3)]).toEqual([0, 0, 0]); // fully transparent -> black
    expect([...d.data.subarray(45, 48)]).toEqual([200, 100, 50]); // opaque untouched
    for (let i = 0; i < 16; i++) {
      const a = (i * 17) / 255;
      [200, 100, 50].forEach((c, ch) => expect(Math.abs(d.data[3 * i + ch]! - c * a)).toBeLessThanOrEqual(1));
    }
  });

  it('applies every EXIF orientation 1-8: the decoded picture is the upright one', async () => {
    const u = upright();
    for (let o = 1; o <= 8; o++) {
      const s = storedFor(o, u);
      const buf = await sharp(s.data, rawInput(s)).jpeg({ quality: 95 }).withMetadata({ orientation: o }).toBuffer();
      expect((await sharp(buf).metadata()).orientation).toBe(o);
      const d = await decodeImage(write(`orient-${o}.jpg`, buf));
      expect([d.width, d.height], `orientation ${o}`).toEqual([W, H]);
      expect(meanAbsDiff(d.data, u.data), `orientation ${o}`).toBeLessThan(3);
      // ...and not a mirror of it: the comparison above can tell them apart.
      const mirrored = storedFor(2, u);
      expect(meanAbsDiff(d.data, mirrored.data), `orientation ${o} vs mirror`).toBeGreaterThan(10);
    }
  });

  it('converts an image with an ICC profile to sRGB, or keeps its raw values with ignoreIcc (as Pillow does)', async () => {
    const u = upright();
    const p3 = await sharp(u.data, rawInput(u)).withIccProfile('p3').png().toBuffer();
    expect((await sharp(p3).metadata()).icc).toBeDefined();
    const converted = await decodeImage(p3);
    const raw = await decodeImage(p3, { ignoreIcc: true });
    expect(meanAbsDiff(converted.data, u.data)).toBeLessThan(1);
    expect(meanAbsDiff(raw.data, u.data)).toBeGreaterThan(3);
  });

  it('sniffs formats by content', () => {
    expect(sniffImageFormat(Buffer.from([0xff, 0xd8, 0xff, 0xe0]))).toBe('jpeg');
    expect(sniffImageFormat(Buffer.from('GIF89a...'))).toBe('gif');
    expect(sniffImageFormat(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'))).toBeUndefined();
    expect(sniffImageFormat(Buffer.from('%PDF-1.7'))).toBeUndefined();
  });
});

/** The smallest valid PNG header chain claiming a size, with a token IDAT: enough for any header check. */
function crc32(buf: Uint8Array): number {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}
function pngChunk(type: string, body: Uint8Array): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  const tb = Buffer.concat([Buffer.from(type, 'ascii'), body]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(tb));
  return Buffer.concat([len, tb, crc]);
}
function hugePngHeader(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', Buffer.from([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

describe('decodeImage: broken and hostile inputs fail with one clear line naming the file', () => {
  it('truncated JPEG (half the bytes)', async () => {
    const u = upright();
    const full = await sharp(u.data, rawInput(u)).jpeg({ quality: 90 }).toBuffer();
    const p = write('half.jpg', full.subarray(0, full.length >> 1));
    const e = await decodeError(p);
    expect(e.message).toMatch(new RegExp(`^${p}: truncated or incomplete jpeg data`));
    expect(e.file).toBe(p);
    expect(e.reason).toMatch(/^truncated/);
  });

  it('truncated PNG', async () => {
    const u = upright();
    const full = await sharp(u.data, rawInput(u)).png().toBuffer();
    const p = write('half.png', full.subarray(0, full.length >> 1));
    expect((await decodeError(p)).message).toMatch(new RegExp(`^${p}: .*png`));
  });

  it('zero bytes', async () => {
    const p = write('empty.jpg', new Uint8Array(0));
    expect((await decodeError(p)).message).toBe(`${p}: empty file (0 bytes)`);
  });

  it('random bytes named .jpg', async () => {
    const bytes = new Uint8Array(4096);
    let s = 12345;
    for (let i = 0; i < bytes.length; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      bytes[i] = s >>> 24;
    }
    const p = write('noise.jpg', bytes);
    expect((await decodeError(p)).message).toBe(`${p}: not an image (unrecognised format)`);
  });

  it('a text file', async () => {
    const p = write('notes.jpg', 'these are not the pixels you are looking for\n');
    expect((await decodeError(p)).message).toBe(`${p}: not an image (looks like text)`);
  });

  it('a missing file, a directory, a symlink loop', async () => {
    const missing = join(dir, 'nope.jpg');
    expect((await decodeError(missing)).message).toBe(`${missing}: file not found`);
    const sub = join(dir, 'a-dir.jpg');
    mkdirSync(sub);
    expect((await decodeError(sub)).message).toMatch(/a-dir\.jpg: is a directory/);
    const loop = join(dir, 'loop.jpg');
    symlinkSync(loop, loop);
    expect((await decodeError(loop)).message).toMatch(/loop\.jpg: .*symlink loop/);
  });

  it('a named pipe with no writer is refused at once, not waited on', async () => {
    const fifo = join(dir, 'pipe.jpg');
    execFileSync('mkfifo', [fifo]);
    expect((await decodeError(fifo)).message).toBe(`${fifo}: not a regular file`);
  });

  it.skipIf(process.getuid?.() === 0)('an unreadable file', async () => {
    const p = write('secret.jpg', 'x');
    chmodSync(p, 0o000);
    expect((await decodeError(p)).message).toBe(`${p}: permission denied`);
  });

  it('a 20000x20000 image is refused by the pixel limit, before decoding', async () => {
    const p = write('huge.png', hugePngHeader(20000, 20000));
    const before = process.memoryUsage().rss;
    const e = await decodeError(p);
    expect(e.message).toBe(`${p}: image too large: 20000x20000 = 400.0 MP exceeds the limit of 100.0 MP`);
    // Decoding would need 1.2 GB; refusing from the header needs next to nothing.
    expect(process.memoryUsage().rss - before).toBeLessThan(200 * 1024 * 1024);
  });

  it('a JPEG whose header claims 20000x20000 is refused too; maxPixels is honoured', async () => {
    const u = upright();
    const jpg = Buffer.from(await sharp(u.data, rawInput(u)).jpeg().toBuffer());
    let sof = -1;
    for (let i = 2; i < jpg.length - 1; i++) if (jpg[i] === 0xff && jpg[i + 1] === 0xc0) { sof = i; break; }
    expect(sof).toBeGreaterThan(0);
    jpg.writeUInt16BE(20000, sof + 5); // height
    jpg.writeUInt16BE(20000, sof + 7); // width
    expect((await decodeError(jpg, { name: 'claims-huge.jpg' })).message).toMatch(/^claims-huge\.jpg: image too large: 20000x20000/);
    const small = write('small.png', await sharp(u.data, rawInput(u)).png().toBuffer());
    expect((await decodeError(small, { maxPixels: 1000 })).message).toMatch(/48x32 = 0\.0 MP exceeds the limit of 0\.0 MP/);
    expect((await decodeImage(small, { maxPixels: 48 * 32 })).width).toBe(48);
  });

  it('a file above maxBytes is refused before it is read', async () => {
    const p = write('big.jpg', new Uint8Array(2000));
    expect((await decodeError(p, { maxBytes: 1000 })).message).toBe(`${p}: file too large (2000 bytes, limit 1000)`);
  });
});

describeShared('decodeImage on real photos', ['weights/ref-dog.jpg', 'weights/reference.json'], () => {
  it("decodes the reference photos to Pillow's pixels (crop means of reference.json)", async () => {
    const ref = JSON.parse(readFileSync(sharedPath('weights/reference.json'), 'utf8')) as {
      models: { resnet18: { images: Record<string, { photo: string; crop_box_ltrb: number[]; crop_rgb_uint8_mean: number[] }> } };
    };
    for (const im of Object.values(ref.models.resnet18.images)) {
      const d = await decodeImage(sharedPath('weights', im.photo));
      const [l, t, r, b] = im.crop_box_ltrb as [number, number, number, number];
      const sum = [0, 0, 0];
      for (let y = t; y < b; y++) for (let x = l; x < r; x++) for (let c = 0; c < 3; c++) sum[c]! += d.data[(y * d.width + x) * 3 + c]!;
      const n = (r - l) * (b - t);
      // Printed to 6 decimals; a single level off in one pixel would move a mean by 2e-5.
      sum.forEach((s, c) => expect(Math.abs(s / n - im.crop_rgb_uint8_mean[c]!)).toBeLessThan(1e-5));
    }
  });

  it('survives 200 randomly corrupted copies of a real JPEG: each decodes or throws a DecodeError', async () => {
    const src = readFileSync(sharedPath('weights/ref-dog.jpg'));
    let s = 20240601;
    const rand = (n: number) => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return Math.floor((s / 4294967296) * n);
    };
    let decoded = 0;
    let failed = 0;
    for (let k = 0; k < 200; k++) {
      const b = Buffer.from(src);
      let bytes: Buffer = b;
      switch (k % 4) {
        case 0: // flip a few bytes anywhere (headers included)
          for (let j = 0, m = 1 + rand(8); j < m; j++) b[rand(b.length)] = rand(256);
          break;
        case 1: // damage the first 1 KB (markers, tables, frame header)
          for (let j = 0, m = 1 + rand(4); j < m; j++) b[2 + rand(1024)] = rand(256);
          break;
        case 2: // cut anywhere
          bytes = b.subarray(0, rand(b.length));
          break;
        default: // drop or repeat a slice
          {
            const at = rand(b.length);
            const len = 1 + rand(2000);
            bytes = k % 8 === 3 ? Buffer.concat([b.subarray(0, at), b.subarray(at + len)]) : Buffer.concat([b.subarray(0, at + len), b.subarray(at)]);
          }
      }
      try {
        const img = await decodeImage(bytes, { name: `fuzz-${k}.jpg` });
        expect(img.data.length).toBe(img.width * img.height * 3);
        decoded++;
      } catch (e) {
        expect(e, `fuzz-${k}`).toBeInstanceOf(DecodeError);
        expect((e as Error).message).toMatch(new RegExp(`^fuzz-${k}\\.jpg: `));
        expect((e as Error).message).not.toContain('\n');
        failed++;
      }
    }
    expect(decoded + failed).toBe(200);
    expect(failed).toBeGreaterThan(20); // the corruption is real
  });
});
