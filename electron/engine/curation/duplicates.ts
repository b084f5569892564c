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
import { cpus } from 'node:os';

import { decodeToSize, getDataset, readBlobs, selectImages, type ImageRow } from '../datasets/index.js';
import type { Db } from '../db.js';
import { embeddingsFor } from '../embeddings/index.js';
import { indicesBy } from '../grouping.js';
import { ProgressMeter, throwIfAborted, type OnProgress } from '../jobs/index.js';
import { detailSimilarity, nearestRows } from '../native/index.js';
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

/**
 * Each query's k nearest other rows of x, a chunk of queries per search, so that the searches
 * (about half of the whole over CIFAR-10's 60,000 images) show their progress and stop when
 * cancelled. Chunks cost the search a few percent (each normalises x again).
 */
async function nearestWithProgress(stage: string, x: Float32Array, d: number, k: number, queries: Int32Array, o: { signal?: AbortSignal; onProgress?: OnProgress }): Promise<Int32Array> {
  const meter = new ProgressMeter(stage, queries.length, 'images', o.onProgress);
  const idx = new Int32Array(queries.length * k);
  for (let s = 0; s < queries.length; s += SEARCH_CHUNK) {
    throwIfAborted(o.signal, 'the duplicate search');
    const part = queries.subarray(s, s + SEARCH_CHUNK);
    idx.set((await nearestRows(x, d, k, part)).idx, s * k);
    meter.tick(part.length);
  }
  return idx;
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
/** Images whose neighbours are searched per call (the search runs 1,024 at a time). */
const SEARCH_CHUNK = 8192;
/** Candidate pairs compared per call: about a second's work, between which progress and cancellation are seen. */
const COMPARE_CHUNK = 32_768;

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
  const search = { signal: req.signal, onProgress: req.onProgress };
  const byEmbedding = await nearestWithProgress('neighbours by embedding', x, d, K, Int32Array.from(rows, (_, a) => a), search);
  // K + 1 by pixels: an image's own mirror row is often its nearest. Only the unmirrored rows
  // ask (half the search); the mirrored ones are there to be found.
  const byPixels = await nearestWithProgress('neighbours by pixels', fp.dct, DCT_DIM, K + 1, Int32Array.from(rows, (_, a) => 2 * a), search);
  const candidates = rows.map(() => new Set<number>());
  for (let a = 0; a < rows.length; a++) {
    const add = (b: number) => {
      if (b >= 0 && b !== a && hashes[a] !== hashes[b]) candidates[Math.min(a, b)].add(Math.max(a, b)); // not itself, not an exact duplicate
    };
    for (let t = 0; t < K; t++) add(byEmbedding[a * K + t]);
    for (let t = 0; t <= K; t++) add(byPixels[a * (K + 1) + t] >> 1);
  }
  // The verdict on each candidate: how alike the two are in detail once aligned (crop, shift,
  // mirroring; native/src/cpu/detail.cpp), in chunks so that progress shows and a cancel stops it.
  const total = candidates.reduce((n, c) => n + c.size, 0);
  const pairs = new Int32Array(2 * total), mirror = new Uint8Array(total);
  let m = 0;
  candidates.forEach((bs, a) => {
    for (const b of bs) {
      pairs[2 * m] = a;
      pairs[2 * m + 1] = b;
      // Mirrored where the fingerprints say b's mirror image is the closer.
      mirror[m++] = Number(dot(fp.dct, 2 * a, 2 * b + 1, DCT_DIM) > dot(fp.dct, 2 * a, 2 * b, DCT_DIM));
    }
  });
  const meter = new ProgressMeter('comparing candidate pairs', total, 'pairs', req.onProgress);
  const threads = req.threads ?? cpus().length;
  const uf = new UnionFind(rows.length);
  const edges: [number, number][] = [];
  for (let s = 0; s < total; s += COMPARE_CHUNK) {
    throwIfAborted(req.signal, 'the duplicate search');
    const e = Math.min(total, s + COMPARE_CHUNK);
    const sims = await detailSimilarity(fp.grey, pairs.subarray(2 * s, 2 * e), mirror.subarray(s, e), threads);
    sims.forEach((sim, k) => {
      if (sim < threshold) return;
      uf.union(pairs[2 * (s + k)], pairs[2 * (s + k) + 1]);
      edges.push([pairs[2 * (s + k)], sim]);
    });
    meter.tick(e - s);
  }
  const minSim = new Map<number, number>();
  for (const [a, s] of edges) minSim.set(uf.find(a), Math.min(minSim.get(uf.find(a)) ?? 1, s));
  const near = groups('near', rows, uf, minSim);
  return { exact, near, leaks: [...exact, ...near].filter((g) => g.leak).length, threshold };
}
