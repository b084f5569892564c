/**
 * Stochastic embedding-space augmentations. An Ω trained by MSE regresses to the conditional
 * mean of Φ(g(x)) given Φ(x) and loses the variation a head learns from; these forms keep it,
 * and are sampled afresh for every sample in every epoch:
 *  - residual-gauss: Ω(z) + ε, ε ~ N(0, Σ_r), Σ_r the covariance of Φ(g(x)) − Ω(Φ(x)) measured
 *    on held-out base pairs;
 *  - shift-gauss:    z + δ, δ ~ N(μ_s, Σ_s), the mean and covariance of the augmentation's
 *    shift Φ(g(x)) − Φ(x) on base pairs (no network at all);
 *  - knn-shift:      z + the measured shift of one of the k base embeddings nearest to z, drawn
 *    at random (a non-parametric model of the conditional distribution of the shift given z);
 *  - generator:      Ω(z, ε) = z + f([z, ε]), a conditional generative Ω trained by the energy
 *    score of its samples (a proper scoring rule) instead of MSE;
 *  - mdn:            a mixture density network: the shift's density given z, explicitly, as a
 *    mixture of diagonal Gaussians in the coordinates that whiten the measured shift, trained
 *    by the likelihood of the true pairs;
 *  - noise (an Ω-free baseline): z + s·σ ⊙ ε, σ the per-dimension spread of the head's own
 *    training embeddings.
 * Every draw is keyed by (seed, image hash, epoch, augmentation), as pixel mode's are, so a run
 * is reproducible with its seed and independent of batching and order.
 */
import { hash } from 'node:crypto';

import { EmbaugError } from '../errors.js';
import { MlpModel, getThreads, setThreads, whitenRows } from '../native/index.js';
import { mulberry32 } from '../random.js';
import { meanCovariance } from './stats.js';

export type StochasticForm = 'residual-gauss' | 'shift-gauss' | 'knn-shift' | 'generator' | 'mdn';
/** How Ω is applied in embed mode: its mean (the paper's), or one of the stochastic forms. */
export type OmegaSampling = 'mean' | StochasticForm;
export const OMEGA_SAMPLINGS: readonly OmegaSampling[] = ['mean', 'residual-gauss', 'shift-gauss', 'knn-shift', 'generator', 'mdn'];

export interface Gaussian {
  d: number;
  mean: Float32Array;
  /** Lower-triangular Cholesky factor L of the covariance (Σ = L Lᵀ), row-major d×d. */
  chol: Float32Array;
}

/** What an Ω training measures for the stochastic forms; derived from the same base pairs. */
export interface ShiftModels {
  /** Of Φ(g(x)) − Ω(Φ(x)) on held-out pairs (Ω as chosen, the identity included). */
  residual: Gaussian;
  /** Of Φ(g(x)) − Φ(x) on the training pairs. */
  shift: Gaussian;
  /** Training-pair embeddings and their shifts, for knn-shift. */
  bank: { z: Float32Array; shift: Float32Array; n: number };
  /** The conditional generative Ω, trained on the training pairs. */
  generator: Generator;
  /** The mixture density network, trained on the training pairs. */
  mdn: Mdn;
}

/**
 * The shift models as one float32 blob and a JSON layout that names every array by its offset
 * and length in it, to keep with an Ω's run: a head trained later, in another process, draws
 * from the same models, bit for bit, as one trained beside the Ω.
 */
export function packShiftModels(models: ShiftModels): { bytes: Uint8Array; layout: unknown } {
  const parts: Float32Array[] = [];
  let at = 0;
  const walk = (v: unknown): unknown => {
    if (v instanceof Float32Array) {
      parts.push(v);
      at += v.length;
      return { f32: [at - v.length, v.length] };
    }
    if (ArrayBuffer.isView(v)) throw new TypeError(`shift models hold float32 arrays only, found a ${v.constructor.name}`);
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  const layout = walk(models);
  const all = new Float32Array(at);
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  return { bytes: new Uint8Array(all.buffer), layout };
}

export function unpackShiftModels(bytes: Uint8Array, layout: unknown): ShiftModels {
  if (bytes.byteLength % 4) throw new RangeError(`shift models of ${bytes.byteLength} bytes: not whole float32 values`);
  const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') {
      const ref = (v as { f32?: [number, number] }).f32;
      if (ref) {
        if (ref[0] + ref[1] > all.length) throw new RangeError(`shift models: an array at ${ref[0]} of ${ref[1]} values ends past the blob's ${all.length}`);
        return all.slice(ref[0], ref[0] + ref[1]);
      }
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    }
    return v;
  };
  return walk(layout) as ShiftModels;
}

