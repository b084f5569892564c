/**
 * Embedding extraction: decode → augment and normalise (addon) → ONNX Runtime → cache.
 * The next images are decoded and augmented while ONNX Runtime runs the current ones. Work is
 * written chunk by chunk, so a killed extraction resumes where it stopped, with no
 * duplicate rows (image hashes are keys) and none missing.
 */
import { cpus } from 'node:os';
import * as ort from 'onnxruntime-node';

import { imageIndex, nativeOps, parseAug } from '../augment/index.js';
import { type BackboneInfo, backboneOutput, getBackbone, largestActivation, onnxThreads, preprocessOf, session } from '../backbones/index.js';
import { decodeToSize, getDataset, readBlobs, selectImages, sniff, type ImageRow, type Selection } from '../datasets/index.js';
import type { Db } from '../db.js';
import { ProgressMeter, throwIfAborted, type OnProgress } from '../jobs/index.js';
import { augmentAsync } from '../native/index.js';
import { startRun } from '../runs/index.js';
import { EmbaugError } from '../errors.js';
import * as v from '../validate.js';
import { type Dtype, cachedShas, getOrCreateSet, loadVectors, writeVectors } from './cache.js';

export interface ExtractRequest extends Selection {
  dataset: number | string;
  backbone: string;
  /** Augmentation spec text, e.g. "identity", "hflip", "crop:pad=4+hflip:p=0.5". */
  aug?: string;
  /** Seed of random augmentations (one cached set per seed); ignored for deterministic ones. */
  seed?: number;
  dtype?: Dtype;
  /** Images per ONNX Runtime run; by default the backbone's (phiBatch). */
  batch?: number;
  /** Cores: one one-thread ONNX Runtime session each. */
  threads?: number;
  signal?: AbortSignal;
  onProgress?: OnProgress;
  /**
   * The selection's images when the caller already has them (a head draws fresh views of the
   * same images every epoch): the selection fields are then not evaluated again.
   */
  images?: ImageRow[];
  /**
   * The backbone output to cache: its embedding (the default), or its manifest's logits output
   * (the base model's scores, for its accuracy on the base task).
   */
  output?: string;
  /** Record a run (default true); extraction inside a larger run passes its parent. */
  record?: boolean;
  parentRunId?: number;
  /** Decoded images kept between the extractions of one larger run (see PixelMemo). */
  pixels?: PixelMemo;
}

export interface ExtractResult {
  setId: number;
  images: ImageRow[];
  extracted: number;
  cached: number;
  seconds: number;
  /**
   * Seconds the main thread spent waiting on ONNX Runtime; the rest of the wall time it read,
   * decoded and wrote. Not the cores ONNX Runtime lost to that work: its threads run beside it.
   */
  onnxSeconds: number;
  imagesPerSecond: number;
}

/** An extraction's arguments checked and resolved: what a cache set or a shard file is keyed by. */
export function planExtraction(db: Db, req: ExtractRequest) {
  const ds = getDataset(db, req.dataset);
  const bb = getBackbone(db, req.backbone);
  const spec = parseAug(req.aug ?? 'identity');
  const seed = spec.deterministic ? 0 : v.int('seed', req.seed ?? 0, 0, 2 ** 31);
  const dtype = v.oneOf('dtype', req.dtype ?? 'float32', ['float32', 'float16'] as const);
  const batch = req.batch === undefined ? undefined : v.int('batch', req.batch, 1, 8192);
  const threads = v.int('threads', req.threads ?? cpus().length, 1, 1024);
  const images = req.images ?? selectImages(db, ds.id, req);
  const { output, dim } = backboneOutput(bb, req.output);
  return { ds, bb, spec, seed, dtype, batch, threads, images, output, dim, key: { backboneSha: bb.sha256, output, augKey: spec.key, preprocessKey: preprocessOf(bb.manifest).key, seed, dtype } };
}

