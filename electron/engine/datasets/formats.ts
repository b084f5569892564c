/** Image formats by magic bytes, and decoding to RGB pixels (libjpeg-turbo fast path, sharp for the rest). */
import sharp, { type Metadata } from 'sharp';

import { decodeJpegs } from '../native/index.js';
import { maxPixels } from '../settings.js';

export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'tiff' | 'bmp' | 'rgb';

export function sniff(b: Uint8Array): ImageFormat | null {
  const at = (i: number, ...xs: number[]) => xs.every((x, k) => b[i + k] === x);
  if (b.length < 12) return null;
  if (at(0, 0xff, 0xd8, 0xff)) return 'jpeg';
  if (at(0, 0x89, 0x50, 0x4e, 0x47)) return 'png';
  if (at(0, 0x52, 0x49, 0x46, 0x46) && at(8, 0x57, 0x45, 0x42, 0x50)) return 'webp';
  if (at(0, 0x47, 0x49, 0x46, 0x38)) return 'gif';
  if (at(0, 0x49, 0x49, 0x2a, 0x00) || at(0, 0x4d, 0x4d, 0x00, 0x2a)) return 'tiff';
  if (at(0, 0x42, 0x4d)) return 'bmp';
  return null;
}

export interface Checked {
  width: number;
  height: number;
  /** What was converted on the way to 8-bit RGB: grayscale, alpha, 16-bit. */
  notes: string[];
  error: string | null;
}

/** Fully decodes each image (truncation only shows then) and reports its size and conversions. */
export async function checkImages(blobs: Uint8Array[], formats: (ImageFormat | null)[], threads = 0, limit = maxPixels()): Promise<Checked[]> {
  const out: Checked[] = blobs.map(() => ({ width: 0, height: 0, notes: [], error: null }));
  const jpegIdx = formats.flatMap((f, i) => (f === 'jpeg' ? [i] : []));
  const viaSharp = formats.flatMap((f, i) => (f !== 'jpeg' && f !== null ? [i] : []));
  if (jpegIdx.length) {
    const r = await decodeJpegs(jpegIdx.map((i) => blobs[i]), 0, 0, threads, limit);
    jpegIdx.forEach((i, k) => {
      out[i].width = r.widths[k];
      out[i].height = r.heights[k];
      // CMYK or other JPEGs turbojpeg refuses get a second opinion from sharp; one over the
      // pixel limit does not (sharp would refuse it too, after reading more of it).
      if (r.widths[k] * r.heights[k] > limit) out[i].error = `${r.widths[k]}×${r.heights[k]} pixels exceeds the limit of ${limit} pixels (EMBAUG_MAX_PIXELS)`;
      else if (r.errors[k]) viaSharp.push(i);
    });
  }
  await Promise.all(
    viaSharp.map(async (i) => {
      try {
        const img = sharp(blobs[i], { failOn: 'warning', limitInputPixels: limit });
        const m = await img.metadata();
        await img.raw().toBuffer();
        out[i] = { width: m.width ?? 0, height: m.height ?? 0, notes: conversions(m), error: null };
      } catch (err) {
        const msg = (err as Error).message;
        out[i].error = /pixel limit/i.test(msg)
          ? `${formats[i]} image exceeds the limit of ${limit} pixels (EMBAUG_MAX_PIXELS)`
          : `${formats[i]} could not be decoded: ${msg}`;
      }
    }),
  );
  formats.forEach((f, i) => {
    if (f === null) out[i].error = 'not an image (no JPEG, PNG, WebP, GIF, TIFF or BMP signature)';
  });
  return out;
}

function conversions(m: Metadata): string[] {
  const notes: string[] = [];
  if (m.channels === 1 || m.channels === 2 || m.space === 'b-w') notes.push('grayscale');
  if (m.hasAlpha) notes.push('alpha');
  if (m.depth && !['uchar', 'char'].includes(m.depth)) notes.push('16-bit');
  if (m.space === 'cmyk') notes.push('cmyk');
  return notes;
}

export interface StoredImage {
  bytes: Uint8Array;
  format: ImageFormat;
  width: number;
  height: number;
}

/**
 * Decodes images to one size, HWC RGB uint8: raw pixels copy straight, JPEGs of that size
 * go to libjpeg-turbo in one batch, and everything else through sharp (resize: fill).
 */
export async function decodeToSize(images: StoredImage[], width: number, height: number, threads = 0, limit = maxPixels()): Promise<Uint8Array> {
  const px = width * height * 3;
  // Sorted once: JPEGs and raw pixels of the size, and the rest (sharp).
  const jpegIdx: number[] = [], rgbIdx: number[] = [], slow: number[] = [];
  images.forEach((im, i) => (im.width !== width || im.height !== height ? slow : im.format === 'jpeg' ? jpegIdx : im.format === 'rgb' ? rgbIdx : slow).push(i));
  const decoded = jpegIdx.length ? await decodeJpegs(jpegIdx.map((i) => images[i].bytes), width, height, threads, limit) : null;
  // All JPEGs of the size, as an extraction's images are: libjpeg-turbo's array is the answer
  // (a second, zeroed one cost a chunk of 256 CIFAR images 3 µs an image, measured).
  if (decoded && jpegIdx.length === images.length && decoded.errors.every((e) => e === null)) return decoded.pixels;
  const out = new Uint8Array(images.length * px);
  for (const i of rgbIdx) out.set(images[i].bytes, i * px);
  if (decoded) jpegIdx.forEach((i, k) => (decoded.errors[k] ? slow.push(i) : out.set(decoded.pixels.subarray(k * px, (k + 1) * px), i * px)));
  await Promise.all(
    slow.map(async (i) => {
      const im = images[i];
      const input = im.format === 'rgb' ? sharp(im.bytes, { raw: { width: im.width, height: im.height, channels: 3 } }) : sharp(im.bytes, { limitInputPixels: limit });
      const buf = await input
        .resize(width, height, { fit: 'fill', kernel: 'linear' })
        .toColourspace('srgb')
        .removeAlpha()
        .raw({ depth: 'uchar' })
        .toBuffer();
      out.set(buf.subarray(0, px), i * px);
    }),
  );
  return out;
}

const BROWSER_MIME: Partial<Record<ImageFormat, string>> = { jpeg: 'image/jpeg', png: 'image/png', webp: 'image/webp', gif: 'image/gif' };

/**
 * An image as a data: URL a page can show under a strict CSP: the stored bytes when browsers
 * read the format, else (raw CIFAR pixels, TIFF, BMP) a PNG at most 128 pixels wide.
 */
export async function thumbnailUrl(im: StoredImage): Promise<string> {
  const mime = BROWSER_MIME[im.format];
  if (mime) return `data:${mime};base64,${Buffer.from(im.bytes).toString('base64')}`;
  const input = im.format === 'rgb' ? sharp(im.bytes, { raw: { width: im.width, height: im.height, channels: 3 } }) : sharp(im.bytes, { limitInputPixels: maxPixels() });
  const png = await input.resize({ width: Math.min(im.width, 128), withoutEnlargement: true }).png().toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}