/** Neighbours a knn-shift draw chooses among; fixed in advance. */
export const KNN_K = 10;
/** The noise baseline's scale, in units of each dimension's spread; fixed in advance. */
export const NOISE_SCALE = 0.5;

/** Mean and covariance of the rows of x [n, d], and the covariance's Cholesky factor. */
export function gaussianOf(x: Float32Array, d: number): Gaussian {
  const { mean, cov } = meanCovariance(x, d);
  return { d, mean: Float32Array.from(mean), chol: cholesky(cov, d) };
}

/**
 * The Cholesky factor of a symmetric covariance (lower triangle read). A covariance measured on
 * fewer samples than dimensions is singular: a ridge of 1e-6 of the mean variance, grown
 * tenfold until the factorisation succeeds, keeps it positive definite at no visible cost.
 */
export function cholesky(cov: Float64Array, d: number): Float32Array {
  let trace = 0;
  for (let k = 0; k < d; k++) trace += cov[k * d + k];
  for (let ridge = 0, tries = 0; tries < 12; tries++, ridge = ridge ? ridge * 10 : 1e-6 * (trace / d || 1)) {
    const L = new Float64Array(d * d);
    let ok = true;
    for (let i = 0; i < d && ok; i++) {
      for (let j = 0; j <= i; j++) {
        let s = cov[i * d + j] + (i === j ? ridge : 0);
        for (let k = 0; k < j; k++) s -= L[i * d + k] * L[j * d + k];
        if (i === j) {
          if (!(s > 0)) {
            ok = false;
            break;
          }
          L[i * d + i] = Math.sqrt(s);
        } else L[i * d + j] = s / L[j * d + j];
      }
    }
    if (ok) return Float32Array.from(L);
  }
  throw new RangeError('the covariance is not positive semi-definite (NaN or infinite entries?)');
}

/** A generator seeded by a key: sha256 of the parts, then mulberry32. */
export function keyedRng(...parts: (string | number)[]): () => number {
  // The one-shot hash: the same digest for 0.9 µs against a Hash object's 1.5–1.9, which a
  // generative Ω's fit pays for every row of every batch (its fit 3–12% faster, three
  // interleaved pairs).
  return mulberry32(hash('sha256', parts.join('|'), 'buffer').readUInt32LE(0));
}

/** d standard normal draws (Box–Muller). */
function normals(rand: () => number, d: number, out: Float64Array): void {
  for (let k = 0; k < d; k += 2) {
    const u = 1 - rand(), v = rand();
    const r = Math.sqrt(-2 * Math.log(u));
    out[k] = r * Math.cos(2 * Math.PI * v);
    if (k + 1 < d) out[k + 1] = r * Math.sin(2 * Math.PI * v);
  }
}

export interface DrawKey {
  seed: number;
  epoch: number;
  aug: string;
  /** One per row: the image's sha256. */
  images: string[];
}

/** Rows of `base` plus a draw of N(μ, Σ) each, keyed per image. */
export function addGaussian(base: Float32Array, g: Gaussian, key: DrawKey): Float32Array {
  const n = base.length / g.d;
  const out = new Float32Array(base.length);
  const eps = new Float64Array(g.d);
  for (let i = 0; i < n; i++) {
    normals(keyedRng(key.seed, key.images[i], key.epoch, key.aug, 'gauss'), g.d, eps);
    unwhitenInto(out, base, i, eps, g);
  }
  return out;
}

/** Row i of `out` = row i of `base` + μ + L v: v a whitened draw (or mean) of the Gaussian. */
function unwhitenInto(out: Float32Array, base: Float32Array, i: number, v: Float64Array, g: Gaussian): void {
  const d = g.d;
  for (let a = 0; a < d; a++) {
    let s = g.mean[a];
    for (let b = 0; b <= a; b++) s += g.chol[a * d + b] * v[b];
    out[i * d + a] = base[i * d + a] + s;
  }
}

