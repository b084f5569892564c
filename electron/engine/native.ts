/**
 * The only loader of the compute addon (native/), and its typed, validated surface.
 * The binding trusts its arguments; every check happens here first.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { EmbaugError, fromNative } from './errors.js';
import { packageRoot } from './paths.js';
import { maxPixels } from './settings.js';
import * as v from './validate.js';

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

interface NativeMlp {
  forward(x: Float32Array, n: number): Float32Array;
  train(opts: object, onEpoch?: (s: EpochStats) => void): Promise<EpochStats[]>;
  gradients(x: Float32Array, n: number, y: Int32Array | Float32Array): { loss: number; grads: Float32Array[] };
  getParams(): Float32Array[];
  setParams(p: Float32Array[]): void;
  cancel(): void;
  dispose(): void;
  readonly busy: boolean;
  readonly disposed: boolean;
  readonly backend: string | null;
}

export interface NativeAugOp {
  kind: number;
  p: number;
  a: number;
  b: number;
  k: number;
}

interface AugJob {
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
}

interface Binding {
  abiVersion: number;
  listBackends(): BackendInfo[];
  setLibraryDir(dir: string): void;
  setThreads(n: number): void;
  getThreads(): number;
  peakGflops(threads: number, seconds: number): number;
  timeGemm(backend: string, m: number, n: number, k: number, reps: number): number;
  Mlp: new (sizes: number[], backend: string, seed: number, residual: boolean) => NativeMlp;
  augment(job: AugJob): Float32Array;
  augmentAsync(job: AugJob): Promise<Float32Array>;
  similarPairs(x: Float32Array, n: number, d: number, threshold: number, maxPairs: number): Promise<{ i: Int32Array; j: Int32Array; s: Float32Array }>;
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
  binding.setLibraryDir(dir);
  return binding;
}

export function listBackends(): BackendInfo[] {
  return loadNative().listBackends();
}

/** Threads for OpenBLAS and the CPU kernels; 0 means one per core. */
export function setThreads(n: number): void {
  loadNative().setThreads(v.int('threads', n, 0, 1024));
}

export function getThreads(): number {
  return loadNative().getThreads();
}

/** Measured FMA throughput of this CPU (GFLOP/s), for benchmarks. */
export function peakGflops(threads: number, seconds = 1): number {
  return loadNative().peakGflops(v.int('threads', threads, 1, 1024), v.num('seconds', seconds, 0.01, 60));
}

/** Seconds for `reps` GEMMs of [m,k]×[k,n] on a backend, for benchmarks. */
export function timeGemm(backend: BackendName, m: number, n: number, k: number, reps: number): number {
  return loadNative().timeGemm(requireBackend(backend), m, n, k, v.int('reps', reps, 1));
}

export type BackendName = 'cpu' | 'cuda';

export function requireBackend(name: string): BackendName {
  const b = v.oneOf('backend', name, ['cpu', 'cuda'] as const);
  const info = listBackends().find((x) => x.name === b);
  if (!info?.available) throw new EmbaugError('E_BACKEND_UNAVAILABLE', `Backend "${b}" is unavailable: ${info?.reason}`);
  return b;
}

export interface OptimizerConfig {
  kind: 'sgd' | 'adam';
  lr: number;
  momentum?: number;
  weightDecay?: number;
  nesterov?: boolean;
  beta1?: number;
  beta2?: number;
  eps?: number;
  schedule?: 'constant' | 'cosine';
}

export interface Supervised {
  x: Float32Array;
  labels?: Int32Array;
  targets?: Float32Array;
}

export interface TrainOptions extends Supervised {
  /** Rows of x are `views` blocks of n samples; each epoch picks one view per sample at random. */
  views?: number;
  val?: Supervised;
  batch: number;
  epochs: number;
  seed: number;
  firstEpoch?: number;
  totalEpochs?: number;
  optimizer: OptimizerConfig;
  onEpoch?: (s: EpochStats) => void;
  signal?: AbortSignal;
}

export interface MlpOptions {
  backend?: BackendName;
  seed?: number;
  /** Ω(z) = z + f(z) with f's last layer initialised at zero: starts as the identity. */
  residual?: boolean;
}

/**
 * Parameters of one MLP at most: with gradients and two optimiser moments that is 4 GiB.
 * Ω and Ψ of a 2048-d embedding have about 8.4 M; anything near the cap is a mistake.
 */
export const MAX_PARAMS = 2 ** 28;

/** A dense MLP on a compute backend: Linear+ReLU layers and a linear output. */
export class MlpModel {
  readonly sizes: readonly number[];
  readonly residual: boolean;
  #m: NativeMlp;

