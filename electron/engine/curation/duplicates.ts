/**
 * Duplicates and leaks. Exact duplicates: images whose decoded pixels are identical (their
 * bytes differ, or the import would have kept one). Near duplicates: candidates come from two
 * witnesses that fail in different ways (each image's nearest by its centred, flip-invariant
 * embedding, and its nearest by a pixel fingerprint, the low DCT frequencies a perceptual hash
 * is made of, mirror images included); a candidate pair is kept when, aligned (crop, shift,
 * mirror), the two images agree in detail. Embedding neighbours alone are not evidence: a small
 * backbone places distinct photographs of a dense class close together, and smooth skies make
 * unrelated pictures' fingerprints alike. A group that spans train and test is a leak.
 */
import { createHash } from 'node:crypto';

import { decodeToSize, getDataset, readBlobs, selectImages, type ImageRow } from '../datasets/index.js';
import type { Db } from '../db.js';
import { embeddingsFor } from '../embeddings/index.js';
import { indicesBy } from '../grouping.js';
import { ProgressMeter, throwIfAborted, type OnProgress } from '../jobs/index.js';
import { nearestRows } from '../native/index.js';
import * as v from '../validate.js';

export interface DuplicateGroup {
  kind: 'exact' | 'near';
  images: ImageRow[];
  /** Smallest similarity on the edges that joined the group (1 for exact). */
  similarity: number;
  leak: boolean;
}

export interface DuplicateReport {
  exact: DuplicateGroup[];
  near: DuplicateGroup[];
  leaks: number;
  threshold: number;
}

export interface CurationRequest {
  dataset: number | string;
  backbone: string;
  threads?: number;
  signal?: AbortSignal;
  onProgress?: OnProgress;
}

class UnionFind {
  parent: Int32Array;
  constructor(n: number) {
    this.parent = Int32Array.from({ length: n }, (_, i) => i);
  }
  find(i: number): number {
    while (this.parent[i] !== i) i = this.parent[i] = this.parent[this.parent[i]];
    return i;
  }
  union(a: number, b: number): void {
    this.parent[this.find(a)] = this.find(b);
  }
}

async function pixelHashes(db: Db, rows: ImageRow[], signal?: AbortSignal, onProgress?: OnProgress): Promise<string[]> {
  const out = new Array<string>(rows.length);
  const meter = new ProgressMeter('hashing pixels', rows.length, 'images', onProgress);
  for (const [size, idx] of indicesBy(rows.length, (i) => `${rows[i].width}x${rows[i].height}`)) {
    const [w, h] = size.split('x').map(Number);
    for (let s = 0; s < idx.length; s += 1024) {
      throwIfAborted(signal, 'the duplicate search');
      const part = idx.slice(s, s + 1024);
      const px = await decodeToSize(readBlobs(db, part.map((i) => rows[i].sha256)), w, h);
      part.forEach((i, k) => (out[i] = createHash('sha1').update(`${size}:`).update(px.subarray(k * w * h * 3, (k + 1) * w * h * 3)).digest('hex')));
      meter.tick(part.length);
    }
  }
  return out;
}

const SIDE = 32, LOW = 8, DCT_DIM = LOW * LOW - 1;
// cos((2x + 1) u π / 64) for the 8 lowest frequencies u of a 32-sample DCT-II.
const COS = Float64Array.from({ length: LOW * SIDE }, (_, i) => Math.cos(((2 * (i % SIDE) + 1) * Math.floor(i / SIDE) * Math.PI) / (2 * SIDE)));

interface Fingerprints {
  /** Each image as 32×32 grey levels. */
  grey: Uint8Array;
  /**
   * Two rows per image: the 8×8 lowest DCT frequencies of its grey version without the mean
   * (the real-valued form of a perceptual hash: blind to re-encoding, brightness and contrast,
   * little moved by a small crop), and the same for its mirror image, where a horizontal flip
   * negates the odd horizontal frequencies. Unit length, so a dot product is a cosine.
   */
  dct: Float32Array;
}