/**
 * For each row of z, the indices of its k nearest bank rows (Euclidean), by blocked GEMMs on
 * the compute backend: z·b − ½‖b‖² is largest for the nearest b.
 */
export function nearest(z: Float32Array, bank: Float32Array, d: number, k: number): Int32Array {
  const n = z.length / d, m = bank.length / d;
  const kk = Math.min(k, m);
  const best = new Float32Array(n * kk).fill(-Infinity);
  const idx = new Int32Array(n * kk).fill(-1);
  const BLOCK = 4096;
  for (let start = 0; start < m; start += BLOCK) {
    const rows = Math.min(BLOCK, m - start);
    const w = bank.subarray(start * d, (start + rows) * d);
    const b = new Float32Array(rows);
    for (let j = 0; j < rows; j++) {
      let s = 0;
      for (let t = 0; t < d; t++) s += w[j * d + t] ** 2;
      b[j] = -0.5 * s;
    }
    const lin = new MlpModel([d, rows]);
    try {
      lin.setParams([Float32Array.from(w), b]);
      for (let r0 = 0; r0 < n; r0 += 2048) {
        const part = lin.forward(z.subarray(r0 * d, Math.min(n, r0 + 2048) * d));
        const pn = part.length / rows;
        for (let i = 0; i < pn; i++) {
          const o = (r0 + i) * kk;
          for (let j = 0; j < rows; j++) {
            const v = part[i * rows + j];
            if (v <= best[o + kk - 1]) continue;
            let p = kk - 1;
            while (p > 0 && best[o + p - 1] < v) {
              best[o + p] = best[o + p - 1];
              idx[o + p] = idx[o + p - 1];
              p--;
            }
            best[o + p] = v;
            idx[o + p] = start + j;
          }
        }
      }
    } finally {
      lin.dispose();
    }
  }
  return idx;
}

/** z plus the shift of one of each row's k nearest bank rows, chosen per key. */
export function addNeighbourShift(z: Float32Array, bank: ShiftModels['bank'], neighbours: Int32Array, k: number, d: number, key: DrawKey): Float32Array {
  const n = z.length / d;
  const kk = neighbours.length / n;
  const out = new Float32Array(z.length);
  for (let i = 0; i < n; i++) {
    const pick = neighbours[i * kk + Math.min(kk - 1, Math.floor(keyedRng(key.seed, key.images[i], key.epoch, key.aug, 'knn')() * Math.min(k, kk)))];
    for (let t = 0; t < d; t++) out[i * d + t] = z[i * d + t] + bank.shift[pick * d + t];
  }
  return out;
}

/** The noise baseline: z + s·σ ⊙ ε with σ the per-dimension spread of `reference`'s rows. */
export function addNoise(z: Float32Array, reference: Float32Array, d: number, key: DrawKey, scale = NOISE_SCALE): Float32Array {
  const diag: Gaussian = { d, mean: new Float32Array(d), chol: new Float32Array(d * d) };
  for (let k = 0; k < d; k++) diag.chol[k * d + k] = scale * Math.sqrt(variance(reference, d, k));
  return addGaussian(z, diag, key);
}

function variance(x: Float32Array, d: number, k: number): number {
  const n = x.length / d;
  let m = 0, s = 0;
  for (let i = 0; i < n; i++) m += x[i * d + k];
  m /= n;
  for (let i = 0; i < n; i++) s += (x[i * d + k] - m) ** 2;
  return s / Math.max(1, n - 1);
}

/**
 * The energy score of samples against observed rows: mean over rows of
 * E‖Y − y‖ − ½ E‖Y − Y′‖, with Y, Y′ independent draws for that row (a proper scoring rule for
 * a conditional distribution: lower is better; for a point prediction it is ‖ŷ − y‖).
 * `samples` holds m draws per row, as m blocks of n rows.
 */
