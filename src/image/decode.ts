// Image files to 8-bit RGB pixels, once per image, with sharp (libvips + libjpeg-turbo/mozjpeg).
// On JPEGs without an ICC profile sharp's pixels are identical to Pillow 9.4's (checked on the
// reference photos and on every image of shared/data/tiny and raw-samples).
//
// Colour: images with an embedded ICC profile are converted to sRGB (sharp's default colour
// management), as the issue asks: an Adobe RGB photo then looks to the network like the sRGB
// photos ImageNet was trained on. Pillow's `convert('RGB')` ignores the profile, so on such
// images (about 5% of the food photos) our pixels differ from the tutorial's by a few levels;
// `ignoreIcc: true` gives Pillow's pixels instead.
//
// Every failure is a DecodeError whose message is one line: `FILE: reason`.
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import sharp, { type OutputInfo } from 'sharp';
import { InputError, errorMessage, fsReason } from '../errors.js';

/** 8-bit RGB, interleaved, row-major, no padding: data.length === width * height * 3. */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

export interface DecodeOptions {
  /** Refuse images with more pixels than this, judged from the header before decoding (default 100 MP). */
  maxPixels?: number;
  /** Refuse files larger than this many bytes, before reading them (default 256 MiB). */
  maxBytes?: number;
  /** Name used in error messages when `input` is a Buffer (default `<buffer>`). */
  name?: string;
  /** Keep the raw channel values of images with an ICC profile, as Pillow does (default false: convert to sRGB). */
  ignoreIcc?: boolean;
  /** Stop a decode that runs longer than this (default 60 s): a guard against pathological files, never hit by photos. */
  timeoutSeconds?: number;
}

export const DEFAULT_MAX_PIXELS = 100_000_000;
export const DEFAULT_MAX_BYTES = 256 * 1024 * 1024;

/** A file that could not be decoded; `reason` is the part after `FILE: `, for failure ledgers. */
export class DecodeError extends InputError {
  constructor(file: string, readonly reason: string) {
    super(file, undefined, reason);
    this.name = 'DecodeError';
  }
}

type Sniffed = 'jpeg' | 'png' | 'gif' | 'webp' | 'tiff' | 'heif' | 'avif' | 'bmp';

function startsWith(b: Uint8Array, sig: number[], at = 0): boolean {
  if (b.length < at + sig.length) return false;
  for (let i = 0; i < sig.length; i++) if (b[at + i] !== sig[i]) return false;
  return true;
}

const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));

/** How a file-system error reads for an image (the rest as everywhere: see fsReason). */
const IMAGE_REASONS = { ENOENT: 'file not found', EISDIR: 'is a directory, not an image file' };

/**
 * The raster formats we accept, by their magic bytes. Deciding here (not by the file name, and not
 * by letting sharp try every loader) keeps SVG/PDF/text out and gives precise messages.
 */
