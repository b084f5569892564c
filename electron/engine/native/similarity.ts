/** Exact nearest neighbours by cosine, through the CPU GEMM; the duplicate search's pair verdicts. */
import * as v from '../validate.js';
import { guardAsync } from './binding.js';

/**
 * For every row, or for the rows listed in `queries`, the `k` other rows of largest cosine
 * similarity, best first, by an exact blocked search (X·Xᵀ through the CPU GEMM): `idx` and
 * `sim` hold k per query (-1 and -Infinity where there are fewer than k others). Rows are
 * normalised here; a zero row is nobody's neighbour in particular (its cosines are 0).
 */
export async function nearestRows(x: Float32Array, d: number, k: number, queries?: Int32Array): Promise<{ idx: Int32Array; sim: Float32Array }> {
  v.typed('x', x, Float32Array);
  v.int('d', d, 1, 1 << 20);
  if (x.length % d !== 0) throw new RangeError(`x must hold whole rows of ${d}, got ${x.length} values`);
  v.int('k', k, 1, 1024);
  const n = x.length / d;
  if (queries !== undefined) {
    v.typed('queries', queries, Int32Array);
    const bad = queries.findIndex((q) => q < 0 || q >= n);
    if (bad >= 0) throw new RangeError(`queries[${bad}] is ${queries[bad]}, but x has ${n} rows (0..${n - 1})`);
  }
  const unit = new Float32Array(x.length);
  for (let r = 0; r < n; r++) {
    let s = 0;
    for (let t = 0; t < d; t++) s += x[r * d + t] ** 2;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let t = 0; t < d; t++) unit[r * d + t] = x[r * d + t] * inv;
  }
  return guardAsync((b) => b.nearestRows(unit, n, d, k, queries));
}

/**
 * The duplicate search's verdict on each candidate pair of 32×32 grey images (`grey`, 1,024
 * bytes an image; `pairs`, two image indices a pair; `mirror`, 1 where b is compared mirrored):
 * how alike they are in detail once aligned by crop, shift and mirroring (the arithmetic and
 * its reasons are in native/src/cpu/detail.cpp), on `threads` threads.
 */
export async function detailSimilarity(grey: Uint8Array, pairs: Int32Array, mirror: Uint8Array, threads: number): Promise<Float64Array> {
  v.typed('grey', grey, Uint8Array);
  if (grey.length % 1024 !== 0) throw new RangeError(`grey must hold whole 32×32 images (1,024 bytes each), got ${grey.length} bytes`);
  v.typed('mirror', mirror, Uint8Array);
  v.typed('pairs', pairs, Int32Array, 2 * mirror.length);
  const n = grey.length / 1024;
  const bad = pairs.findIndex((i) => i < 0 || i >= n);
  if (bad >= 0) throw new RangeError(`pairs[${bad}] is ${pairs[bad]}, but grey holds ${n} images (0..${n - 1})`);
  v.int('threads', threads, 1, 1024);
  return guardAsync((b) => b.detailSimilarity(grey, pairs, mirror, threads));
}