export function energyScore(samples: Float32Array, observed: Float32Array, d: number, m: number): number {
  const n = observed.length / d;
  const dist = (a: Float32Array, ai: number, b: Float32Array, bi: number) => {
    let s = 0;
    for (let t = 0; t < d; t++) s += (a[ai * d + t] - b[bi * d + t]) ** 2;
    return Math.sqrt(s);
  };
  let total = 0;
  for (let i = 0; i < n; i++) {
    let fit = 0, spread = 0;
    for (let a = 0; a < m; a++) {
      fit += dist(samples, a * n + i, observed, i);
      for (let b = a + 1; b < m; b++) spread += dist(samples, a * n + i, samples, b * n + i);
    }
    total += fit / m - (m > 1 ? spread / (m * (m - 1)) : 0);
  }
  return total / n;
}

/**
 * A conditional generative Ω: Ω(z, ε) = z + f([z, ε]) with ε ~ N(0, I_k) and f an MLP, trained
 * by the energy score of its samples against the true pairs (a proper scoring rule, so its
 * minimiser is the conditional distribution of Φ(g(x)) given Φ(x), not its mean).
 */
export interface Generator {
  sizes: number[];
  params: Float32Array[];
  noiseDim: number;
}

export interface GeneratorConfig {
  noiseDim: number;
  hidden: number;
  epochs: number;
  batch: number;
  lr: number;
  seed: number;
}

export const GENERATOR_DEFAULTS: GeneratorConfig = { noiseDim: 16, hidden: 256, epochs: 20, batch: 128, lr: 1e-3, seed: 0 };

/** Rows [z_i, ε] with ε keyed per (key, row): the generator's input. */
function withNoise(z: Float32Array, d: number, k: number, noiseOf: (i: number) => () => number): Float32Array {
  const n = z.length / d;
  const x = new Float32Array(n * (d + k));
  const eps = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    x.set(z.subarray(i * d, (i + 1) * d), i * (d + k));
    normals(noiseOf(i), k, eps);
    for (let t = 0; t < k; t++) x[i * (d + k) + d + t] = eps[t];
  }
  return x;
}

/**
 * Runs `fn`, which must not wait on anything, with BLAS on one thread. OpenBLAS's threaded
 * SGEMM rounds otherwise than its one thread at some of the MDN's shapes (its 1,285-wide output
 * on the shorter batches that end an epoch or a forward pass), so an MDN fitted by a job on all
 * cores came out other than a reproduction's, which fits in one-thread lanes: the stochastic
 * forms are now the same whatever `--threads` (tested), and their fits ran no slower on one
 * thread (measured).
 */
function atOneBlasThread<T>(fn: () => T): T {
  const was = getThreads();
  setThreads(1);
  try {
    return fn();
  } finally {
    setThreads(was);
  }
}

/**
 * Adam on an MLP whose loss is computed here from its outputs: `lossGradient` returns the
 * gradient of the batch's loss with respect to the outputs, which the native MSE backward
 * propagates once the target is chosen that yields exactly it. The batches are the rows in
 * a keyed shuffle per epoch.
 */
async function fitByOutputGradient(
  m: MlpModel,
  n: number,
  c: { epochs: number; batch: number; lr: number; seed: number },
  what: string,
  batchOf: (idx: number[], epoch: number, start: number) => { x: Float32Array; lossGradient: (out: Float32Array, grad: Float32Array) => void },
  signal?: AbortSignal,
): Promise<void> {
  const params = m.getParams();
  const state = { params, m: params.map((p) => new Float32Array(p.length)), v: params.map((p) => new Float32Array(p.length)) };
  let step = 0;
  // The loss's gradient and the targets, written afresh every step into arrays kept while the
  // batch size stays: an MDN fit ran 6–16% faster than with new ones each step (four
  // interleaved pairs; the generator's within the noise).
  let grad = new Float32Array(0), t = new Float32Array(0);
  atOneBlasThread(() => {
    for (let e = 0; e < c.epochs; e++) {
      const rand = keyedRng(c.seed, `${what}-epoch`, e);
      const order = Array.from({ length: n }, (_, i) => i);
      for (let i = n - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        [order[i], order[j]] = [order[j], order[i]];
      }
      for (let start = 0; start < n; start += c.batch) {
        if (signal?.aborted) throw new RangeError(`${what} training was cancelled`);
        const { x, lossGradient } = batchOf(order.slice(start, start + c.batch), e, start);
        step++;
        const [b1, b2, eps] = [0.9, 0.999, 1e-8];
        const lr = (c.lr * Math.sqrt(1 - b2 ** step)) / (1 - b1 ** step);
        // MSE's gradient is 2(out − target)/(rows·cols): this target makes it exactly `grad`.
        const targetsOf = (out: Float32Array) => {
          if (grad.length !== out.length) [grad, t] = [new Float32Array(out.length), new Float32Array(out.length)];
          const g = grad, target = t, half = out.length / 2;
          lossGradient(out, g);
          for (let i = 0; i < target.length; i++) target[i] = out[i] - g[i] * half;
          return target;
        };
        if (m.adamStepVia(x, targetsOf, state, lr, b1, b2, eps) === null)
          throw new EmbaugError('E_NONFINITE', `${what} training diverged at step ${step} of epoch ${e + 1} (a weight is no longer finite): lower its learning rate (now ${c.lr}).`);
      }
    }
  });
}

