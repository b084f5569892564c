/** Outliers (far from everything in their class) and a 2-D map of the embeddings (PCA). */
import { UMAP } from 'umap-js';

import { getDataset, type ImageRow, type Selection } from '../datasets/index.js';
import type { Db } from '../db.js';
import { embeddingsFor } from '../embeddings/index.js';
import { indicesBy } from '../grouping.js';
import { ProgressMeter, throwIfAborted } from '../jobs/index.js';
import { meanCovariance } from '../training/stats.js';
import type { CurationRequest } from './duplicates.js';

function unitRows(x: Float32Array, d: number): Float32Array {
  const u = new Float32Array(x.length);
  for (let r = 0; r < x.length / d; r++) {
    let s = 0;
    for (let k = 0; k < d; k++) s += x[r * d + k] ** 2;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let k = 0; k < d; k++) u[r * d + k] = x[r * d + k] * inv;
  }
  return u;
}

export interface Outlier {
  image: ImageRow;
  /** Cosine distance to the mean direction of its class. */
  distance: number;
  /** Standard scores of that distance within the class. */
  z: number;
}

export async function findOutliers(db: Db, req: CurationRequest & { selection?: Selection }): Promise<Outlier[]> {
  const ds = getDataset(db, req.dataset);
  const e = await embeddingsFor(db, { dataset: ds.id, backbone: req.backbone, ...req.selection, aug: 'identity', threads: req.threads, signal: req.signal, onProgress: req.onProgress, record: false });
  const d = e.dim, u = unitRows(e.x, d);
  const byClass = indicesBy(e.images.length, (i) => e.images[i].label);
  const out: Outlier[] = [];
  for (const members of byClass.values()) {
    const centre = new Float32Array(d);
    for (const i of members) for (let k = 0; k < d; k++) centre[k] += u[i * d + k];
    const norm = Math.hypot(...centre) || 1;
    const dist = members.map((i) => {
      let dot = 0;
      for (let k = 0; k < d; k++) dot += u[i * d + k] * centre[k];
      return 1 - dot / norm;
    });
    const mean = dist.reduce((a, b) => a + b, 0) / dist.length;
    const sd = Math.sqrt(dist.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, dist.length - 1)) || 1;
    members.forEach((i, k) => out.push({ image: e.images[i], distance: dist[k], z: (dist[k] - mean) / sd }));
  }
  return out.sort((a, b) => b.z - a.z);
}

/** The top eigenvectors of a symmetric matrix by power iteration with deflation. */
function topEigenvectors(cov: Float64Array, d: number, count: number): Float64Array[] {
  const vecs: Float64Array[] = [];
  const m = Float64Array.from(cov);
  for (let e = 0; e < count; e++) {
    let v = Float64Array.from({ length: d }, (_, i) => Math.sin(i + 1 + e));
    let lambda = 0;
    for (let it = 0; it < 300; it++) {
      const w = new Float64Array(d);
      for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) w[i] += m[i * d + j] * v[j];
      lambda = Math.hypot(...w);
      if (lambda === 0) break;
      for (let i = 0; i < d; i++) w[i] /= lambda;
      v = w;
    }
    vecs.push(v);
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) m[i * d + j] -= lambda * v[i] * v[j];
  }
  return vecs;
}

export interface MapPoint {
  image: ImageRow;
  x: number;
  y: number;
}

/**
 * A 2-D map of the (unit-normalised) embeddings: their first two principal components, or
 * UMAP (umap-js, seeded) for a non-linear view; `explained` is PCA's share of variance.
 */
export async function embeddingMap(
  db: Db,
  req: CurationRequest & { selection?: Selection; method?: 'pca' | 'umap'; seed?: number },
): Promise<{ points: MapPoint[]; explained: [number, number] | null; method: 'pca' | 'umap' }> {
  const ds = getDataset(db, req.dataset);
  const e = await embeddingsFor(db, { dataset: ds.id, backbone: req.backbone, ...req.selection, aug: 'identity', threads: req.threads, signal: req.signal, onProgress: req.onProgress, record: false });
  const d = e.dim, n = e.images.length, u = unitRows(e.x, d);
  if (req.method === 'umap') {
    let s = (req.seed ?? 0) + 1;
    // A seeded generator (mulberry32): the same map for the same data and seed.
    const random = () => {
      s = (s + 0x6d2b79f5) >>> 0;
      let t = Math.imul(s ^ (s >>> 15), s | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const rowsOf = Array.from({ length: n }, (_, i) => Array.from(u.subarray(i * d, (i + 1) * d)));
    const umap = new UMAP({ nComponents: 2, nNeighbors: 15, minDist: 0.1, nEpochs: 200, random });
    const nEpochs = umap.initializeFit(rowsOf);
    const meter = new ProgressMeter('UMAP', nEpochs, 'epochs', req.onProgress);
    for (let ep = 0; ep < nEpochs; ep++) {
      if (ep % 10 === 0) throwIfAborted(req.signal, 'the map');
      umap.step();
      meter.tick();
    }
    const y = umap.getEmbedding();
    return { points: e.images.map((image, i) => ({ image, x: y[i][0], y: y[i][1] })), explained: null, method: 'umap' };
  }
  const { mean, cov } = meanCovariance(u, d, 0);
  const [v1, v2] = topEigenvectors(cov, d, 2);
  let trace = 0;
  for (let k = 0; k < d; k++) trace += cov[k * d + k];
  const points = e.images.map((image, i) => {
    let x = 0, y = 0;
    for (let k = 0; k < d; k++) {
      const c = u[i * d + k] - mean[k];
      x += c * v1[k];
      y += c * v2[k];
    }
    return { image, x, y };
  });
  const variance = (v: Float64Array) => {
    let s = 0;
    for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) s += v[a] * cov[a * d + b] * v[b];
    return s / (trace || 1);
  };
  return { points, explained: [variance(v1), variance(v2)], method: 'pca' };
}
