/**
 * One part of an extraction for a job array: Φ(g(x)) of the images whose hash falls in this
 * shard, for each augmentation, into `<out>/extract-<k>-of-<n>.parquet`. The database is only
 * read (many tasks on shared storage must not write one SQLite file); images whose vectors it
 * already holds are skipped, as a local extraction skips them.
 */
import { existsSync } from 'node:fs';

import type { Db } from '../db.js';
import { type ExtractRequest, type SetRows, cachedShasOf, encode, phiPass, planExtraction, writeEmbeddingsParquet } from '../embeddings/index.js';
import { type OnProgress } from '../jobs/index.js';
import { outputFolder } from '../paths.js';
import { type Shard, progressFile, shardFile, shardOfSha } from './shard.js';

export interface ShardExtractRequest extends Omit<ExtractRequest, 'aug' | 'images' | 'record' | 'parentRunId'> {
  augs: string[];
  shard: Shard;
  out: string;
}

export interface ShardExtractResult {
  path: string;
  /** The file was there already (a re-run task): nothing was computed. */
  skipped: boolean;
  images: number;
  extracted: number;
  seconds: number;
}

export async function extractShard(db: Db, req: ShardExtractRequest): Promise<ShardExtractResult> {
  // Every argument is checked before any work, for every augmentation, and then the folder.
  const plans = req.augs.map((aug) => planExtraction(db, { ...req, aug }));
  const path = shardFile(outputFolder(req.out), 'extract', req.shard);
  if (existsSync(path)) return { path, skipped: true, images: 0, extracted: 0, seconds: 0 };
  const t0 = performance.now();
  const work = plans.map((p) => {
    const have = cachedShasOf(db, p.key);
    const mine = [...new Map(p.images.filter((r) => shardOfSha(r.sha256, req.shard.n) === req.shard.k).map((r) => [r.sha256, r])).values()];
    return { p, images: mine.length, todo: mine.filter((r) => !have.has(r.sha256)) };
  });
  // The progress file shows the whole part, all augmentations together.
  const total = work.reduce((a, w) => a + w.todo.length, 0);
  const toFile = progressFile(req.out, 'extract', req.shard);
  const sets: SetRows[] = [];
  let offset = 0;
  for (const { p, todo } of work) {
    const onProgress: OnProgress = (x) => {
      req.onProgress?.(x);
      const done = offset + x.done;
      toFile({ ...x, done, total, etaSeconds: x.rate > 0 ? (total - done) / x.rate : null });
    };
    const width = p.dtype === 'float32' ? 4 : 2;
    const bytes = Buffer.alloc(todo.length * p.bb.dim * width);
    let at = 0;
    await phiPass(db, p.bb, todo, { aug: p.spec.key, seed: p.seed, batch: p.batch, threads: p.threads, signal: req.signal, onProgress }, (rows, vectors) => {
      for (let i = 0; i < rows.length; i++, at++) encode(vectors.subarray(i * p.bb.dim, (i + 1) * p.bb.dim), p.dtype).copy(bytes, at * p.bb.dim * width);
    });
    offset += todo.length;
    const vectors = p.dtype === 'float32' ? new Float32Array(bytes.buffer, bytes.byteOffset, todo.length * p.bb.dim) : new Uint16Array(bytes.buffer, bytes.byteOffset, todo.length * p.bb.dim);
    sets.push({ ...p.key, backboneName: p.bb.name, dim: p.bb.dim, shas: todo.map((r) => r.sha256), vectors });
  }
  const images = Math.max(0, ...work.map((w) => w.images));
  writeEmbeddingsParquet(path, sets, { shard: { ...req.shard, command: 'extract' } });
  return { path, skipped: false, images, extracted: sets.reduce((a, s) => a + s.shas.length, 0), seconds: (performance.now() - t0) / 1000 };
}