/**
 * Trains the generator on base pairs (z → y) with Adam on the energy score, two samples per pair:
 * ES_i = ½(‖s₁ − t‖ + ‖s₂ − t‖) − ½‖s₁ − s₂‖, t = y − z.
 */
export async function trainGenerator(z: Float32Array, y: Float32Array, d: number, cfg: Partial<GeneratorConfig> = {}, signal?: AbortSignal): Promise<Generator> {
  const c = { ...GENERATOR_DEFAULTS, ...cfg };
  const k = c.noiseDim, n = z.length / d;
  const sizes = [d + k, c.hidden, c.hidden, d];
  const m = new MlpModel(sizes, { seed: c.seed });
  try {
    // The last layer starts at zero: the generator starts as the identity.
    const params = m.getParams();
    params[params.length - 2].fill(0);
    params[params.length - 1].fill(0);
    m.setParams(params);
    await fitByOutputGradient(m, n, c, 'generator', (idx, e, start) => {
      const b = idx.length;
      const zb = new Float32Array(2 * b * d);
      idx.forEach((r, i) => {
        zb.set(z.subarray(r * d, (r + 1) * d), i * d);
        zb.set(z.subarray(r * d, (r + 1) * d), (b + i) * d);
      });
      return {
        x: withNoise(zb, d, k, (i) => keyedRng(c.seed, 'generator', e, start, i)),
        lossGradient: (s, grad) => {
          for (let i = 0; i < b; i++) {
            const r = idx[i];
            const s1 = i * d, s2 = (b + i) * d;
            let n1 = 0, n2 = 0, n12 = 0;
            for (let t = 0; t < d; t++) {
              const target = y[r * d + t] - z[r * d + t];
              n1 += (s[s1 + t] - target) ** 2;
              n2 += (s[s2 + t] - target) ** 2;
              n12 += (s[s1 + t] - s[s2 + t]) ** 2;
            }
            const [a1, a2, a12] = [Math.sqrt(n1) || 1, Math.sqrt(n2) || 1, Math.sqrt(n12) || 1];
            for (let t = 0; t < d; t++) {
              const target = y[r * d + t] - z[r * d + t];
              grad[s1 + t] = ((s[s1 + t] - target) / a1 - (s[s1 + t] - s[s2 + t]) / a12) / (2 * b);
              grad[s2 + t] = ((s[s2 + t] - target) / a2 - (s[s2 + t] - s[s1 + t]) / a12) / (2 * b);
            }
          }
        },
      };
    }, signal);
    return { sizes, params: m.getParams(), noiseDim: k };
  } finally {
    m.dispose();
  }
}

/** One sample of Ω(z, ε) per row, ε keyed per (seed, image, epoch, augmentation). */
export function sampleGenerator(g: Generator, z: Float32Array, key: DrawKey): Float32Array {
  const d = g.sizes[g.sizes.length - 1];
  const x = withNoise(z, d, g.noiseDim, (i) => keyedRng(key.seed, key.images[i], key.epoch, key.aug, 'generator'));
  const m = new MlpModel(g.sizes);
  try {
    m.setParams(g.params);
    const shift = m.forward(x);
    return shift.map((v, i) => v + z[i]);
  } finally {
    m.dispose();
  }
}