  constructor(sizes: number[], opts: MlpOptions = {}) {
    if (!Array.isArray(sizes) || sizes.length < 2)
      throw new TypeError(`sizes must list at least an input and an output size, got ${JSON.stringify(sizes)}`);
    sizes.forEach((s, i) => v.int(`sizes[${i}]`, s, 1, 1 << 20));
    const params = sizes.slice(1).reduce((sum, out, l) => sum + out * (sizes[l] + 1), 0);
    if (params > MAX_PARAMS)
      throw new RangeError(
        `an MLP of sizes [${sizes.join(', ')}] has ${params.toExponential(2)} parameters, over the limit of ${MAX_PARAMS.toExponential(2)} ` +
          '(weights, gradients and optimiser state take 16 bytes each): use smaller layers',
      );
    const residual = opts.residual ?? false;
    if (residual && sizes[0] !== sizes[sizes.length - 1])
      throw new RangeError(`a residual MLP needs equal input and output sizes, got ${sizes[0]} and ${sizes.at(-1)}`);
    const backend = requireBackend(opts.backend ?? 'cpu');
    const seed = v.int('seed', opts.seed ?? 0, 0, 2 ** 52);
    this.sizes = Object.freeze([...sizes]);
    this.residual = residual;
    try {
      this.#m = new (loadNative().Mlp)([...sizes], backend, seed, residual);
    } catch (err) {
      throw fromNative(err);
    }
  }

  get inDim(): number {
    return this.sizes[0];
  }
  get outDim(): number {
    return this.sizes[this.sizes.length - 1];
  }
  get busy(): boolean {
    return this.#m.busy;
  }
  get disposed(): boolean {
    return this.#m.disposed;
  }
  get backend(): string | null {
    return this.#m.backend;
  }

  #rows(name: string, x: unknown): number {
    const arr = v.typed(name, x, Float32Array);
    if (arr.length === 0 || arr.length % this.inDim !== 0)
      throw new RangeError(`${name} must hold whole rows of ${this.inDim} features, got ${arr.length} values`);
    v.finite(name, arr, this.inDim);
    return arr.length / this.inDim;
  }

  #supervision(prefix: string, s: Supervised, n: number): Int32Array | Float32Array {
    if ((s.labels === undefined) === (s.targets === undefined))
      throw new TypeError(`${prefix}: give exactly one of labels (Int32Array) or targets (Float32Array)`);
    if (s.labels !== undefined)
      return v.labelsInRange(`${prefix}labels`, v.typed(`${prefix}labels`, s.labels, Int32Array, n), this.outDim);
    return v.finite(`${prefix}targets`, v.typed(`${prefix}targets`, s.targets, Float32Array, n * this.outDim), this.outDim);
  }

  /** Outputs (logits or regressed vectors) for rows of x. */
  forward(x: Float32Array): Float32Array {
    const n = this.#rows('x', x);
    try {
      return this.#m.forward(x, n);
    } catch (err) {
      throw fromNative(err);
    }
  }

  /** Mean loss and every parameter's gradient on one batch; no update. For checks and tests. */
  gradients(s: Supervised): { loss: number; grads: Float32Array[] } {
    const n = this.#rows('x', s.x);
    const y = this.#supervision('', s, n);
    try {
      return this.#m.gradients(s.x, n, y);
    } catch (err) {
      throw fromNative(err);
    }
  }

  /** Whole-epoch training off the event loop; resolves with the per-epoch history. */
  async train(o: TrainOptions): Promise<EpochStats[]> {
    const views = v.int('views', o.views ?? 1, 1, 1024);
    const rows = this.#rows('x', o.x);
    if (rows % views !== 0) throw new RangeError(`x has ${rows} rows, not a multiple of views=${views}`);
    const n = rows / views;
    const y = this.#supervision('', o, n);
    let val: { valX: Float32Array; valN: number; valLabels?: Int32Array; valTargets?: Float32Array } | undefined;
    if (o.val) {
      const vn = this.#rows('val.x', o.val.x);
      const vy = this.#supervision('val.', o.val, vn);
      if ((vy instanceof Int32Array) !== (y instanceof Int32Array))
        throw new TypeError('val must be supervised like the training set (both labels or both targets)');
      val = { valX: o.val.x, valN: vn, ...(vy instanceof Int32Array ? { valLabels: vy } : { valTargets: vy }) };
    }
    const opt = o.optimizer;
    const optimizer = {
      kind: v.oneOf('optimizer.kind', opt?.kind, ['sgd', 'adam'] as const),
      lr: v.num('optimizer.lr', opt.lr, 0, 100),
      momentum: v.num('optimizer.momentum', opt.momentum ?? 0.9, 0, 1),
      weightDecay: v.num('optimizer.weightDecay', opt.weightDecay ?? 0, 0, 1),
      nesterov: opt.nesterov ?? false,
      beta1: v.num('optimizer.beta1', opt.beta1 ?? 0.9, 0, 1),
      beta2: v.num('optimizer.beta2', opt.beta2 ?? 0.999, 0, 1),
      eps: v.num('optimizer.eps', opt.eps ?? 1e-8, 0, 1),
      schedule: v.oneOf('optimizer.schedule', opt.schedule ?? 'constant', ['constant', 'cosine'] as const),
    };
    if (this.#m.disposed) throw new EmbaugError('E_DISPOSED', 'this model was disposed: create a new one');
    if (this.#m.busy) throw new EmbaugError('E_BUSY', 'this model is already training: await train() or call cancel()');
    if (o.signal?.aborted) throw new EmbaugError('E_CANCELLED', 'training was cancelled before it started');
    const args = {
      x: o.x,
      views,
      n,
      ...(y instanceof Int32Array ? { labels: y } : { targets: y }),
      ...val,
      batch: v.int('batch', o.batch, 1, 1 << 16),
      epochs: v.int('epochs', o.epochs, 1, 100000),
      seed: v.int('seed', o.seed, 0, 2 ** 52),
      firstEpoch: v.int('firstEpoch', o.firstEpoch ?? 0, 0),
      totalEpochs: v.int('totalEpochs', o.totalEpochs ?? 0, 0),
      optimizer,
    };
    const onAbort = () => this.#m.cancel();
    o.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await this.#m.train(args, o.onEpoch);
    } catch (err) {
      throw fromNative(err);
    } finally {
      o.signal?.removeEventListener('abort', onAbort);
    }
  }

  cancel(): void {
    this.#m.cancel();
  }

  /** Weights and biases, layer by layer: W0 [out×in] row-major, b0, W1, b1, ... */
  getParams(): Float32Array[] {
    try {
      return this.#m.getParams();
    } catch (err) {
      throw fromNative(err);
    }
  }

  setParams(params: Float32Array[]): void {
    if (!Array.isArray(params)) throw new TypeError('params must be an array of Float32Array');
    params.forEach((p, i) => v.finite(`params[${i}]`, v.typed(`params[${i}]`, p, Float32Array)));
    try {
      this.#m.setParams(params);
    } catch (err) {
      throw fromNative(err);
    }
  }

  dispose(): void {
    try {
      this.#m.dispose();
    } catch (err) {
      throw fromNative(err);
    }
  }
}

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
  if (!Array.isArray(r.ops)) throw new TypeError('ops must be an array');
  r.ops.forEach((op, i) => {
    v.int(`ops[${i}].kind`, op.kind, 1, 9);
    v.num(`ops[${i}].p`, op.p, 0, 1);
    v.num(`ops[${i}].a`, op.a);
    v.num(`ops[${i}].b`, op.b);
    v.int(`ops[${i}].k`, op.k, -1024, 1024);
  });
  if (r.ops.length > 16) throw new RangeError(`at most 16 augmentation ops, got ${r.ops.length}`);
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
  };
}

