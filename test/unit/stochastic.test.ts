/**
 * The stochastic Ω forms on synthetic Gaussian cases with known answers: each form's samples
 * have the measured mean and covariance; draws are fresh per epoch and the same per seed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { KNN_K, NOISE_SCALE, addGaussian, addNeighbourShift, addNoise, energyScore, gaussianOf, mdnLoss, mdnMean, mdnSampler, nearest, sampleGenerator, trainGenerator, trainMdn, type DrawKey } from '../../electron/engine/training/stochastic.js';
import { getThreads, setThreads } from '../../electron/engine/native/index.js';
import { golden, rng } from '../helpers/shared.js';

const d = 4;
// A known covariance Σ = A Aᵀ and mean μ.
const A = [1.0, 0, 0, 0, 0.5, 0.8, 0, 0, -0.3, 0.2, 0.6, 0, 0.1, -0.4, 0.3, 0.4];
const MU = [0.5, -1, 0.25, 2];
const SIGMA = Array.from({ length: d * d }, (_, k) => {
  const [i, j] = [Math.floor(k / d), k % d];
  let s = 0;
  for (let t = 0; t < d; t++) s += A[i * d + t] * A[j * d + t];
  return s;
});

/** n draws of N(μ, Σ) by our own Box–Muller, independent of the code under test. */
function gaussianRows(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const e = Array.from({ length: d }, () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r()));
    for (let a = 0; a < d; a++) out[i * d + a] = MU[a] + A.slice(a * d, a * d + d).reduce((s, v, t) => s + v * e[t], 0);
  }
  return out;
}

function moments(x: Float32Array): { mean: number[]; cov: number[] } {
  const n = x.length / d;
  const mean = Array.from({ length: d }, (_, k) => { let s = 0; for (let i = 0; i < n; i++) s += x[i * d + k]; return s / n; });
  const cov = Array.from({ length: d * d }, (_, k) => {
    const [a, b] = [Math.floor(k / d), k % d];
    let s = 0;
    for (let i = 0; i < n; i++) s += (x[i * d + a] - mean[a]) * (x[i * d + b] - mean[b]);
    return s / (n - 1);
  });
  return { mean, cov };
}

const near = (got: number[], want: number[], tol: number, what: string) =>
  got.forEach((g, i) => assert.ok(Math.abs(g - want[i]) <= tol, `${what}[${i}] = ${g.toFixed(4)}, want ${want[i].toFixed(4)} ± ${tol}`));

const key = (n: number, epoch: number, seed = 1, aug = 'hflip'): DrawKey => ({ seed, epoch, aug, images: Array.from({ length: n }, (_, i) => `img${i}`) });

