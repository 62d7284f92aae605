import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { DecodeError } from '../../src/image/decode.js';
import { thumbnailDataUri } from '../../src/image/thumbnail.js';

const tmp = mkdtempSync(join(tmpdir(), 'vp-thumb-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function jpegOf(uri: string) {
  expect(uri).toMatch(/^data:image\/jpeg;base64,[A-Za-z0-9+/]+=*$/);
  const bytes = Buffer.from(uri.slice(uri.indexOf(',') + 1), 'base64');
  const meta = await sharp(bytes).metadata();
  const px = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
  return { bytes, meta, px };
}

describe('thumbnailDataUri', () => {
  it('scales a photo to fit the box, keeping its aspect, as a small JPEG of the same picture', async () => {
    // left half red, right half blue, 300x200
    const w = 300, h = 200;
    const raw = Buffer.alloc(w * h * 3);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw.set(x < w / 2 ? [220, 20, 20] : [20, 20, 220], (y * w + x) * 3);
    const file = join(tmp, 'halves.png');
    await sharp(raw, { raw: { width: w, height: h, channels: 3 } }).png().toFile(file);
    const { bytes, meta, px } = await jpegOf(await thumbnailDataUri(file, { size: 96 }));
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 96, 64]);
    expect(bytes.length).toBeLessThan(6000);
    const at = (x: number, y: number) => Array.from(px.data.subarray((y * 96 + x) * 3, (y * 96 + x) * 3 + 3));
    expect(at(10, 30)[0]).toBeGreaterThan(180); // red on the left
    expect(at(85, 30)[2]).toBeGreaterThan(180); // blue on the right
  });

  it('never enlarges a small image', async () => {
    const file = join(tmp, 'small.png');
    await sharp({ create: { width: 40, height: 30, channels: 3, background: '#808080' } }).png().toFile(file);
    const { meta } = await jpegOf(await thumbnailDataUri(file, { size: 128 }));
    expect([meta.width, meta.height]).toEqual([40, 30]);
  });

  it('fails with the decoder\'s one-line reason on a missing or broken file', async () => {
    await expect(thumbnailDataUri(join(tmp, 'gone.jpg'))).rejects.toThrow(DecodeError);
    await expect(thumbnailDataUri(join(tmp, 'gone.jpg'))).rejects.toThrow(/gone\.jpg: file not found/);
    writeFileSync(join(tmp, 'text.jpg'), 'not an image');
    await expect(thumbnailDataUri(join(tmp, 'text.jpg'))).rejects.toThrow(/text\.jpg: /);
  });
});