export async function extract(db: Db, req: ExtractRequest): Promise<ExtractResult> {
  const { ds, bb, spec, seed, dtype, batch, threads, images, output, dim, key } = planExtraction(db, req);
  const setId = getOrCreateSet(db, key, dim);
  const have = cachedShas(db, setId);
  // In hash order, each batch's rows append to the set's end of the (set, hash) key instead of
  // landing on pages all over it: a vector costs about 3 µs to write instead of 16 (measured),
  // and Φ's outputs do not depend on the batch an image is in (checked bit for bit).
  const todo = [...new Map(images.filter((r) => !have.has(r.sha256)).map((r) => [r.sha256, r])).values()].sort((a, b) => (a.sha256 < b.sha256 ? -1 : a.sha256 > b.sha256 ? 1 : 0));
  // A look-up that finds everything cached is no run of its own: a reproduction would list
  // hundreds of "0 extracted" children otherwise.
  const record = (req.record ?? true) && todo.length > 0;
  const run = record
    ? startRun(db, {
        kind: 'extract',
        name: `extract ${bb.name}${output === bb.manifest.embedding.output ? '' : ` ${output}`} ${spec.key} on ${ds.name}`,
        parentId: req.parentRunId ?? null,
        backboneSha: bb.sha256,
        datasetId: ds.id,
        datasetVersion: ds.version,
        config: { aug: spec.key, output, seed, dtype, batch: batch ?? null, threads, split: req.split ?? null, classes: req.classes ?? null, limit: req.limit ?? null, setId },
        seed,
        threads,
      })
    : null;
  const t0 = performance.now();
  // Each WAL checkpoint syncs the database file, and at SQLite's default (every 1,000 pages)
  // an extraction of 10,000 images paid for several; one at the end instead (measured,
  // interleaved: 6% more images/s).
  const autocheckpoint = db.pragma('wal_autocheckpoint', { simple: true }) as number;
  db.pragma('wal_autocheckpoint = 0');
  try {
    const sink = (rows: ImageRow[], vectors: Float32Array) => writeVectors(db, setId, rows.map((r) => r.sha256), vectors, dim, dtype);
    const onnxSeconds = await phiPass(db, bb, todo, { aug: spec.key, output, seed, batch, threads, signal: req.signal, onProgress: req.onProgress, pixels: req.pixels }, sink);
    db.pragma('wal_checkpoint(PASSIVE)');
    const seconds = (performance.now() - t0) / 1000;
    const result: ExtractResult = {
      setId, images, extracted: todo.length, cached: images.length - todo.length, seconds, onnxSeconds,
      imagesPerSecond: todo.length / Math.max(seconds, 1e-9),
    };
    run?.complete({ extracted: result.extracted, cached: result.cached, seconds, imagesPerSecond: result.imagesPerSecond, onnxShare: onnxSeconds / Math.max(seconds, 1e-9) });
    return result;
  } catch (err) {
    throw run ? run.fail(err) : err;
  } finally {
    db.pragma(`wal_autocheckpoint = ${autocheckpoint}`);
  }
}

export interface PhiPassOptions {
  aug: string;
  /** Output to collect; the manifest's embedding output by default (e.g. its logits instead). */
  output?: string;
  seed: number;
  /** Images per ONNX Runtime run; by default the backbone's (phiBatch). */
  batch?: number;
  threads: number;
  signal?: AbortSignal;
  onProgress?: OnProgress;
  pixels?: PixelMemo;
}

/**
 * Decoded images at one input size, kept while a larger run extracts several views of the same
 * images (a reproduction reads each training image in three views for each of six backbones, all
 * at 32×32): each is read from the database and decoded once instead of at every view. Reading
 * and decoding were about a third of the CPU time spent around ONNX Runtime in an extraction,
 * and on two cores that time comes out of ONNX Runtime's: two views of the 10,000 test images
 * after an identity pass ran 4–5% faster with it (vgg16-w16, resnet18-w16; three rounds each).
 * Holds at most `budget` bytes, the images it met first: nothing is evicted, so views that scan
 * more images than fit (large inputs) still find the first ones instead of each evicting what
 * the next would read. Scoped to one run by its owner, who drops it after its extractions.
 */
export class PixelMemo {
  #images = new Map<string, Uint8Array>();
  #bytes = 0;
  /** Images served from the memo and decoded into it, for reports and tests. */
  hits = 0;
  misses = 0;

  constructor(readonly budget = 512 << 20) {}