async function fingerprints(db: Db, rows: ImageRow[], signal?: AbortSignal, onProgress?: OnProgress): Promise<Fingerprints> {
  const grey = new Uint8Array(rows.length * SIDE * SIDE), dct = new Float32Array(rows.length * 2 * DCT_DIM);
  const meter = new ProgressMeter('fingerprinting pixels', rows.length, 'images', onProgress);
  const t = new Float64Array(SIDE * LOW);
  for (let s = 0; s < rows.length; s += 1024) {
    throwIfAborted(signal, 'the duplicate search');
    const part = rows.slice(s, s + 1024);
    const px = await decodeToSize(readBlobs(db, part.map((r) => r.sha256)), SIDE, SIDE);
    for (let k = 0; k < part.length; k++) {
      const o = k * SIDE * SIDE * 3, g = (s + k) * SIDE * SIDE;
      for (let p = 0; p < SIDE * SIDE; p++) grey[g + p] = Math.round(0.299 * px[o + 3 * p] + 0.587 * px[o + 3 * p + 1] + 0.114 * px[o + 3 * p + 2]);
      for (let y = 0; y < SIDE; y++)
        for (let v = 0; v < LOW; v++) {
          let acc = 0;
          for (let x = 0; x < SIDE; x++) acc += grey[g + y * SIDE + x] * COS[v * SIDE + x];
          t[y * LOW + v] = acc;
        }
      const at = (s + k) * 2 * DCT_DIM;
      for (let u = 0; u < LOW; u++)
        for (let v = 0; v < LOW; v++) {
          if (u + v === 0) continue;
          let acc = 0;
          for (let y = 0; y < SIDE; y++) acc += COS[u * SIDE + y] * t[y * LOW + v];
          dct[at + u * LOW + v - 1] = acc;
          dct[at + DCT_DIM + u * LOW + v - 1] = v & 1 ? -acc : acc;
        }
      for (const r of [at, at + DCT_DIM]) {
        let n = 0;
        for (let i = 0; i < DCT_DIM; i++) n += dct[r + i] ** 2;
        const inv = n > 0 ? 1 / Math.sqrt(n) : 0;
        for (let i = 0; i < DCT_DIM; i++) dct[r + i] *= inv;
      }
    }
    meter.tick(part.length);
  }
  return { grey, dct };
}

function dot(x: Float32Array, a: number, b: number, d: number): number {
  let s = 0;
  for (let i = 0; i < d; i++) s += x[a * d + i] * x[b * d + i];
  return s;
}

/** One pass of the [1 2 1]/4 binomial filter along both axes, edges clamped. */
function blurInPlace(p: Float32Array, tmp: Float32Array): void {
  const L = SIDE - 1;
  for (let y = 0; y < SIDE; y++) {
    const r = y * SIDE;
    for (let x = 0; x < SIDE; x++) tmp[r + x] = (p[r + (x ? x - 1 : 0)] + 2 * p[r + x] + p[r + (x < L ? x + 1 : L)]) / 4;
  }
  for (let y = 0; y < SIDE; y++) {
    const up = (y ? y - 1 : 0) * SIDE, r = y * SIDE, down = (y < L ? y + 1 : L) * SIDE;
    for (let x = 0; x < SIDE; x++) p[r + x] = (tmp[up + x] + 2 * tmp[r + x] + tmp[down + x]) / 4;
  }
}

type Planes = [smooth: Float32Array, detail: Float32Array];

/**
 * An image's two planes for the comparison: its grey levels lightly smoothed (the layout the
 * alignment is found on), and their detail, the smoothed image minus a much smoother one (a
 * band-pass: what tells two photographs of the same kind of scene apart, where the smooth
 * skies and seas of unrelated pictures make their whole-image correlations high).
 */
function planes(grey: Uint8Array, i: number, tmp: Float32Array): Planes {
  const smooth = Float32Array.from(grey.subarray(i * SIDE * SIDE, (i + 1) * SIDE * SIDE));
  blurInPlace(smooth, tmp);
  const detail = smooth.slice();
  for (let r = 0; r < 3; r++) blurInPlace(detail, tmp);
  for (let p = 0; p < detail.length; p++) detail[p] = smooth[p] - detail[p];
  return [smooth, detail];
}

/** Magnifications tried on either image: none, and what a 1- and a 2-pixel crop of each side does. */
const ZOOMS = [1, SIDE / (SIDE - 2), SIDE / (SIDE - 4)];

/**
 * Bilinear magnification about the centre, mirrored or not, as a gather: for each output
 * pixel its four source pixels and their weights. The same for every image, so made once.
 */
const RESAMPLERS = ZOOMS.map((f) =>
  [false, true].map((mirror) => {
    const at = new Int32Array(4 * SIDE * SIDE), w = new Float32Array(4 * SIDE * SIDE), h = SIDE / 2;
    for (let y = 0; y < SIDE; y++)
      for (let x = 0; x < SIDE; x++) {
        const sy = (y + 0.5 - h) / f + h - 0.5, sx0 = (x + 0.5 - h) / f + h - 0.5, sx = mirror ? SIDE - 1 - sx0 : sx0;
        const x0 = Math.max(0, Math.min(SIDE - 2, Math.floor(sx))), y0 = Math.max(0, Math.min(SIDE - 2, Math.floor(sy)));
        const fx = sx - x0, fy = sy - y0, q = y0 * SIDE + x0, o = 4 * (y * SIDE + x);
        at.set([q, q + 1, q + SIDE, q + SIDE + 1], o);
        w.set([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx], o);
      }
    return { at, w };
  }),
);

