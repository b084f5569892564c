/** Exact cosine-similarity joins through the CPU GEMM. */
import * as v from '../validate.js';
import { guardAsync } from './binding.js';

/**
 * All pairs (i < j) of rows whose cosine similarity reaches `threshold`, by an exact blocked
 * search (X·Xᵀ through the CPU GEMM). Rows are normalised here; zero rows match nothing.
 */
export async function similarPairs(x: Float32Array, d: number, threshold: number, maxPairs = 1_000_000): Promise<{ i: Int32Array; j: Int32Array; s: Float32Array }> {
  v.typed('x', x, Float32Array);
  v.int('d', d, 1, 1 << 20);
  if (x.length % d !== 0) throw new RangeError(`x must hold whole rows of ${d}, got ${x.length} values`);
  v.num('threshold', threshold, -1, 1);
  const n = x.length / d;
  const unit = new Float32Array(x.length);
  for (let r = 0; r < n; r++) {
    let s = 0;
    for (let k = 0; k < d; k++) s += x[r * d + k] ** 2;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let k = 0; k < d; k++) unit[r * d + k] = x[r * d + k] * inv;
  }
  const cap = v.int('maxPairs', maxPairs, 1, 1 << 28);
  return guardAsync((b) => b.similarPairs(unit, n, d, threshold, cap));
}