/**
 * A mixture density network (Bishop, 1994) for the shift t = Φ(g(x)) − Φ(x) given z = Φ(x).
 * It works in the coordinates u = L⁻¹(t − μ) that whiten the shift measured on the base pairs
 * (`shift`: N(μ, L Lᵀ)), where a diagonal Gaussian per component is a sensible model:
 * p(u | z) = Σ_k π_k(z) N(u; m_k(z), diag e^{2 s_k(z)}). Its outputs per row are K logits,
 * then K means of d, then K log-scales of d. It starts as the shift's Gaussian itself (means
 * and log-scales zero, equal weights) and is trained by the negative log-likelihood of the
 * true pairs, so it learns the conditional distribution explicitly, modes included.
 */
export interface Mdn {
  sizes: number[];
  params: Float32Array[];
  components: number;
  shift: Gaussian;
}

export interface MdnConfig {
  components: number;
  hidden: number;
  epochs: number;
  batch: number;
  lr: number;
  seed: number;
}

export const MDN_DEFAULTS: MdnConfig = { components: 5, hidden: 256, epochs: 20, batch: 128, lr: 1e-3, seed: 0 };

/** Log-scales are kept within these bounds (whitened units: e^-6 to e^3 of the shift's own spread). */
const LOG_SCALE = [-6, 3] as const;
const logScale = (raw: number) => Math.min(LOG_SCALE[1], Math.max(LOG_SCALE[0], raw));

/** The mixture's weights π of row offset o (a softmax of its K logits), into `pi`. */
function mixtureWeights(out: Float32Array, o: number, K: number, pi: Float64Array): void {
  let amax = -Infinity;
  for (let k = 0; k < K; k++) amax = Math.max(amax, out[o + k]);
  let sum = 0;
  for (let k = 0; k < K; k++) sum += (pi[k] = Math.exp(out[o + k] - amax));
  for (let k = 0; k < K; k++) pi[k] /= sum;
}

/**
 * The negative log-likelihood of whitened shifts u under the MDN's outputs (constants dropped),
 * and its gradient (into `grad`, every element written, when the caller keeps one).
 */
export function mdnLoss(out: Float32Array, u: Float32Array, d: number, K: number, grad: Float32Array = new Float32Array(out.length)): { loss: number; grad: Float32Array } {
  const w = K * (1 + 2 * d), n = u.length / d;
  const ll = new Float64Array(K), pi = new Float64Array(K);
  let loss = 0;
  for (let i = 0; i < n; i++) {
    const o = i * w;
    mixtureWeights(out, o, K, pi);
    for (let k = 0; k < K; k++) {
      let l = Math.log(pi[k]);
      for (let t = 0; t < d; t++) {
        const s = logScale(out[o + K + K * d + k * d + t]);
        const r = (u[i * d + t] - out[o + K + k * d + t]) * Math.exp(-s);
        l -= 0.5 * r * r + s;
      }
      ll[k] = l;
    }
    let lmax = -Infinity;
    for (let k = 0; k < K; k++) lmax = Math.max(lmax, ll[k]);
    let lsum = 0;
    for (let k = 0; k < K; k++) lsum += Math.exp(ll[k] - lmax);
    loss -= (lmax + Math.log(lsum)) / n;
    for (let k = 0; k < K; k++) {
      const gamma = Math.exp(ll[k] - lmax) / lsum;
      grad[o + k] = (pi[k] - gamma) / n;
      for (let t = 0; t < d; t++) {
        const raw = out[o + K + K * d + k * d + t];
        const s = logScale(raw);
        const diff = u[i * d + t] - out[o + K + k * d + t];
        const inv2 = Math.exp(-2 * s);
        grad[o + K + k * d + t] = (-gamma * diff * inv2) / n;
        grad[o + K + K * d + k * d + t] = raw === s ? (gamma * (1 - diff * diff * inv2)) / n : 0;
      }
    }
  }
  return { loss, grad };
}

/**
 * Trains the MDN on base pairs (z → y), its coordinates fixed by the Gaussian of their shifts
 * (`shift`, when the caller has measured it already).
 */