/** Augments and normalises a batch into float32 NCHW (or NHWC) ready for ONNX Runtime. */
export function augment(r: AugmentRequest): Float32Array {
  try {
    return loadNative().augment(augJob(r));
  } catch (err) {
    throw err instanceof TypeError || err instanceof RangeError ? err : fromNative(err);
  }
}

/** The same off the event loop, so decoding, augmentation and inference can overlap. */
export async function augmentAsync(r: AugmentRequest): Promise<Float32Array> {
  const job = augJob(r);
  try {
    return await loadNative().augmentAsync(job);
  } catch (err) {
    throw fromNative(err);
  }
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
  try {
    return await loadNative().decodeJpegs(blobs, ...args);
  } catch (err) {
    throw fromNative(err);
  }
}

/**
 * All pairs (i < j) of rows whose cosine similarity reaches `threshold`, by an exact blocked
 * search (X·Xᵀ through the CPU GEMM). Rows are normalised here; zero rows match nothing.
 */
export async function similarPairs(x: Float32Array, d: number, threshold: number, maxPairs = 1_000_000): Promise<{ i: Int32Array; j: Int32Array; s: Float32Array }> {
  v.typed('x', x, Float32Array);
  v.int('d', d, 1, 1 << 20);
  if (x.length % d !== 0) throw new RangeError(`x must hold whole rows of ${d}, got ${x.length} values`);
  v.num('threshold', threshold, -1, 1);
  const n = x.length / d;
  const unit = new Float32Array(x.length);
  for (let r = 0; r < n; r++) {
    let s = 0;
    for (let k = 0; k < d; k++) s += x[r * d + k] ** 2;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let k = 0; k < d; k++) unit[r * d + k] = x[r * d + k] * inv;
  }
  try {
    return await loadNative().similarPairs(unit, n, d, threshold, v.int('maxPairs', maxPairs, 1, 1 << 28));
  } catch (err) {
    throw fromNative(err);
  }
}
