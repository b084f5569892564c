/**
 * Duplicates and leaks. Exact duplicates: images whose decoded pixels are identical (their
 * bytes differ, or the import would have kept one). Near duplicates need two witnesses that
 * fail in different ways: each image's nearest neighbours by its centred, flip-invariant
 * embedding are the candidates (distinct images of a dense class are close in a small
 * backbone's embedding space), and a candidate is kept only when the two images' perceptual
 * hashes (each low DCT frequency against their median: robust to re-encoding, small crops and
 * resizes; a mirror image compared as such) nearly agree (unrelated pictures agree on about
 * half the bits). A group that spans train and test is a leak.
 */
import { createHash } from 'node:crypto';

import { decodeToSize, getDataset, readBlobs, selectImages, type ImageRow } from '../datasets/index.js';
import type { Db } from '../db.js';
import { embeddingsFor } from '../embeddings/index.js';
import { ProgressMeter, throwIfAborted, type OnProgress } from '../jobs/index.js';
import { nearestRows } from '../native/index.js';

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
  const bySize = new Map<string, number[]>();
  rows.forEach((r, i) => bySize.set(`${r.width}x${r.height}`, [...(bySize.get(`${r.width}x${r.height}`) ?? []), i]));
  for (const [size, idx] of bySize) {
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

const HASH_SIZE = 32, LOW = 8;
// cos((2x + 1) u π / 64) for the 8 lowest frequencies u of a 32-sample DCT-II.
const COS = Float64Array.from({ length: LOW * HASH_SIZE }, (_, i) => Math.cos(((2 * (i % HASH_SIZE) + 1) * Math.floor(i / HASH_SIZE) * Math.PI) / (2 * HASH_SIZE)));

/**
 * Two 64-bit perceptual hashes per image, as uint32 pairs: the 8×8 lowest DCT frequencies of
 * its 32×32 grey version against their median, and the same for its mirror image (a
 * horizontal flip negates the odd horizontal frequencies).
 */
async function perceptualHashes(db: Db, rows: ImageRow[], signal?: AbortSignal): Promise<Uint32Array> {
  const out = new Uint32Array(rows.length * 4);
  const grey = new Float64Array(HASH_SIZE * HASH_SIZE), t = new Float64Array(HASH_SIZE * LOW), c = new Float64Array(LOW * LOW);
  const bits = (sign: (v: number) => number, at: number) => {
    const ac = Array.from(c.subarray(1), (v, i) => v * sign(i + 1)).sort((p, q) => p - q);
    const med = ac[31];
    for (let i = 1; i < LOW * LOW; i++) if (c[i] * sign(i) > med) out[at + (i >> 5)] |= 1 << (i & 31);
  };
  for (let s = 0; s < rows.length; s += 1024) {
    throwIfAborted(signal, 'the duplicate search');
    const part = rows.slice(s, s + 1024);
    const px = await decodeToSize(readBlobs(db, part.map((r) => r.sha256)), HASH_SIZE, HASH_SIZE);
    for (let k = 0; k < part.length; k++) {
      const o = k * HASH_SIZE * HASH_SIZE * 3;
      for (let p = 0; p < HASH_SIZE * HASH_SIZE; p++) grey[p] = 0.299 * px[o + 3 * p] + 0.587 * px[o + 3 * p + 1] + 0.114 * px[o + 3 * p + 2];
      for (let y = 0; y < HASH_SIZE; y++)
        for (let v = 0; v < LOW; v++) {
          let acc = 0;
          for (let xx = 0; xx < HASH_SIZE; xx++) acc += grey[y * HASH_SIZE + xx] * COS[v * HASH_SIZE + xx];
          t[y * LOW + v] = acc;
        }
      for (let u = 0; u < LOW; u++)
        for (let v = 0; v < LOW; v++) {
          let acc = 0;
          for (let y = 0; y < HASH_SIZE; y++) acc += COS[u * HASH_SIZE + y] * t[y * LOW + v];
          c[u * LOW + v] = acc;
        }
      bits(() => 1, (s + k) * 4);
      bits((i) => (i & 1 ? -1 : 1), (s + k) * 4 + 2);
    }
  }
  return out;
}

const popcount = (v: number) => {
  v -= (v >>> 1) & 0x55555555;
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
};

/** Bits in which two images' hashes differ, the mirror image of b compared too. */
function hashDistance(h: Uint32Array, a: number, b: number): number {
  const same = popcount(h[4 * a] ^ h[4 * b]) + popcount(h[4 * a + 1] ^ h[4 * b + 1]);
  const mirror = popcount(h[4 * a] ^ h[4 * b + 2]) + popcount(h[4 * a + 1] ^ h[4 * b + 3]);
  return Math.min(same, mirror);
}

function groups(kind: DuplicateGroup['kind'], rows: ImageRow[], uf: UnionFind, minSim: Map<number, number>): DuplicateGroup[] {
  const members = new Map<number, number[]>();
  rows.forEach((_, i) => {
    const r = uf.find(i);
    members.set(r, [...(members.get(r) ?? []), i]);
  });
  return [...members.entries()]
    .filter(([, m]) => m.length > 1)
    .map(([root, m]) => ({ kind, images: m.map((i) => rows[i]), similarity: minSim.get(root) ?? 1, leak: new Set(m.map((i) => rows[i].split)).size > 1 }))
    .sort((a, b) => b.images.length - a.images.length || b.similarity - a.similarity);
}

/** Neighbours per image that are candidates; hash bits (of 64) two near duplicates may differ in; the cosine floor. */
export const DEFAULT_NEIGHBOURS = 4;
export const DEFAULT_HASH_BITS = 10;
export const DEFAULT_THRESHOLD = 0.5;

export async function findDuplicates(db: Db, req: CurationRequest & { threshold?: number; neighbours?: number; maxHashBits?: number }): Promise<DuplicateReport> {
  const threshold = req.threshold ?? DEFAULT_THRESHOLD;
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
  // Candidates: each image's K nearest neighbours by cosine of the centred embeddings.
  const K = req.neighbours ?? DEFAULT_NEIGHBOURS;
  const nn = await nearestRows(x, d, K);
  const ph = await perceptualHashes(db, rows, req.signal);
  const maxBits = req.maxHashBits ?? DEFAULT_HASH_BITS;
  const uf = new UnionFind(rows.length);
  const edgeMin = new Map<string, number>();
  for (let a = 0; a < rows.length; a++)
    for (let t = 0; t < K; t++) {
      const b = nn.idx[a * K + t], cos = nn.sim[a * K + t];
      if (b < 0 || hashes[a] === hashes[b]) continue; // none, or already an exact duplicate
      if (cos < threshold || hashDistance(ph, a, b) > maxBits) continue;
      uf.union(a, b);
      const key = a < b ? `${a},${b}` : `${b},${a}`;
      edgeMin.set(key, Math.min(edgeMin.get(key) ?? 1, cos));
    }
  const minSim = new Map<number, number>();
  for (const [key, s] of edgeMin) {
    const r = uf.find(Number(key.split(',')[0]));
    minSim.set(r, Math.min(minSim.get(r) ?? 1, s));
  }
  const near = groups('near', rows, uf, minSim);
  return { exact, near, leaks: [...exact, ...near].filter((g) => g.leak).length, threshold };
}
