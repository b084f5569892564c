/**
 * Duplicates and leaks. Exact duplicates: images whose decoded pixels are identical (their
 * bytes differ, or the import would have kept one). Near duplicates: cosine similarity of
 * their centred, flip-invariant embeddings at or above a threshold, found by an exact search
 * over all pairs, joined when mutual nearest neighbours. A group
 * that spans train and test is a leak.
 */
import { createHash } from 'node:crypto';

import { decodeToSize, getDataset, readBlobs, selectImages, type ImageRow } from '../datasets/index.js';
import type { Db } from '../db.js';
import { embeddingsFor } from '../embeddings/index.js';
import { ProgressMeter, throwIfAborted, type OnProgress } from '../jobs/index.js';
import { similarPairs } from '../native/index.js';

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

export async function findDuplicates(db: Db, req: CurationRequest & { threshold?: number; neighbours?: number }): Promise<DuplicateReport> {
  const threshold = req.threshold ?? 0.85;
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
  const pairs = await similarPairs(x, z.dim, threshold);
  // Dense regions of a class hold many similar but distinct images; joining every pair above
  // the threshold would chain them into one group. A pair counts when each image is among the
  // other's K nearest neighbours, or when it is all but identical (cosine ≥ 0.99).
  const K = req.neighbours ?? 2;
  const neighbours: { j: number; s: number }[][] = rows.map(() => []);
  for (let k = 0; k < pairs.i.length; k++) {
    neighbours[pairs.i[k]].push({ j: pairs.j[k], s: pairs.s[k] });
    neighbours[pairs.j[k]].push({ j: pairs.i[k], s: pairs.s[k] });
  }
  const top = neighbours.map((l) => new Set(l.sort((p, q) => q.s - p.s).slice(0, K).map((p) => p.j)));
  const uf = new UnionFind(rows.length);
  const edgeMin = new Map<string, number>();
  for (let k = 0; k < pairs.i.length; k++) {
    const a = pairs.i[k], b = pairs.j[k];
    if (hashes[a] === hashes[b]) continue; // already an exact duplicate
    if (!(top[a].has(b) && top[b].has(a)) && pairs.s[k] < 0.99) continue;
    uf.union(a, b);
    edgeMin.set(`${a},${b}`, pairs.s[k]);
  }
  const minSim = new Map<number, number>();
  for (const [key, s] of edgeMin) {
    const r = uf.find(Number(key.split(',')[0]));
    minSim.set(r, Math.min(minSim.get(r) ?? 1, s));
  }
  const near = groups('near', rows, uf, minSim);
  return { exact, near, leaks: [...exact, ...near].filter((g) => g.leak).length, threshold };
}
