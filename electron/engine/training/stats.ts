/** Small numeric helpers over row-major [n, d] Float32Arrays. */

export function mse(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const e = a[i] - b[i];
    s += e * e;
  }
  return s / a.length;
}

/** Mean over rows of cos(a_i, b_i). */
export function meanCosine(a: Float32Array, b: Float32Array, d: number): number {
  const n = a.length / d;
  let total = 0;
  for (let i = 0; i < n; i++) {
    let ab = 0, aa = 0, bb = 0;
    for (let k = 0; k < d; k++) {
      const x = a[i * d + k], y = b[i * d + k];
      ab += x * y;
      aa += x * x;
      bb += y * y;
    }
    total += ab / Math.sqrt(aa * bb || 1);
  }
  return total / n;
}

/** Mean over rows of ||a_i - b_i|| / ||b_i||. */
export function meanRelativeError(a: Float32Array, b: Float32Array, d: number): number {
  const n = a.length / d;
  let total = 0;
  for (let i = 0; i < n; i++) {
    let num = 0, den = 0;
    for (let k = 0; k < d; k++) {
      const e = a[i * d + k] - b[i * d + k];
      num += e * e;
      den += b[i * d + k] ** 2;
    }
    total += Math.sqrt(num / (den || 1));
  }
  return total / n;
}

export function accuracy(logits: Float32Array, labels: Int32Array, classes: number): number {
  let ok = 0;
  for (let i = 0; i < labels.length; i++) {
    let arg = 0;
    for (let c = 1; c < classes; c++) if (logits[i * classes + c] > logits[i * classes + arg]) arg = c;
    ok += Number(arg === labels[i]);
  }
  return ok / labels.length;
}

export function meanStd(xs: number[]): { mean: number; std: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  // Sample standard deviation (n - 1): the spread of a handful of seeds.
  const std = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, std };
}

/** Rows of x selected by index. */
export function rows(x: Float32Array, d: number, idx: number[]): Float32Array {
  const out = new Float32Array(idx.length * d);
  idx.forEach((r, i) => out.set(x.subarray(r * d, (r + 1) * d), i * d));
  return out;
}

export function stack(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

// In the addon since it is a stochastic Ω fit's main cost besides the fit itself.
export { meanCovariance } from '../native/index.js';
