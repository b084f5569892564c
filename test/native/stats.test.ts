import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { meanCovariance, whitenRows } from '../../electron/engine/native/index.js';
import { gaussianOf } from '../../electron/engine/training/stochastic.js';
import { golden } from '../helpers/shared.js';

// The float64 loops the addon replaced, as they were written in JavaScript: its results must be
// the same bits, or every committed report with a Gaussian or a mixture density network moves.
function referenceMeanCovariance(x: Float32Array, d: number, ddof: number) {
  const n = x.length / d;
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let k = 0; k < d; k++) mean[k] += x[i * d + k];
  for (let k = 0; k < d; k++) mean[k] /= n;
  const cov = new Float64Array(d * d), c = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < d; k++) c[k] = x[i * d + k] - mean[k];
    for (let a = 0; a < d; a++) {
      if (c[a] === 0) continue;
      for (let b = 0; b <= a; b++) cov[a * d + b] += c[a] * c[b];
    }
  }
  for (let a = 0; a < d; a++) for (let b = 0; b <= a; b++) cov[b * d + a] = cov[a * d + b] /= n - ddof;
  return { mean, cov };
}

function referenceWhiten(t: Float32Array, d: number, mean: Float32Array, chol: Float32Array): Float32Array {
  const u = new Float32Array(t.length), row = new Float64Array(d);
  for (let i = 0; i < t.length / d; i++) {
    for (let a = 0; a < d; a++) {
      let s = t[i * d + a] - mean[a];
      for (let b = 0; b < a; b++) s -= chol[a * d + b] * row[b];
      row[a] = s / chol[a * d + a];
    }
    for (let a = 0; a < d; a++) u[i * d + a] = row[a];
  }
  return u;
}

const bytes = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('row statistics in the addon', () => {
  // Real pixels: each golden CIFAR-10 image as rows of 8 neighbouring pixels (24 correlated
  // values), one column held constant so that zero deviations and a singular covariance occur.
  const d = 24, constant = 5;
  const x = Float32Array.from(golden().images.flatMap((im) => Array.from(im.pixels, (p) => p / 255)));
  for (let i = 0; i < x.length / d; i++) x[i * d + constant] = 0.5;

  it('gives the float64 loops bit for bit, and whitened rows of unit covariance', () => {
    assert.ok(x.length / d > 64 * 3, 'rows across several blocks of the solver');
    for (const ddof of [0, 1] as const) {
      const got = meanCovariance(x, d, ddof), want = referenceMeanCovariance(x, d, ddof);
      assert.ok(bytes(got.mean).equals(bytes(want.mean)), `mean, ddof ${ddof}`);
      assert.ok(bytes(got.cov).equals(bytes(want.cov)), `covariance, ddof ${ddof}`);
    }
    const g = gaussianOf(x, d);
    const u = whitenRows(x, d, g.mean, g.chol);
    assert.ok(bytes(u).equals(bytes(referenceWhiten(x, d, g.mean, g.chol))));
    // Unit covariance up to the ridge the constant column's singular covariance needed.
    const { cov } = meanCovariance(u, d);
    for (let a = 0; a < d; a++)
      for (let b = 0; b < d; b++) {
        const want = a === b && a !== constant ? 1 : 0;
        assert.ok(Math.abs(cov[a * d + b] - want) < 1e-2, `whitened covariance [${a}, ${b}] = ${cov[a * d + b]}`);
      }
  });

  it('refuses too few rows, partial rows and factors of the wrong size, naming them', () => {
    assert.throws(() => meanCovariance(x.subarray(0, d), d, 1), /a covariance needs at least 2 samples, got 1/);
    assert.throws(() => meanCovariance(x.subarray(0, d + 1), d), /x must hold whole rows of 24, got 25 values/);
    const g = gaussianOf(x, d);
    assert.throws(() => whitenRows(x, d, g.mean, g.chol.subarray(1)), /chol must have 576 elements, got 575/);
    assert.throws(() => whitenRows(x, d, Array.from(g.mean) as unknown as Float32Array, g.chol), /mean must be a Float32Array/);
  });
});
