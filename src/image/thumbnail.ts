// Small JPEG thumbnails as data: URIs, for the HTML report (which must open with nothing fetched).
// The image goes through decodeImage, so the thumbnail shows the pixels the network was given
// (same colour handling, same orientation) and a bad file fails with the decoder's one-line reason.
import sharp from 'sharp';
import { decodeImage } from './decode.js';

export interface ThumbnailOptions {
  /** Longest side in pixels (default 96). */
  size?: number;
  /** JPEG quality 1..100 (default 70). */
  quality?: number;
}

/** `data:image/jpeg;base64,...` of the image scaled to fit `size`x`size` (never enlarged); throws a DecodeError. */
export async function thumbnailDataUri(file: string, o: ThumbnailOptions = {}): Promise<string> {
  const size = o.size ?? 96;
  const img = await decodeImage(file);
  const jpeg = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .resize({ width: size, height: size, fit: 'inside', withoutEnlargement: true })
    .jpeg({ quality: o.quality ?? 70 })
    .toBuffer();
  return `data:image/jpeg;base64,${jpeg.toString('base64')}`;
}
