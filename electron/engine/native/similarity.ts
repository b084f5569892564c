/** Exact nearest neighbours by cosine, through the CPU GEMM. */
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