function resampled(p: Float32Array, zoom: number, mirror: boolean): Float32Array {
  if (zoom === 0 && !mirror) return p;
  const { at, w } = RESAMPLERS[zoom][mirror ? 1 : 0], out = new Float32Array(SIDE * SIDE);
  for (let i = 0, o = 0; i < out.length; i++, o += 4) out[i] = w[o] * p[at[o]] + w[o + 1] * p[at[o + 1]] + w[o + 2] * p[at[o + 2]] + w[o + 3] * p[at[o + 3]];
  return out;
}

// The central 24×24 window is compared, the second image shifted by up to a pixel each way.
const W0 = 4, W1 = SIDE - 4, SHIFT = 1;

function correlation(a: Float32Array, b: Float32Array, dx: number, dy: number): number {
  let sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
  for (let y = W0; y < W1; y++)
    for (let x = W0, ao = y * SIDE, bo = (y + dy) * SIDE + dx; x < W1; x++) {
      const u = a[ao + x], v = b[bo + x];
      sa += u;
      sb += v;
      saa += u * u;
      sbb += v * v;
      sab += u * v;
    }
  const n = (W1 - W0) ** 2, va = saa - (sa * sa) / n, vb = sbb - (sb * sb) / n;
  return va > 1e-6 && vb > 1e-6 ? (sab - (sa * sb) / n) / Math.sqrt(va * vb) : 0;
}

