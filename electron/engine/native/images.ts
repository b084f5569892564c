/** Pixel augmentation and normalisation kernels, and batch JPEG decoding, on the addon. */
import { maxPixels } from '../settings.js';
import * as v from '../validate.js';
import { getThreads, requireBackend, type BackendName } from './backends.js';
import { guard, guardAsync, type AugJob, type NativeAugOp } from './binding.js';

export type { NativeAugOp } from './binding.js';

export interface AugmentRequest {
  /** n images, HWC RGB uint8, all inH×inW. */
  pixels: Uint8Array;
  n: number;
  inH: number;
  inW: number;
  outH?: number;
  outW?: number;
  ops: NativeAugOp[];
  /** Applied to [0,255] values before mean/std (1/255 gives [0,1]). */
  scale?: number;
  mean?: number[];
  std?: number[];
  bgr?: boolean;
  nhwc?: boolean;
  seed?: number;
  /** Global index of the first image: random draws depend on it, not on the batch. */
  indexOffset?: number;
  /** Or one index per image (stable ids, e.g. from the image hash), overriding indexOffset. */
  indices?: BigInt64Array;
  threads?: number;
  backend?: BackendName;
  /** An array to fill (n × 3 × outH × outW floats) instead of a new one. */
  out?: Float32Array;
}

function validOps(ops: NativeAugOp[]): void {
  if (!Array.isArray(ops)) throw new TypeError('ops must be an array');
  ops.forEach((op, i) => {
    v.int(`ops[${i}].kind`, op.kind, 1, 9);
    v.num(`ops[${i}].p`, op.p, 0, 1);
    v.num(`ops[${i}].a`, op.a);
    v.num(`ops[${i}].b`, op.b);
    v.int(`ops[${i}].k`, op.k, -1024, 1024);
  });
  if (ops.length > 16) throw new RangeError(`at most 16 augmentation ops, got ${ops.length}`);
}

function augJob(r: AugmentRequest): AugJob {
  const n = v.int('n', r.n, 1);
  const inH = v.int('inH', r.inH, 1, 1 << 14);
  const inW = v.int('inW', r.inW, 1, 1 << 14);
  v.typed('pixels', r.pixels, Uint8Array, n * inH * inW * 3);
  const triple = (name: string, a: number[] | undefined, d: number, min: number) => {
    const t = a ?? [d, d, d];
    if (!Array.isArray(t) || t.length !== 3) throw new TypeError(`${name} must be an array of 3 numbers`);
    return t.map((x, i) => v.num(`${name}[${i}]`, x, min));
  };
  validOps(r.ops);
  const std = triple('std', r.std, 1, 1e-12);
  return {
    src: r.pixels,
    n,
    inH,
    inW,
    outH: v.int('outH', r.outH ?? inH, 1, 1 << 14),
    outW: v.int('outW', r.outW ?? inW, 1, 1 << 14),
    ops: r.ops,
    scale: v.num('scale', r.scale ?? 1 / 255),
    mean: triple('mean', r.mean, 0, -Infinity),
    std,
    bgr: r.bgr ?? false,
    nhwc: r.nhwc ?? false,
    seed: v.int('seed', r.seed ?? 0, 0, 2 ** 52),
    indexOffset: v.int('indexOffset', r.indexOffset ?? 0, 0),
    ...(r.indices !== undefined ? { indices: v.typed('indices', r.indices, BigInt64Array as unknown as { new (n: number): BigInt64Array; name: string }, n) } : {}),
    threads: v.int('threads', r.threads ?? 0, 0, 1024),
    backend: requireBackend(r.backend ?? 'cpu'),
    ...(r.out !== undefined ? { dst: v.typed('out', r.out, Float32Array, n * 3 * (r.outH ?? inH) * (r.outW ?? inW)) } : {}),
  };
}

/** Augments and normalises a batch into float32 NCHW (or NHWC) ready for ONNX Runtime. */
export function augment(r: AugmentRequest): Float32Array {
  const job = augJob(r);
  return guard((b) => b.augment(job));
}

/** The parameters each image's view draws (3 floats per op, see aug_theta in aug_kernel.h). */
export function augTheta(ops: NativeAugOp[], seed: number, indices: BigInt64Array): Float32Array {
  validOps(ops);
  v.int('seed', seed, 0, 2 ** 52);
  if (!(indices instanceof BigInt64Array)) throw new TypeError('indices must be a BigInt64Array');
  return guard((b) => b.augTheta(ops, seed, indices));
}

/** The same off the event loop, so decoding, augmentation and inference can overlap. */
export async function augmentAsync(r: AugmentRequest): Promise<Float32Array> {
  const job = augJob(r);
  return guardAsync((b) => b.augmentAsync(job));
}

export interface DecodedBatch {
  /** n × height × width × 3 RGB; undecodable images are left zero. */
  pixels: Uint8Array;
  errors: (string | null)[];
  widths: Int32Array;
  heights: Int32Array;
}

/**
 * Decodes JPEGs of one expected size with libjpeg-turbo; others are reported per image.
 * width = height = 0 only verifies each image (full decode) and reports its size. Images
 * over `limitPixels` (default: the EMBAUG_MAX_PIXELS setting) are refused from their header.
 */
export async function decodeJpegs(blobs: Uint8Array[], width: number, height: number, threads = 0, limitPixels = maxPixels()): Promise<DecodedBatch> {
  if (!Array.isArray(blobs)) throw new TypeError('blobs must be an array of Uint8Array');
  blobs.forEach((b, i) => v.typed(`blobs[${i}]`, b, Uint8Array));
  const args = [
    v.int('width', width, 0, 1 << 14),
    v.int('height', height, 0, 1 << 14),
    v.int('threads', threads || getThreads(), 1, 1024),
    v.int('limitPixels', limitPixels, 1, 2 ** 40),
  ] as const;
  return guardAsync((b) => b.decodeJpegs(blobs, ...args));
}