  /** Pixels of `rows` at width × height (HWC RGB), decoding only those not yet held. */
  async decode(db: Db, rows: ImageRow[], width: number, height: number): Promise<Uint8Array> {
    const px = 3 * width * height;
    const keys = rows.map((r) => `${width}x${height}:${r.sha256}`);
    // What is held now: another pass may add images while this one decodes.
    const held = keys.map((k) => this.#images.get(k));
    const missing = rows.filter((_, i) => !held[i]);
    const fresh = missing.length > 0 ? await decodeToSize(readBlobs(db, missing), width, height, 1) : new Uint8Array(0);
    const out = new Uint8Array(rows.length * px);
    let m = 0;
    held.forEach((im, i) => {
      if (!im) {
        im = fresh.subarray(m * px, ++m * px);
        if (this.#bytes + px <= this.budget && !this.#images.has(keys[i])) {
          this.#images.set(keys[i], im.slice());
          this.#bytes += px;
        }
      }
      out.set(im, i * px);
    });
    this.hits += rows.length - missing.length;
    this.misses += missing.length;
    return out;
  }
}

/** Images read, decoded and augmented per call, and written per transaction. */
const CHUNK = 256;

const batches = new Map<string, Promise<number>>();

/**
 * The batch a one-thread session runs a backbone fastest at, by the rule measured on the
 * bundled ones: the largest power of two, 8 to 256, whose largest intermediate tensor stays
 * within 4 MiB. Larger ones spill out of the caches: two one-thread sessions ran inception-w8
 * (145 KB per image) at 3,900 images/s with batches of 16 against 3,000 with 128; resnet18-w16
 * and vgg16-w16 (64 KB) ran best at 32-64 (2-core Intel Xeon).
 */
export function phiBatch(bb: BackboneInfo): Promise<number> {
  let b = batches.get(bb.sha256);
  if (!b) {
    const pre = preprocessOf(bb.manifest);
    // A graph whose every tensor cannot be exposed (the probe's way of reading their sizes)
    // still extracts, at the bundled backbones' usual batch: the batch changes speed, not vectors.
    b = largestActivation(bb.path, bb.manifest.input.name, pre.nhwc ? [1, pre.height, pre.width, 3] : [1, 3, pre.height, pre.width]).then(
      (bytes) => 2 ** Math.max(3, Math.min(8, Math.floor(Math.log2((4 << 20) / Math.max(bytes, 1))))),
      () => 64,
    );
    batches.set(bb.sha256, b);
  }
  return b;
}

/**
 * Runs Φ(g(x)) over images, handing the vectors to `sink` in the images' order, a chunk at a
 * time (the cache, or memory for work that must not be cached). Returns the seconds the main
 * thread spent waiting on ONNX Runtime.
 *
 * `threads` one-thread ONNX Runtime sessions run at once, each on `batch` images at a time,
 * rather than one session on `threads` threads: a two-thread session's threads meet at every
 * operator, so the core the main thread borrows for reading, decoding and writing held both
 * up. Images are read, decoded and written in chunks of 256 whatever the batch, since each
 * such call costs the main thread about 0.15 ms however few images it takes. Outputs depend on
 * neither the threads nor the batch (tested).
 */
export async function phiPass(
  db: Db,
  bb: BackboneInfo,
  todo: ImageRow[],
  o: PhiPassOptions,
  sink: (rows: ImageRow[], vectors: Float32Array) => void,
): Promise<number> {
  const ops = nativeOps(parseAug(o.aug));
  const pre = preprocessOf(bb.manifest);
  if (todo.length === 0) return 0;
  const meter = new ProgressMeter('extracting embeddings', todo.length, 'images', o.onProgress);
  const output = o.output ?? bb.manifest.embedding.output;
  const { height: H, width: W } = pre;
  const px = 3 * H * W;
  const shape = (n: number) => (pre.nhwc ? [n, H, W, 3] : [n, 3, H, W]);
  const batch = o.batch ?? (await phiBatch(bb));
  const chunk = Math.ceil(CHUNK / batch) * batch;
  // Inputs ONNX Runtime's threads handed back, filled again: a new one per batch cost the main
  // thread a zeroed allocation and the garbage collector its release.
  const spare: Float32Array[] = [];
  const recycle = (x: Float32Array) => void (x.length === batch * px && spare.push(x));
  const augmented = (pixels: Promise<Uint8Array>, rows: ImageRow[], k: number) =>
    pixels.then((all) =>
      augmentAsync({
        pixels: all.subarray(k * px, (k + rows.length) * px), n: rows.length, inH: H, inW: W, ops, scale: pre.scale, mean: pre.mean, std: pre.std,
        bgr: pre.bgr, nhwc: pre.nhwc, seed: o.seed, indices: BigInt64Array.from(rows.map((r) => imageIndex(r.sha256))), threads: 1,
        out: rows.length === batch ? spare.pop() : undefined,
      }),
    );
  // `threads` sessions held for this pass (given back below, however it ends).
  const phi = onnxThreads(bb.path, 1).lease(o.threads);
  // Batches prepared ahead, and batches running, oldest first. A chunk more is prepared
  // until a chunk's worth and a batch per session wait, so a session never waits on decoding.
  const ready: { rows: ImageRow[]; input: Promise<Float32Array> }[] = [];
  const running: { rows: ImageRow[]; vectors: Promise<Float32Array> }[] = [];
  let next = 0;
  const refill = () => {
    while ((ready.length < phi.size || ready.length * batch < chunk) && next < todo.length) {
      const rows = todo.slice(next, next + chunk);
      next += rows.length;
      const pixels = o.pixels ? o.pixels.decode(db, rows, W, H) : decodeToSize(readBlobs(db, rows), W, H, 1);
      // Everything is awaited below; should a write throw first, these failures must not go
      // unhandled (an unhandled rejection ends the process).
      pixels.catch(() => {});
      // Each batch augmented into an array of its own, which goes to ONNX Runtime's thread.
      for (let k = 0; k < rows.length; k += batch) {
        const part = rows.slice(k, k + batch);
        const input = augmented(pixels, part, k);
        input.catch(() => {});
        ready.push({ rows: part, input });
      }
    }
  };
  // Two batches queued per session, and each finished batch starts the next at once, in
  // whatever order the sessions finish (a session no longer waits for the main thread to
  // come back from a write, or for the other session's older batch): 2–3% more images/s on
  // the bundled backbones (medians of nine extractions, interleaved processes). The vectors are
  // still written in the images' order. A failure to prepare work (a missing image, say) is
  // queued like a batch, so the loop below throws it in turn.
  const queue = (rows: ImageRow[], vectors: Promise<Float32Array>) => {
    vectors.catch(() => {});
    running.push({ rows, vectors });
  };
  let stopped = false;
  const launch = () => {
    if (stopped || o.signal?.aborted || ready.length === 0) return;
    const { rows, input } = ready.shift()!;
    const vectors = input.then((x) => phi.run(bb.manifest.input.name, x, shape(rows.length), output, recycle));
    queue(rows, vectors);
    vectors.then(launch, () => {});
    try {
      refill();
    } catch (err) {
      queue([], Promise.reject(err));
    }
  };
  let done: { rows: ImageRow[]; vectors: Float32Array }[] = [];
  const flush = () => {
    const rows = done.flatMap((d) => d.rows);
    const vectors = new Float32Array(done.reduce((n, d) => n + d.vectors.length, 0));
    let at = 0;
    for (const d of done) {
      vectors.set(d.vectors, at);
      at += d.vectors.length;
    }
    done = [];
    sink(rows, vectors);
    meter.tick(rows.length);
  };
  let onnxSeconds = 0;
  try {
    refill();
    for (let k = 0; k < 2 * phi.size; k++) launch();
    while (running.length > 0) {
      throwIfAborted(o.signal, 'the extraction');
      const { rows, vectors } = running.shift()!;
      const t = performance.now();
      done.push({ rows, vectors: await vectors });
      onnxSeconds += (performance.now() - t) / 1000;
      if (done.length * batch >= chunk || running.length === 0) flush();
    }
  } finally {
    stopped = true;
    phi.release();
  }
  return onnxSeconds;
}

/**
 * Φ of one picture given as file bytes (one the user drops on "try an image"): decoded and
 * resized to the backbone's input, normalised as its manifest says, with no augmentation.
 */
export async function embedImage(db: Db, backbone: string, bytes: Uint8Array, threads = 1): Promise<Float32Array> {
  const bb = getBackbone(db, backbone);
  const format = sniff(bytes);
  if (!format) throw new EmbaugError('E_ARG', 'That file is not an image (no JPEG, PNG, WebP, GIF, TIFF or BMP signature): choose a picture.');
  const pre = preprocessOf(bb.manifest);
  const pixels = await decodeToSize([{ bytes, format, width: 0, height: 0 }], pre.width, pre.height, 1);
  const input = await augmentAsync({
    pixels, n: 1, inH: pre.height, inW: pre.width, ops: nativeOps(parseAug('identity')), scale: pre.scale, mean: pre.mean, std: pre.std,
    bgr: pre.bgr, nhwc: pre.nhwc, seed: 0, indices: BigInt64Array.from([0n]), threads: 1,
  });
  const sess = await session(bb.path, threads);
  const shape = pre.nhwc ? [1, pre.height, pre.width, 3] : [1, 3, pre.height, pre.width];
  const out = await sess.run({ [bb.manifest.input.name]: new ort.Tensor('float32', input, shape) });
  return Float32Array.from((out[bb.manifest.embedding.output] as ort.Tensor).data as Float32Array);
}

/**
 * Top-1 accuracy of the backbone's own logits on a selection (its base task's test split).
 * The logits are cached like embeddings, so measuring a base model again costs no Φ pass.
 */
export async function logitsAccuracy(db: Db, req: ExtractRequest): Promise<{ accuracy: number; n: number }> {
  const { logits } = getBackbone(db, req.backbone).manifest;
  if (!logits) throw new EmbaugError('E_MODEL', `Backbone ${req.backbone} has no logits output in its description: add one (its output name and classes) to measure the base model.`);
  const r = await extract(db, { ...req, output: logits.output, dtype: 'float32' });
  const scores = loadVectors(db, r.setId, r.images.map((i) => i.sha256));
  const c = scores.length / Math.max(1, r.images.length);
  let correct = 0;
  r.images.forEach((img, i) => {
    let arg = 0;
    for (let k = 1; k < c; k++) if (scores[i * c + k] > scores[i * c + arg]) arg = k;
    correct += Number(arg === img.label);
  });
  return { accuracy: correct / r.images.length, n: r.images.length };
}

export interface Embeddings {
  x: Float32Array;
  images: ImageRow[];
  setId: number;
  dim: number;
}

/**
 * The views one run's heads share, loaded once: a reproduction's heads of one base all read
 * the target split's identity and flip views, and selecting and loading 25,000 vectors from
 * SQLite costs about 0.6 s of the main thread each time, time the concurrent heads wait on.
 * Holders must treat the vectors as read-only. Views of a given image list (a random
 * augmentation's per-epoch draws) are used once and not kept.
 */
export class ViewMemo {
  #views = new Map<string, Promise<Embeddings>>();