export function sniffImageFormat(b: Uint8Array): Sniffed | undefined {
  if (startsWith(b, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(b, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (startsWith(b, ascii('GIF87a')) || startsWith(b, ascii('GIF89a'))) return 'gif';
  if (startsWith(b, ascii('RIFF')) && startsWith(b, ascii('WEBP'), 8)) return 'webp';
  if (startsWith(b, [0x49, 0x49, 0x2a, 0x00]) || startsWith(b, [0x4d, 0x4d, 0x00, 0x2a])) return 'tiff';
  if (startsWith(b, ascii('ftyp'), 4)) {
    const brand = String.fromCharCode(...b.subarray(8, 12));
    if (brand === 'avif' || brand === 'avis') return 'avif';
    if (['heic', 'heix', 'heim', 'heis', 'hevc', 'hevx', 'mif1', 'msf1'].includes(brand)) return 'heif';
  }
  if (startsWith(b, ascii('BM'))) return 'bmp';
  return undefined;
}

/** What a non-image file looks like, for the message. */
function describeContent(b: Uint8Array): string {
  const head = b.subarray(0, 512);
  let printable = 0;
  for (const c of head) if (c === 9 || c === 10 || c === 13 || (c >= 32 && c < 127)) printable++;
  if (printable === head.length) return 'not an image (looks like text)';
  return 'not an image (unrecognised format)';
}


/**
 * An image file's bytes. Synchronous on purpose: extract's main thread gets a turn only between engine
 * batches (see pipeline.ts), and one blocking read costs less than the four turns of an async one.
 * O_NONBLOCK and the regular-file check keep a FIFO or a device from blocking; the size is capped.
 */
export function readImageFile(path: string, maxBytes = DEFAULT_MAX_BYTES): Buffer {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw new DecodeError(path, fsReason(e, IMAGE_REASONS));
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw new DecodeError(path, 'is a directory, not an image file');
    if (!st.isFile()) throw new DecodeError(path, 'not a regular file');
    if (st.size > maxBytes) {
      throw new DecodeError(path, `file too large (${st.size} bytes, limit ${maxBytes})`);
    }
    return readFileSync(fd);
  } catch (e) {
    if (e instanceof DecodeError) throw e;
    throw new DecodeError(path, fsReason(e, IMAGE_REASONS));
  } finally {
    closeSync(fd);
  }
}

async function headerSize(bytes: Buffer): Promise<string> {
  try {
    const m = await sharp(bytes, { limitInputPixels: false }).metadata();
    if (m.width && m.height) return `${m.width}x${m.height} = ${(m.width * m.height / 1e6).toFixed(1)} MP`;
  } catch {
    // the size is only decoration for the message
  }
  return 'its size';
}

async function sharpReason(bytes: Buffer, format: Sniffed, e: unknown, maxPixels: number): Promise<string> {
  const msg = errorMessage(e).split('\n')[0]!.trim();
  if (/exceeds pixel limit/i.test(msg)) {
    return `image too large: ${await headerSize(bytes)} exceeds the limit of ${(maxPixels / 1e6).toFixed(1)} MP`;
  }
  if (/premature end|truncated|unexpected end|end of (file|stream|data)|not enough data|incomplete/i.test(msg)) {
    return `truncated or incomplete ${format} data (${msg})`;
  }
  if (/unsupported image format/i.test(msg)) return `not a readable ${format} image (${msg})`;
  if (/timeout/i.test(msg)) return `decoding took too long, gave up (${msg})`;
  return `corrupt or unreadable ${format} data (${msg})`;
}

/**
 * Decodes an image file (path) or its bytes (Buffer) to 8-bit sRGB: EXIF orientation applied,
 * alpha flattened on black, 16-bit scaled to 8, grayscale and CMYK converted to 3 channels.
 */
export async function decodeImage(input: string | Buffer, opts: DecodeOptions = {}): Promise<RgbImage> {
  const name = typeof input === 'string' ? input : (opts.name ?? '<buffer>');
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  const bytes = typeof input === 'string' ? readImageFile(input, maxBytes) : input;
  if (bytes.length === 0) throw new DecodeError(name, 'empty file (0 bytes)');
  const format = sniffImageFormat(bytes);
  if (!format) throw new DecodeError(name, describeContent(bytes));
  if (format === 'bmp') throw new DecodeError(name, 'BMP images are not supported (convert to PNG or JPEG)');

  let out: { data: Buffer; info: OutputInfo };
  try {
    out = await sharp(bytes, {
      limitInputPixels: maxPixels,
      // Pillow refuses truncated files ("image file is truncated") but decodes through libjpeg's
      // recoverable "corrupt data" warnings; 'truncated' draws the same line.
      failOn: 'truncated',
      autoOrient: true,
      ignoreIcc: opts.ignoreIcc ?? false,
      sequentialRead: true,
    })
      .timeout({ seconds: opts.timeoutSeconds ?? 60 })
      .flatten({ background: { r: 0, g: 0, b: 0 } })
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw new DecodeError(name, await sharpReason(bytes, format, e, maxPixels));
  }
  const { width, height, channels } = out.info;
  const src = new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.byteLength);
  if (channels === 3) return { data: src, width, height };
  // Defensive: the pipeline above yields 3 channels for every input we have seen.
  const n = width * height;
  const data = new Uint8Array(n * 3);
  if (channels === 1 || channels === 2) {
    for (let i = 0; i < n; i++) data[3 * i] = data[3 * i + 1] = data[3 * i + 2] = src[i * channels]!;
  } else if (channels >= 4) {
    for (let i = 0; i < n; i++) {
      data[3 * i] = src[i * channels]!;
      data[3 * i + 1] = src[i * channels + 1]!;
      data[3 * i + 2] = src[i * channels + 2]!;
    }
  } else {
    throw new DecodeError(name, `unexpected channel count ${channels} after decoding`);
  }
  return { data, width, height };
}