describe('stochastic Ω forms', () => {
  it('gaussianOf measures the mean and a Cholesky factor of the covariance', () => {
    const g = gaussianOf(gaussianRows(40000, 1), d);
    near([...g.mean], MU, 0.03, 'mean');
    const LLt = Array.from({ length: d * d }, (_, k) => {
      const [i, j] = [Math.floor(k / d), k % d];
      let s = 0;
      for (let t = 0; t < d; t++) s += g.chol[i * d + t] * g.chol[j * d + t];
      return s;
    });
    near(LLt, SIGMA, 0.04, 'L Lᵀ');
    for (let i = 0; i < d; i++) for (let j = i + 1; j < d; j++) assert.equal(g.chol[i * d + j], 0);
  });

  it('shift-gauss and residual-gauss: samples minus their base have the measured mean and covariance', () => {
    // The shift (or residual) of base pairs is N(μ, Σ); its model's draws must be too.
    const shifts = gaussianRows(20000, 2);
    const model = gaussianOf(shifts, d);
    const n = 20000;
    const base = new Float32Array(n * d).map((_, i) => (i % 7) - 3);
    const drawn = addGaussian(base, model, key(n, 0));
    const m = moments(drawn.map((v, i) => v - base[i]));
    near(m.mean, MU, 0.04, 'mean of draws');
    near(m.cov, SIGMA, 0.06, 'covariance of draws');
  });

  it('draws are fresh every epoch, the same again with the same seed, and differ by seed and augmentation', () => {
    const model = gaussianOf(gaussianRows(5000, 3), d);
    const base = new Float32Array(50 * d);
    const e0 = addGaussian(base, model, key(50, 0)), e1 = addGaussian(base, model, key(50, 1));
    assert.notDeepEqual(e0, e1);
    assert.deepEqual(addGaussian(base, model, key(50, 0)), e0);
    assert.notDeepEqual(addGaussian(base, model, key(50, 0, 2)), e0);
    assert.notDeepEqual(addGaussian(base, model, key(50, 0, 1, 'vflip')), e0);
    // Keyed by the image, not by its row: reordering the rows reorders the draws.
    const k = key(50, 0);
    const rev = addGaussian(base, model, { ...k, images: [...k.images].reverse() });
    assert.deepEqual(rev.slice(0, d), e0.slice(49 * d, 50 * d));
  });

  it('knn-shift: draws are the shifts of the k nearest base embeddings, each of them in turn', () => {
    const r = rng(4);
    const m = 500;
    const bankZ = new Float32Array(m * d).map(() => r() * 10);
    const bankShift = new Float32Array(m * d).map(() => r() - 0.5);
    const z = Float32Array.from([5, 5, 5, 5, 1, 9, 2, 8]);
    const nn = nearest(z, bankZ, d, KNN_K);
    // The neighbours against a brute-force search.
    for (let i = 0; i < 2; i++) {
      const dist = Array.from({ length: m }, (_, j) => ({ j, s: Array.from({ length: d }, (_, t) => (z[i * d + t] - bankZ[j * d + t]) ** 2).reduce((a, b) => a + b) }));
      dist.sort((a, b) => a.s - b.s);
      assert.deepEqual([...nn.slice(i * KNN_K, (i + 1) * KNN_K)], dist.slice(0, KNN_K).map((x) => x.j));
    }
    const seen = new Set<number>();
    const acc = new Float64Array(d);
    const E = 4000;
    for (let e = 0; e < E; e++) {
      const v = addNeighbourShift(z, { z: bankZ, shift: bankShift, n: m }, nn, KNN_K, d, key(2, e));
      const shift = Array.from({ length: d }, (_, t) => v[t] - z[t]);
      const j = [...nn.slice(0, KNN_K)].find((c) => shift.every((s, t) => Math.abs(s - bankShift[c * d + t]) < 1e-6));
      assert.ok(j !== undefined, 'the draw is one neighbour\'s shift');
      seen.add(j);
      shift.forEach((s, t) => (acc[t] += s / E));
    }
    assert.equal(seen.size, KNN_K);
    const want = Array.from({ length: d }, (_, t) => [...nn.slice(0, KNN_K)].reduce((s, c) => s + bankShift[c * d + t], 0) / KNN_K);
    near([...acc], want, 0.02, 'mean of knn draws');
  });

  it('noise: zero mean, each dimension scaled by the spread of the reference rows', () => {
    const ref = gaussianRows(3000, 5);
    const n = 20000;
    const z = new Float32Array(n * d);
    const m = moments(addNoise(z, ref, d, key(n, 0)));
    near(m.mean, [0, 0, 0, 0], 0.03, 'mean');
    near([0, 5, 10, 15].map((k) => Math.sqrt(m.cov[k])), [0, 5, 10, 15].map((k) => NOISE_SCALE * Math.sqrt(SIGMA[k])), 0.03, 'std');
    assert.ok(Math.abs(m.cov[1]) < 0.02, 'independent dimensions');
  });

  it('the generative Ω learns a shift distribution: its samples have the measured mean and covariance', async () => {
    // Pairs y = z + δ, δ ~ N(μ, Σ) whatever z is: the conditional distribution is N(z + μ, Σ).
    const n = 6000;
    const r = rng(7);
    const z = new Float32Array(n * d).map(() => r() * 2 - 1);
    const delta = gaussianRows(n, 8);
    const y = z.map((v, i) => v + delta[i]);
    const g = await trainGenerator(z, y, d, { epochs: 40, hidden: 64, noiseDim: 8, seed: 1 });
    const zt = new Float32Array(4000 * d).map(() => r() * 2 - 1);
    const s = sampleGenerator(g, zt, key(4000, 0));
    const m = moments(s.map((v, i) => v - zt[i]));
    near(m.mean, MU, 0.15, 'mean of generated shifts');
    near(m.cov, SIGMA, 0.25, 'covariance of generated shifts');
    // Fresh per epoch, the same per key (to the last bits a GEMM of another batch size may sum differently).
    const diff = (a: Float32Array, b: Float32Array) => Math.max(...a.map((v, i) => Math.abs(v - b[i])));
    assert.ok(diff(sampleGenerator(g, zt.subarray(0, 8 * d), key(8, 1)), s.subarray(0, 8 * d)) > 0.01);
    assert.ok(diff(sampleGenerator(g, zt.subarray(0, 8 * d), key(8, 0)), s.subarray(0, 8 * d)) < 1e-5);
  });

  it('the mixture density network\'s loss: the gradient is the loss\'s, by finite differences', () => {
    const K = 3, n = 4;
    const r = rng(11);
    const out = new Float32Array(n * K * (1 + 2 * d)).map(() => r() - 0.5);
    const u = new Float32Array(n * d).map(() => 2 * r() - 1);
    const { loss, grad } = mdnLoss(out, u, d, K);
    for (const j of [0, 2, 5, K + 3, K + K * d + 1, out.length - 1]) {
      const h = 1e-3;
      const plus = Float32Array.from(out), minus = Float32Array.from(out);
      plus[j] += h;
      minus[j] -= h;
      const numeric = (mdnLoss(plus, u, d, K).loss - mdnLoss(minus, u, d, K).loss) / (2 * h);
      assert.ok(Math.abs(numeric - grad[j]) < 1e-3 * Math.max(1, Math.abs(numeric)), `output ${j}: analytic ${grad[j]}, numeric ${numeric}`);
    }
    assert.ok(Number.isFinite(loss));
  });

  it('the mixture density network: its samples have the measured mean and covariance; a shift with two modes keeps both', async () => {
    const n = 6000;
    const r = rng(9);
    const z = new Float32Array(n * d).map(() => r() * 2 - 1);
    const delta = gaussianRows(n, 10);
    const g = await trainMdn(z, z.map((v, i) => v + delta[i]), d, { epochs: 10, hidden: 64, seed: 1 });
    const zt = new Float32Array(4000 * d).map(() => r() * 2 - 1);
    const s = mdnSampler(g, zt)(key(4000, 0));
    const m = moments(s.map((v, i) => v - zt[i]));
    near(m.mean, MU, 0.1, 'mean of MDN shifts');
    near(m.cov, SIGMA, 0.15, 'covariance of MDN shifts');
    near(moments(mdnMean(g, zt).map((v, i) => v - zt[i])).mean, MU, 0.1, 'conditional mean');
    // Fresh per epoch, the same per key.
    const draw = mdnSampler(g, zt.subarray(0, 8 * d));
    assert.ok(Math.max(...draw(key(8, 1)).map((v, i) => Math.abs(v - s[i]))) > 0.01);
    assert.ok(Math.max(...draw(key(8, 0)).map((v, i) => Math.abs(v - s[i]))) < 1e-5);

    // Dimension 1 shifts by +2 or −2 (a fair coin; its mean 0, where a Gaussian puts most of its
    // mass), dimension 2 by z₀ (a mean that depends on z): both modes are kept, and the mean follows z.
    const y = Float32Array.from(z);
    for (let i = 0; i < n; i++) {
      y[i * d] += 0.1 * (r() - 0.5);
      y[i * d + 1] += r() < 0.5 ? 2 : -2;
      y[i * d + 2] += z[i * d] + 0.1 * (r() - 0.5);
      y[i * d + 3] += 0.1 * (r() - 0.5);
    }
    const b = mdnSampler(await trainMdn(z, y, d, { epochs: 10, hidden: 64, seed: 2 }), zt)(key(4000, 0));
    let nearMode = 0, up = 0, err = 0;
    for (let i = 0; i < 4000; i++) {
      const s1 = b[i * d + 1] - zt[i * d + 1];
      if (Math.abs(Math.abs(s1) - 2) < 0.5) nearMode++;
      if (s1 > 0) up++;
      err += (b[i * d + 2] - zt[i * d + 2] - zt[i * d]) ** 2 / 4000;
    }
    // A Gaussian of the same mean and variance puts 24% of its draws within 0.5 of ±2.
    assert.ok(nearMode > 0.95 * 4000, `${nearMode} of 4000 draws within 0.5 of ±2`);
    assert.ok(Math.abs(up / 4000 - 0.5) < 0.05, `both modes drawn: ${up} of 4000 up`);
    assert.ok(Math.sqrt(err) < 0.15, `the shift of dimension 2 follows z₀: rms error ${Math.sqrt(err).toFixed(3)}`);
  });

  it('both fitted forms and the MDN\'s draws are the same bits whatever the BLAS threads', async () => {
    // Real pairs: rows of 128 values of the golden CIFAR-10 images and of their mirror images,
    // 150 of them, so that each epoch ends on a batch of 22 rows (OpenBLAS's threads once
    // rounded the MDN's 1,285-wide output otherwise than its one thread there).
    const d = 128, n = 150, side = 32;
    const rows = (flip: boolean) =>
      Float32Array.from(golden().images.flatMap((im) => Array.from({ length: side * side * 3 }, (_, q) => {
        const y = Math.floor(q / (side * 3)), x = Math.floor(q / 3) % side, c = q % 3;
        return im.pixels[(y * side + (flip ? side - 1 - x : x)) * 3 + c] / 255;
      }))).subarray(0, n * d);
    const [z, y] = [rows(false), rows(true)];
    const key: DrawKey = { seed: 1, images: Array.from({ length: n }, (_, i) => `img${i}`), epoch: 0, aug: 'hflip' };
    const fit = async (threads: number) => {
      const was = getThreads();
      setThreads(threads);
      try {
        const mdn = await trainMdn(z, y, d, { epochs: 2 });
        const gen = await trainGenerator(z, y, d, { epochs: 2 });
        return [...mdn.params, ...gen.params, mdnSampler(mdn, z)(key), sampleGenerator(gen, z, key)].map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength));
      } finally {
        setThreads(was);
      }
    };
    const one = await fit(1), two = await fit(2);
    one.forEach((b, i) => assert.ok(b.equals(two[i]), `array ${i} differs between one and two BLAS threads`));
  });

  it('the energy score prefers the true distribution to a point at its mean, and a point is its distance', () => {
    const n = 2000;
    const obs = gaussianRows(n, 6);
    const mean = new Float32Array(n * d).map((_, i) => MU[i % d]);
    const M = 8;
    const truth = new Float32Array(M * n * d);
    for (let k = 0; k < M; k++) truth.set(gaussianRows(n, 100 + k), k * n * d);
    const point = energyScore(mean, obs, d, 1);
    const dist = (() => { let s = 0; for (let i = 0; i < n; i++) s += Math.sqrt(Array.from({ length: d }, (_, t) => (mean[i * d + t] - obs[i * d + t]) ** 2).reduce((a, b) => a + b)); return s / n; })();
    assert.ok(Math.abs(point - dist) < 1e-9);
    assert.ok(energyScore(truth, obs, d, M) < 0.8 * point, `${energyScore(truth, obs, d, M)} vs ${point}`);
  });
});