export async function trainMdn(z: Float32Array, y: Float32Array, d: number, cfg: Partial<MdnConfig> = {}, signal?: AbortSignal, shift?: Gaussian): Promise<Mdn> {
  const c = { ...MDN_DEFAULTS, ...cfg };
  const K = c.components, n = z.length / d;
  const t = new Float32Array(y.length);
  for (let i = 0; i < t.length; i++) t[i] = y[i] - z[i];
  shift ??= gaussianOf(t, d);
  const u = whitenRows(t, d, shift.mean, shift.chol);
  const sizes = [d, c.hidden, c.hidden, K * (1 + 2 * d)];
  const m = new MlpModel(sizes, { seed: c.seed });
  try {
    // Small last-layer weights; each component starts at the whitened shift of a pair drawn
    // at random, with the measured spread: components started alike stay alike (one broad
    // Gaussian over two modes), components started apart find them.
    const params = m.getParams();
    params[params.length - 2].forEach((v, i, a) => (a[i] = v * 0.01));
    const bias = params[params.length - 1].fill(0);
    const rand = keyedRng(c.seed, 'mdn-init');
    for (let k = 0; k < K; k++) bias.set(u.subarray(Math.floor(rand() * n) * d).subarray(0, d), K + k * d);
    m.setParams(params);
    await fitByOutputGradient(m, n, c, 'mdn', (idx) => {
      const x = new Float32Array(idx.length * d), ub = new Float32Array(idx.length * d);
      idx.forEach((r, i) => {
        x.set(z.subarray(r * d, (r + 1) * d), i * d);
        ub.set(u.subarray(r * d, (r + 1) * d), i * d);
      });
      return { x, lossGradient: (out, grad) => void mdnLoss(out, ub, d, K, grad) };
    }, signal);
    return { sizes, params: m.getParams(), components: K, shift };
  } finally {
    m.dispose();
  }
}

/** The MDN's outputs for rows of z. */
function mdnOutputs(g: Mdn, z: Float32Array): Float32Array {
  const m = new MlpModel(g.sizes);
  try {
    m.setParams(g.params);
    return atOneBlasThread(() => m.forward(z));
  } finally {
    m.dispose();
  }
}

/**
 * Draws of the MDN for rows of z, one per row and key: a component by its weight, then its
 * Gaussian, keyed per (seed, image, epoch, augmentation). The network runs once, here.
 */
export function mdnSampler(g: Mdn, z: Float32Array): (key: DrawKey) => Float32Array {
  const d = g.shift.d, K = g.components, w = K * (1 + 2 * d), n = z.length / d;
  const outs = mdnOutputs(g, z);
  return (key) => {
    const y = new Float32Array(z.length);
    const eps = new Float64Array(d), v = new Float64Array(d), pi = new Float64Array(K);
    for (let i = 0; i < n; i++) {
      const o = i * w;
      const rand = keyedRng(key.seed, key.images[i], key.epoch, key.aug, 'mdn');
      mixtureWeights(outs, o, K, pi);
      let pick = rand(), c = 0;
      while (c < K - 1 && (pick -= pi[c]) > 0) c++;
      normals(rand, d, eps);
      for (let t = 0; t < d; t++) {
        v[t] = outs[o + K + c * d + t] + Math.exp(logScale(outs[o + K + K * d + c * d + t])) * eps[t];
      }
      unwhitenInto(y, z, i, v, g.shift);
    }
    return y;
  };
}

/** The MDN's conditional mean per row: z + μ + L Σ_k π_k m_k. */
export function mdnMean(g: Mdn, z: Float32Array): Float32Array {
  const d = g.shift.d, K = g.components, w = K * (1 + 2 * d), n = z.length / d;
  const outs = mdnOutputs(g, z);
  const y = new Float32Array(z.length);
  const v = new Float64Array(d), pi = new Float64Array(K);
  for (let i = 0; i < n; i++) {
    const o = i * w;
    mixtureWeights(outs, o, K, pi);
    v.fill(0);
    for (let k = 0; k < K; k++) for (let t = 0; t < d; t++) v[t] += pi[k] * outs[o + K + k * d + t];
    unwhitenInto(y, z, i, v, g.shift);
  }
  return y;
}