  get(db: Db, req: ExtractRequest): Promise<Embeddings> {
    if (req.images) return embeddingsFor(db, req);
    const spec = parseAug(req.aug ?? 'identity');
    const key = JSON.stringify([
      req.dataset, req.backbone, spec.key, spec.deterministic ? 0 : req.seed ?? 0, req.dtype ?? 'float32',
      req.split, req.classes, req.limit, req.balanced, req.perClass, req.draw, req.holdOut, req.fold,
    ]);
    let view = this.#views.get(key);
    if (!view) {
      view = embeddingsFor(db, req);
      this.#views.set(key, view);
      // A failed load (cancelled, say) is not remembered: the next caller tries afresh.
      view.catch(() => this.#views.delete(key));
    }
    return view;
  }

  /** Forgets every view, for a caller done with them that holds the memo longer. */
  clear(): void {
    this.#views.clear();
  }
}

/** Extracts what is missing, then returns the vectors of the selection in order. */
export async function embeddingsFor(db: Db, req: ExtractRequest): Promise<Embeddings> {
  const r = await extract(db, req);
  const bb = getBackbone(db, req.backbone);
  return { x: loadVectors(db, r.setId, r.images.map((i) => i.sha256)), images: r.images, setId: r.setId, dim: bb.dim };
}