/** An image's planes and its smoothed plane at every magnification, mirrored or not (made when first asked). */
class Views {
  readonly planes: Planes;
  readonly #smooth: (Float32Array | undefined)[] = [];
  constructor(grey: Uint8Array, i: number, tmp: Float32Array) {
    this.planes = planes(grey, i, tmp);
  }
  smooth(zoom: number, mirror: boolean): Float32Array {
    const k = 2 * zoom + (mirror ? 1 : 0);
    return (this.#smooth[k] ??= resampled(this.planes[0], zoom, mirror));
  }
}

/** Magnification pairs (of a, of b) tried: none, and each magnification on either side. */
const PAIRINGS = [[0, 0], ...ZOOMS.slice(1).flatMap((_, z) => [[z + 1, 0], [0, z + 1]])];

/**
 * How alike two images are in detail once aligned: the crop (either image magnified as by a
 * crop of up to two pixels a side), shift (up to a pixel) and mirroring that best match their
 * smoothed layouts, and at that alignment the correlation of their details. Copies re-encoded,
 * recoloured, cropped a little or flipped score above 0.8; two photographs of ships at sea
 * seldom do. Coarse to fine: every magnification unshifted, then all shifts of the best two.
 */
function detailSimilarity(a: Views, b: Views, mirror: boolean): number {
  const unshifted = PAIRINGS.map(([za, zb]) => ({ za, zb, r: correlation(a.smooth(za, false), b.smooth(zb, mirror), 0, 0) })).sort((p, q) => q.r - p.r);
  let best = unshifted[0], dx = 0, dy = 0;
  for (const c of unshifted.slice(0, 2)) {
    const sa = a.smooth(c.za, false), sb = b.smooth(c.zb, mirror);
    for (let y = -SHIFT; y <= SHIFT; y++)
      for (let x = -SHIFT; x <= SHIFT; x++) {
        const r = x || y ? correlation(sa, sb, x, y) : c.r;
        if (r > best.r) [best, dx, dy] = [{ ...c, r }, x, y];
      }
  }
  return correlation(resampled(a.planes[1], best.za, false), resampled(b.planes[1], best.zb, mirror), dx, dy);
}

function groups(kind: DuplicateGroup['kind'], rows: ImageRow[], uf: UnionFind, minSim: Map<number, number>): DuplicateGroup[] {
  return [...indicesBy(rows.length, (i) => uf.find(i)).entries()]
    .filter(([, m]) => m.length > 1)
    .map(([root, m]) => ({ kind, images: m.map((i) => rows[i]), similarity: minSim.get(root) ?? 1, leak: new Set(m.map((i) => rows[i].split)).size > 1 }))
    .sort((a, b) => b.images.length - a.images.length || b.similarity - a.similarity);
}

/**
 * Candidates per image from each witness, and the detail similarity a pair needs: the highest
 * at which every planted copy (flips, 1-pixel crops, JPEG re-encodes among 11,700 images of
 * training shards the tests do not use) is still found; docs/curation/calibrate-duplicates.mts.
 */
export const DEFAULT_NEIGHBOURS = 5;
export const DEFAULT_THRESHOLD = 0.8;

export async function findDuplicates(db: Db, req: CurationRequest & { threshold?: number; neighbours?: number }): Promise<DuplicateReport> {
  // A cosine similarity: above 1 would find nothing after the whole search.
  const threshold = v.num('threshold (a cosine similarity)', req.threshold ?? DEFAULT_THRESHOLD, -1, 1);
  const K = v.int('neighbours', req.neighbours ?? DEFAULT_NEIGHBOURS, 1, 1000);
  const ds = getDataset(db, req.dataset);
  const rows = selectImages(db, ds.id);
  const hashes = await pixelHashes(db, rows, req.signal, req.onProgress);
  const exactUf = new UnionFind(rows.length);
  const first = new Map<string, number>();
  hashes.forEach((h, i) => (first.has(h) ? exactUf.union(i, first.get(h)!) : first.set(h, i)));
  const exact = groups('exact', rows, exactUf, new Map());
  const common = { dataset: ds.id, backbone: req.backbone, threads: req.threads, signal: req.signal, onProgress: req.onProgress, record: false };
  const z = await embeddingsFor(db, { ...common, aug: 'identity' });
  // Φ(x) + Φ(hflip(x)) is the same for an image and its mirror image: a copy flipped left to
  // right is then as close as an untouched one.
  const zf = await embeddingsFor(db, { ...common, aug: 'hflip' });
  for (let i = 0; i < z.x.length; i++) z.x[i] += zf.x[i];
  const pos = new Map(z.images.map((im, i) => [im.idx, i]));
  const order = rows.map((r) => pos.get(r.idx)!);
  // Centred on the data set's mean: post-ReLU features are all positive, so raw cosines of
  // unrelated images are high too; centred, they spread around zero and copies stand out.
  const d = z.dim;
  const mean = new Float64Array(d);
  for (let i = 0; i < z.images.length; i++) for (let k = 0; k < d; k++) mean[k] += z.x[i * d + k] / z.images.length;
  const x = new Float32Array(rows.length * d);
  order.forEach((p, i) => {
    for (let k = 0; k < d; k++) x[i * d + k] = z.x[p * d + k] - mean[k];
  });
  // Candidates from two witnesses that fail differently: the nearest by embedding (what the
  // picture shows; reaches copies cropped or recoloured beyond the pixel fingerprint) and the
  // nearest by pixel fingerprint, mirror images included (reaches copies in classes so dense
  // that the embedding's nearest are other photographs).
  const fp = await fingerprints(db, rows, req.signal, req.onProgress);
  const byEmbedding = await nearestRows(x, d, K);
  // K + 1 by pixels: an image's own mirror row is often its nearest. Only the unmirrored rows
  // ask (half the search); the mirrored ones are there to be found.
  const byPixels = await nearestRows(fp.dct, DCT_DIM, K + 1, Int32Array.from(rows, (_, a) => 2 * a));
  const candidates = rows.map(() => new Set<number>());
  for (let a = 0; a < rows.length; a++) {
    const add = (b: number) => {
      if (b >= 0 && b !== a && hashes[a] !== hashes[b]) candidates[Math.min(a, b)].add(Math.max(a, b)); // not itself, not an exact duplicate
    };
    for (let t = 0; t < K; t++) add(byEmbedding.idx[a * K + t]);
    for (let t = 0; t <= K; t++) add(byPixels.idx[a * (K + 1) + t] >> 1);
  }
  // The verdict on each candidate: its detail similarity once aligned.
  const meter = new ProgressMeter('comparing candidate pairs', candidates.reduce((n, c) => n + c.size, 0), 'pairs', req.onProgress);
  const uf = new UnionFind(rows.length);
  const edges: [number, number][] = [];
  const tmp = new Float32Array(SIDE * SIDE);
  // Most candidates are of one class, and an import keeps a class's images together: the views
  // of the last 2,048 images seen (at most 32 KB each) serve most pairs.
  const recent = new Map<number, Views>();
  const views = (i: number) => {
    let v = recent.get(i);
    if (v) recent.delete(i);
    else v = new Views(fp.grey, i, tmp);
    recent.set(i, v);
    if (recent.size > 2048) recent.delete(recent.keys().next().value!);
    return v;
  };
  for (let a = 0; a < rows.length; a++) {
    if (a % 256 === 0) throwIfAborted(req.signal, 'the duplicate search');
    if (!candidates[a].size) continue;
    const va = views(a);
    for (const b of candidates[a]) {
      const mirror = dot(fp.dct, 2 * a, 2 * b + 1, DCT_DIM) > dot(fp.dct, 2 * a, 2 * b, DCT_DIM);
      const sim = detailSimilarity(va, views(b), mirror);
      if (sim < threshold) continue;
      uf.union(a, b);
      edges.push([a, sim]);
    }
    meter.tick(candidates[a].size);
  }
  const minSim = new Map<number, number>();
  for (const [a, s] of edges) minSim.set(uf.find(a), Math.min(minSim.get(uf.find(a)) ?? 1, s));
  const near = groups('near', rows, uf, minSim);
  return { exact, near, leaks: [...exact, ...near].filter((g) => g.leak).length, threshold };
}
