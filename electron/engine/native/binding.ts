/**
 * The only loader of the compute addon (native/): where it is, that it is the build this
 * engine speaks to (its backend ABI version), and one way to call it that turns what it throws
 * into EmbaugErrors. The binding trusts its arguments; mlp.ts, images.ts and similarity.ts
 * check every one first.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { EmbaugError, fromNative } from '../errors.js';
import { packageRoot } from '../paths.js';

/** EB_BACKEND_ABI_VERSION of native/include/eb_backend.h that this engine was written against. */
export const ABI_VERSION = 5;

export interface BackendInfo {
  name: 'cpu' | 'cuda';
  available: boolean;
  device: string;
  memoryBytes: number;
  reason: string | null;
}

export interface EpochStats {
  epoch: number;
  loss: number;
  accuracy: number | null;
  valLoss: number | null;
  valAccuracy: number | null;
  seconds: number;
}

export interface NativeAugOp {
  kind: number;
  p: number;
  a: number;
  b: number;
  k: number;
}

export interface NativeMlp {
  forward(x: Float32Array, n: number): Float32Array;
  train(opts: object, onEpoch?: (s: EpochStats) => void): Promise<EpochStats[]>;
  gradients(x: Float32Array, n: number, y: Int32Array | Float32Array): { loss: number; grads: Float32Array[] };
  adamStepVia(
    x: Float32Array, n: number, targetsOf: (out: Float32Array) => Float32Array,
    params: Float32Array[], m: Float32Array[], v: Float32Array[], lr: number, beta1: number, beta2: number, eps: number,
  ): number | null;
  getParams(): Float32Array[];
  setParams(p: Float32Array[]): void;
  cancel(): void;
  dispose(): void;
  readonly busy: boolean;
  readonly disposed: boolean;
  readonly backend: string | null;
}

export interface AugJob {
  src: Uint8Array;
  n: number;
  inH: number;
  inW: number;
  outH: number;
  outW: number;
  ops: NativeAugOp[];
  scale: number;
  mean: number[];
  std: number[];
  bgr: boolean;
  nhwc: boolean;
  seed: number;
  indexOffset: number;
  indices?: BigInt64Array;
  threads: number;
  backend: string;
  dst?: Float32Array;
}

export interface Binding {
  abiVersion: number;
  listBackends(): BackendInfo[];
  setLibraryDir(dir: string): void;
  setThreads(n: number): void;
  getThreads(): number;
  peakGflops(threads: number, seconds: number): number;
  timeGemm(backend: string, m: number, n: number, k: number, reps: number, ta?: boolean, tb?: boolean): number;
  Mlp: new (sizes: number[], backend: string, seed: number, residual: boolean) => NativeMlp;
  augment(job: AugJob): Float32Array;
  augmentAsync(job: AugJob): Promise<Float32Array>;
  augTheta(ops: NativeAugOp[], seed: number, indices: BigInt64Array): Float32Array;
  nearestRows(x: Float32Array, n: number, d: number, k: number, queries?: Int32Array): Promise<{ idx: Int32Array; sim: Float32Array }>;
  detailSimilarity(grey: Uint8Array, pairs: Int32Array, mirror: Uint8Array, threads: number): Promise<Float64Array>;
  meanCovariance(x: Float32Array, n: number, d: number, ddof: number): { mean: Float64Array; cov: Float64Array };
  whitenRows(t: Float32Array, n: number, d: number, mean: Float32Array, chol: Float32Array): Float32Array;
  decodeJpegs(
    blobs: Uint8Array[],
    width: number,
    height: number,
    threads: number,
    maxPixels: number,
  ): Promise<{ pixels: Uint8Array; errors: (string | null)[]; widths: Int32Array; heights: Int32Array }>;
}

/** Inside a packaged app the addon sits in app.asar.unpacked; in a checkout, under native/build. */
function addonDir(): string {
  const root = process.env.EMBAUG_NATIVE_DIR ?? join(packageRoot(), 'native', 'build', 'Release');
  return root.replace(`app.asar${'/'}`, `app.asar.unpacked/`);
}

let binding: Binding | undefined;

export function loadNative(): Binding {
  if (binding) return binding;
  const dir = addonDir();
  const file = join(dir, 'embaug_native.node');
  if (!existsSync(file))
    throw new EmbaugError(
      'E_NATIVE_LOAD',
      `The compute addon is not built (no ${file}). Run \`npm run build:native\`; it needs cmake, ` +
        'a C++ compiler and the Debian packages libopenblas-dev and libturbojpeg0-dev.',
    );
  try {
    binding = createRequire(import.meta.url)(file) as Binding;
  } catch (err) {
    const msg = (err as Error).message;
    const hint = /NODE_MODULE_VERSION|invalid ELF|wrong ELF class|undefined symbol/.test(msg)
      ? 'It was built for another Node.js, Electron or platform: rebuild it with `npm run build:native`.'
      : 'A library it links to may be missing: install libopenblas0 and libturbojpeg0, or rebuild with `npm run build:native`.';
    throw new EmbaugError('E_NATIVE_LOAD', `The compute addon ${file} could not be loaded: ${msg}. ${hint}`);
  }
  if (binding.abiVersion !== ABI_VERSION) {
    const found = binding.abiVersion;
    binding = undefined;
    throw new EmbaugError('E_NATIVE_LOAD', `The compute addon ${file} speaks backend ABI ${found}, this engine ${ABI_VERSION}: rebuild it with \`npm run build:native\`.`);
  }
  binding.setLibraryDir(dir);
  return binding;
}

/** Runs a call into the addon, turning what it throws into an EmbaugError with its code. */
export function guard<T>(call: (b: Binding) => T): T {
  try {
    return call(loadNative());
  } catch (err) {
    throw fromNative(err);
  }
}

/** The same for calls that return a promise. */
export async function guardAsync<T>(call: (b: Binding) => Promise<T>): Promise<T> {
  try {
    return await call(loadNative());
  } catch (err) {
    throw fromNative(err);
  }
}

