/** Row statistics in the addon: the same doubles as the JavaScript loops they replaced, vectorised. */
import * as v from '../validate.js';
import { guard } from './binding.js';

function rowsOf(name: string, x: Float32Array, d: number): number {
  v.typed(name, x, Float32Array);
  v.int('d', d, 1, 1 << 16);
  if (x.length % d !== 0) throw new RangeError(`${name} must hold whole rows of ${d}, got ${x.length} values`);
  return x.length / d;
}

/**
 * Mean and covariance of the rows of x [n, d], in float64; the covariance is full and
 * symmetric, divided by n − ddof (1: the unbiased estimate; 0: the population one). Each sum
 * runs over the rows in order.
 */
export function meanCovariance(x: Float32Array, d: number, ddof: 0 | 1 = 1): { mean: Float64Array; cov: Float64Array } {
  const n = rowsOf('x', x, d);
  if (n - ddof < 1) throw new RangeError(`a covariance needs at least ${ddof + 1} samples, got ${n}`);
  return guard((b) => b.meanCovariance(x, n, d, ddof));
}

/** Rows of t [n, d] less `mean`, solved against the lower-triangular `chol` [d, d] (forward substitution in float64). */
export function whitenRows(t: Float32Array, d: number, mean: Float32Array, chol: Float32Array): Float32Array {
  const n = rowsOf('t', t, d);
  v.typed('mean', mean, Float32Array, d);
  v.typed('chol', chol, Float32Array, d * d);
  return guard((b) => b.whitenRows(t, n, d, mean, chol));
}
