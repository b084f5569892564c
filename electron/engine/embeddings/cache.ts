/**
 * The embedding cache: one set per (backbone, output, augmentation, preprocessing, seed, dtype),
 * one row per image hash. The output is the backbone's embedding, or its base model's logits.
 * Reads assemble a dense Float32Array in the order asked for.
 */
import { stmt, type Db } from '../db.js';
import { EmbaugError } from '../errors.js';

export type Dtype = 'float32' | 'float16';

export interface SetKey {
  backboneSha: string;
  /** The ONNX output the vectors are: the manifest's embedding output, or its logits output. */
  output: string;
  augKey: string;
  preprocessKey: string;
  seed: number;
  dtype: Dtype;
}

export interface EmbeddingSet extends SetKey {
  id: number;
  dim: number;
  count: number;
}

const KEY_MATCH = 'backbone_sha = ? AND output = ? AND aug_key = ? AND preprocess_key = ? AND seed = ? AND dtype = ?';
const keyArgs = (k: SetKey) => [k.backboneSha, k.output, k.augKey, k.preprocessKey, k.seed, k.dtype];

export function getOrCreateSet(db: Db, k: SetKey, dim: number): number {
  const q = stmt(db, `SELECT id, dim FROM embedding_sets WHERE ${KEY_MATCH}`);
  const row = q.get(...keyArgs(k)) as { id: number; dim: number } | undefined;
  if (row) {
    if (row.dim !== dim) throw new EmbaugError('E_DB', `embedding set ${row.id} holds ${row.dim}-d vectors, the backbone gives ${dim}`);
    return row.id;
  }
  const info = db
    .prepare('INSERT INTO embedding_sets (backbone_sha, output, aug_key, preprocess_key, seed, dtype, dim, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
    .run(...keyArgs(k), dim, new Date().toISOString());
  return Number(info.lastInsertRowid);
}

export function findSet(db: Db, k: SetKey): EmbeddingSet | null {
  const r = db
    .prepare(`SELECT s.id, s.dim, (SELECT count(*) FROM embeddings e WHERE e.set_id = s.id) AS count FROM embedding_sets s
              WHERE ${KEY_MATCH}`)
    .get(...keyArgs(k)) as { id: number; dim: number; count: number } | undefined;
  return r ? { ...k, ...r } : null;
}

export function cachedShas(db: Db, setId: number): Set<string> {
  return new Set((db.prepare('SELECT image_sha FROM embeddings WHERE set_id = ?').pluck().all(setId) as string[]));
}

/** The images a set holds, by its key, without creating it (a read-only database will do). */
export function cachedShasOf(db: Db, k: SetKey): Set<string> {
  const id = db
    .prepare(`SELECT id FROM embedding_sets WHERE ${KEY_MATCH}`)
    .pluck()
    .get(...keyArgs(k)) as number | undefined;
  return id === undefined ? new Set() : cachedShas(db, id);
}

// IEEE half conversions: float16 halves the cache at ~1e-3 relative precision.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
export function toHalf(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  let exp = ((b >>> 23) & 0xff) - 127 + 15;
  let mant = b & 0x7fffff;
  if (exp >= 31) return sign | 0x7c00 | (((b >>> 23) & 0xff) === 0xff && mant ? 0x200 : 0);
  if (exp <= 0) {
    if (exp < -10) return sign;
    mant = (mant | 0x800000) >> (1 - exp);
    return sign | ((mant + 0x1000) >> 13);
  }
  const h = sign | (exp << 10) | (mant >> 13);
  return (mant & 0x1000) !== 0 ? h + 1 : h; // round half up on the dropped bits
}
export function fromHalf(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

export function encode(vec: Float32Array, dtype: Dtype): Buffer {
  if (dtype === 'float32') return Buffer.from(vec.buffer, vec.byteOffset, vec.byteLength);
  const h = new Uint16Array(vec.length);
  for (let i = 0; i < vec.length; i++) h[i] = toHalf(vec[i]);
  return Buffer.from(h.buffer);
}

export function writeVectors(db: Db, setId: number, shas: string[], flat: Float32Array, dim: number, dtype: Dtype): void {
  const ins = stmt(db, 'INSERT OR IGNORE INTO embeddings (set_id, image_sha, vec) VALUES (?, ?, ?)');
  db.transaction(() => {
    shas.forEach((sha, i) => ins.run(setId, sha, encode(flat.subarray(i * dim, (i + 1) * dim), dtype)));
  })();
}

/** Dense [n, dim] vectors for the given image hashes, in that order; all must be cached. */
export function loadVectors(db: Db, setId: number, shas: string[]): Float32Array {
  const set = stmt(db, 'SELECT dim, dtype FROM embedding_sets WHERE id = ?').get(setId) as { dim: number; dtype: Dtype } | undefined;
  if (!set) throw new EmbaugError('E_NOT_FOUND', `There is no embedding set ${setId}.`);
  const pos = new Map<string, number>();
  shas.forEach((s, i) => pos.set(s, i));
  const out = new Float32Array(shas.length * set.dim);
  const filled = new Uint8Array(shas.length);
  for (const [sha, vec] of db.prepare('SELECT image_sha, vec FROM embeddings WHERE set_id = ?').raw().iterate(setId) as Iterable<[string, Buffer]>) {
    const i = pos.get(sha);
    if (i === undefined) continue;
    if (set.dtype === 'float32') out.set(new Float32Array(vec.buffer, vec.byteOffset, set.dim), i * set.dim);
    else {
      const h = new Uint16Array(vec.buffer, vec.byteOffset, set.dim);
      for (let k = 0; k < set.dim; k++) out[i * set.dim + k] = fromHalf(h[k]);
    }
    filled[i] = 1;
  }
  const missing = filled.indexOf(0);
  if (missing >= 0)
    throw new EmbaugError('E_NOT_FOUND', `Embedding set ${setId} has no vector for image ${shas[missing].slice(0, 12)}… (${shas.length - filled.reduce((a, b) => a + b, 0)} missing): extract first.`);
  return out;
}

export interface CacheStats {
  sets: { id: number; backbone: string; output: string; augKey: string; seed: number; dtype: Dtype; dim: number; count: number; bytes: number }[];
  totalVectors: number;
  totalBytes: number;
}

export function cacheStats(db: Db): CacheStats {
  const sets = db
    .prepare(`SELECT s.id, coalesce(b.name, s.backbone_sha) AS backbone, s.output, s.aug_key AS augKey, s.seed, s.dtype, s.dim,
                     count(e.image_sha) AS count, coalesce(sum(length(e.vec)), 0) AS bytes
              FROM embedding_sets s LEFT JOIN embeddings e ON e.set_id = s.id LEFT JOIN backbones b ON b.sha256 = s.backbone_sha
              GROUP BY s.id ORDER BY s.id`)
    .all() as CacheStats['sets'];
  return { sets, totalVectors: sets.reduce((a, s) => a + s.count, 0), totalBytes: sets.reduce((a, s) => a + s.bytes, 0) };
}
