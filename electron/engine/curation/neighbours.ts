/**
 * An image's nearest images of given classes, by cosine on the cached identity embeddings:
 * what the label-error review shows beside a suspect image, so the reviewer sees what the
 * given class and the suggested class look like up close.
 */
import { getDataset, selectImages, type ImageRow } from '../datasets/index.js';
import type { Db } from '../db.js';
import { findSet, loadVectors, planExtraction } from '../embeddings/index.js';
import { EmbaugError } from '../errors.js';

export interface ClassNeighbours {
  label: number;
  images: (ImageRow & { similarity: number })[];
}

export function classNeighbours(db: Db, r: { dataset: number | string; backbone: string; idx: number; labels: number[]; k?: number }): ClassNeighbours[] {
  const ds = getDataset(db, r.dataset);
  const k = r.k ?? 6;
  const rows = selectImages(db, ds.id);
  const query = rows.find((x) => x.idx === r.idx);
  if (!query) throw new EmbaugError('E_NOT_FOUND', `Data set ${ds.name} has no image ${r.idx} (or it is excluded).`);
  const plan = planExtraction(db, { dataset: ds.id, backbone: r.backbone, aug: 'identity', images: rows });
  const set = findSet(db, plan.key);
  const cached = new Set(set ? (db.prepare('SELECT image_sha FROM embeddings WHERE set_id = ?').pluck().all(set.id) as string[]) : []);
  if (!set || !cached.has(query.sha256))
    throw new EmbaugError('E_NOT_FOUND', `Image ${r.idx} has no cached embedding for ${plan.bb.name}: run "Find label errors" (or embaug extract) on this data set first.`);
  const pool = rows.filter((x) => x.idx !== query.idx && r.labels.includes(x.label) && cached.has(x.sha256));
  const x = loadVectors(db, set.id, [query.sha256, ...pool.map((p) => p.sha256)]);
  const d = plan.bb.dim;
  const norm = (i: number) => Math.sqrt(x.subarray(i * d, (i + 1) * d).reduce((a, v) => a + v * v, 0)) || 1;
  const q0 = norm(0);
  const sims = pool.map((_, j) => {
    let dot = 0;
    for (let c = 0; c < d; c++) dot += x[c] * x[(j + 1) * d + c];
    return dot / (q0 * norm(j + 1));
  });
  return r.labels.map((label) => ({
    label,
    images: pool
      .map((p, j) => ({ ...p, similarity: sims[j] }))
      .filter((p) => p.label === label)
      .sort((a, b) => b.similarity - a.similarity)
      .slice(0, k),
  }));
}
