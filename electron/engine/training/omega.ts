/**
 * Augmentation transformers Ω_j: an MLP D → 2D → D trained by MSE so that Ω_j(Φ(x)) ≈ Φ(g_j(x))
 * on the base data set. Two forms are offered: the paper's plain MLP, and a residual one,
 * Ω(z) = z + f(z) with f's last layer at zero, which starts as the identity. The held-out
 * identity baseline (Φ(x) itself as the guess for Φ(g(x))) decides: an Ω that does no
 * better than it is flagged, and `auto` then falls back to the identity.
 */
import { createHash } from 'node:crypto';

import { drawTheta, parseAug, thetaDim, thetaMagnitude, type AugSpec } from '../augment/index.js';
import { getBackbone } from '../backbones/index.js';
import { getDataset, selectImages, type Selection } from '../datasets/index.js';
import type { Db } from '../db.js';
import { embeddingsFor } from '../embeddings/index.js';
import type { OnProgress } from '../jobs/index.js';
import { MlpModel, trainSettings, type EpochStats } from '../native/index.js';
import { artifactBytes, getRun, listRuns, runArtifacts, startRun } from '../runs/index.js';
import { EmbaugError } from '../errors.js';
import { CONDITIONAL_FORMS, conditionalForward, conditionalInput, encodedDim, isConditional, newConditional, thetaCurve, type ThetaBin } from './conditional.js';
import { meanCosine, meanRelativeError, mse, rows, stack } from './stats.js';
import { KNN_K, addGaussian, addNeighbourShift, energyScore, gaussianOf, mdnMean, mdnSampler, nearest, packShiftModels, sampleGenerator, trainGenerator, trainMdn, unpackShiftModels, type OmegaSampling, type ShiftModels } from './stochastic.js';

export const OMEGA_FORMS = ['auto', 'plain', 'residual', ...CONDITIONAL_FORMS] as const;
/** A trained Ω's form; `auto` (a request) trains both and keeps the better. */
export type OmegaForm = Exclude<(typeof OMEGA_FORMS)[number], 'auto'>;

export interface OmegaConfig {
  form: OmegaForm | 'auto';
  epochs: number;
  lr: number;
  momentum: number;
  batch: number;
  weightDecay: number;
  /** Fraction of the base images held out to evaluate Ω. */
  heldOut: number;
  seed: number;
  /**
   * Also fit what the stochastic forms sample from (the Gaussians, the neighbours, the
   * generative Ω, about as long again as Ω itself) and score every form on held-out pairs.
   */
  stochastic: boolean;
  /** Views drawn per base image for a random augmentation (its pairs); 1 for a deterministic one. */
  draws: number;
}

export const OMEGA_DEFAULTS: OmegaConfig = { form: 'auto', epochs: 20, lr: 0.01, momentum: 0.9, batch: 128, weightDecay: 0, heldOut: 0.1, seed: 0, stochastic: false, draws: 4 };

/** The seed of draw k: draw 0 is the seed itself, so a one-draw cache is reused. */
export const drawSeed = (seed: number, k: number) => seed * 1000 + k;

export interface OmegaFidelity {
  heldOutMse: number;
  identityMse: number;
  relativeError: number;
  identityRelativeError: number;
  cosine: number;
  identityCosine: number;
}

export interface OmegaCandidate extends OmegaFidelity {
  form: OmegaForm;
  history: EpochStats[];
  /** True when it does no better than the identity on held-out pairs. */
  flagged: boolean;
}

/** How close each way of applying Ω comes on held-out base pairs not used to fit it. */
export interface SamplingFidelity {
  /** MSE of the form's mean against Φ(g(x)). */
  mse: number;
  /** Energy score of its samples (8 per pair); for a point prediction, the mean distance. Lower is better. */
  energyScore: number;
}

export interface OmegaResult {
  aug: string;
  /** What is used: the better candidate, or the identity when neither beats it. */
  chosen: OmegaForm | 'identity';
  sizes: number[];
  params: Float32Array[] | null;
  candidates: OmegaCandidate[];
  fidelity: OmegaFidelity;
  flagged: boolean;
  runId: number;
  /** Views per base image its pairs were drawn from. */
  draws: number;
  /** Held-out MSE against the size of the draw |θ| (random augmentations only). */
  thetaCurve: ThetaBin[] | null;
  /** What the stochastic forms sample from, measured on the same base pairs (with `stochastic`). */
  stochastic: ShiftModels | null;
  /** Held-out fidelity of the identity and of every way of applying Ω (with `stochastic`). */
  sampling: Record<'identity' | OmegaSampling, SamplingFidelity> | null;
}

export interface OmegaRequest {
  backbone: string;
  dataset: number | string;
  selection: Selection;
  aug: string;
  config?: Partial<OmegaConfig>;
  threads?: number;
  signal?: AbortSignal;
  onProgress?: OnProgress;
  onEpoch?: (form: OmegaForm, s: EpochStats) => void;
  parentRunId?: number;
  group?: string;
  protocol?: string;
}

/** Stable held-out membership by image hash, so the split does not depend on order. */
function heldOutMask(shas: string[], fraction: number, seed: number): boolean[] {
  return shas.map((s) => createHash('sha256').update(`${seed}:${s}`).digest().readUInt32BE(0) / 2 ** 32 < fraction);
}

/**
 * Which of these base images Ω trains on and which it holds out for its fidelity (by image
 * hash, see heldOutMask); refused when either side would be empty, naming what to change.
 */
export function omegaSplit(shas: string[], config?: Partial<OmegaConfig>): { tr: number[]; ho: number[] } {
  const cfg = { ...OMEGA_DEFAULTS, ...config };
  const mask = heldOutMask(shas, cfg.heldOut, cfg.seed);
  const tr = mask.flatMap((h, i) => (h ? [] : [i]));
  const ho = mask.flatMap((h, i) => (h ? [i] : []));
  if (!tr.length || !ho.length)
    throw new EmbaugError('E_ARG', `Ω needs base images to train on and others held out to measure it, and the ${shas.length} base images of its selection give ${tr.length} and ${ho.length} (${Math.round(100 * cfg.heldOut)}% held out, by image hash): select more base images, a few hundred at least (embaug omega: a larger --limit or more --classes; reproduce and study: a larger --subset or --omega-images).`);
  return { tr, ho };
}

type PairSource = Omit<Parameters<typeof embeddingsFor>[1], 'aug' | 'seed'>;

/** The base views Ω's pairs are made of: the identity, then each draw of the augmentation. */
function pairViews(spec: AugSpec, cfg: OmegaConfig): { aug: string; seed?: number }[] {
  const draws = spec.deterministic ? 1 : cfg.draws;
  return [{ aug: 'identity' }, ...Array.from({ length: draws }, (_, k) => ({ aug: spec.key, seed: drawSeed(cfg.seed, k) }))];
}

/**
 * The extractions the base pairs of Ωs for `augs` need, one per view, to run before training
 * without loading the vectors: a reproduction runs them with every core first, then trains its
 * Ωs beside the heads on one core each. A view two augmentations share (the identity always; a
 * composite's parts) is listed once, for the first augmentation needing it (`of`, its index):
 * listed twice, it counted twice in a progress of images that then ran ahead of the work.
 */
export function pairExtractions<S extends PairSource>(source: S, augs: string[], config?: Partial<OmegaConfig>): (S & { aug: string; seed?: number; of: number })[] {
  const cfg = { ...OMEGA_DEFAULTS, ...config };
  const listed = new Set<string>();
  return augs.flatMap((aug, of) =>
    pairViews(parseAug(aug), cfg)
      .filter((view) => {
        const key = `${view.aug} ${view.seed ?? 0}`;
        return !listed.has(key) && !!listed.add(key);
      })
      .map((view) => ({ ...source, ...view, of })),
  );
}

/**
 * Ω's training and held-out pairs (z, Φ(g(x))) on the base selection, held out by image hash.
 * A random augmentation is seen through several draws per image, each cached under its own
 * seed, with θ naming each one; every draw of a held-out image is held out, so no score is
 * measured on an image Ω saw.
 */
export async function basePairs(db: Db, source: PairSource, spec: AugSpec, cfg: OmegaConfig) {
  const [identity, ...drawn] = pairViews(spec, cfg);
  const z = await embeddingsFor(db, { ...source, ...identity });
  const d = z.dim;
  const shas = z.images.map((i) => i.sha256);
  const draws = drawn.length;
  const tDim = thetaDim(spec);
  const views: { y: Float32Array; theta: Float32Array | null }[] = [];
  for (const view of drawn)
    views.push({ y: (await embeddingsFor(db, { ...source, ...view })).x, theta: spec.deterministic ? null : drawTheta(spec, view.seed!, shas) });
  const { tr, ho } = omegaSplit(shas, cfg);
  const pooled = (idx: number[], pick: (v: (typeof views)[number]) => Float32Array | null, w: number) => stack(views.map((v) => rows(pick(v) ?? z.x, w, idx)));
  return {
    d, tDim, draws, shas, ho,
    xTr: pooled(tr, () => null, d), yTr: pooled(tr, (v) => v.y, d), xHo: pooled(ho, () => null, d), yHo: pooled(ho, (v) => v.y, d),
    thTr: spec.deterministic ? null : pooled(tr, (v) => v.theta, tDim), thHo: spec.deterministic ? null : pooled(ho, (v) => v.theta, tDim),
  };
}

export async function trainOmega(db: Db, req: OmegaRequest): Promise<OmegaResult> {
  const cfg = { ...OMEGA_DEFAULTS, ...req.config };
  // Bad settings are refused before the base pairs are extracted, not after.
  trainSettings({ batch: cfg.batch, epochs: cfg.epochs, seed: cfg.seed, optimizer: { kind: 'sgd', lr: cfg.lr, momentum: cfg.momentum, weightDecay: cfg.weightDecay } });
  const spec = parseAug(req.aug);
  const bb = getBackbone(db, req.backbone);
  const ds = getDataset(db, req.dataset);
  if (isConditional(cfg.form) && spec.deterministic)
    throw new EmbaugError('E_ARG', `form "${cfg.form}" conditions Ω on the parameters θ a random augmentation draws, and "${spec.key}" draws none: use form auto, plain or residual for it.`);
  // Too few base images for a held-out split: refused before a run is recorded and pairs extracted.
  omegaSplit(selectImages(db, ds.id, req.selection).map((i) => i.sha256), cfg);
  const run = startRun(db, {
    kind: 'omega', name: `Ω ${spec.key} for ${bb.name}`, parentId: req.parentRunId, group: req.group, backboneSha: bb.sha256,
    datasetId: ds.id, datasetVersion: ds.version, protocol: req.protocol, seed: cfg.seed, threads: req.threads,
    config: { ...cfg, aug: spec.key, selection: req.selection },
  });
  return run.wrap(async () => {
    const common = { dataset: ds.id, backbone: bb.sha256, ...req.selection, threads: req.threads, signal: req.signal, onProgress: req.onProgress, parentRunId: run.id };
    const { d, tDim, draws, shas, ho, xTr, yTr, xHo, yHo, thTr, thHo } = await basePairs(db, common, spec, cfg);
    // The images this Ω sees, kept with it: the leak check reads them, whatever the data set
    // becomes later.
    run.artifact('images', SEEN_ARTIFACT, Buffer.from(shas.join(''), 'hex'), { images: shas.length });
    const identity = { identityMse: mse(xHo, yHo), identityRelativeError: meanRelativeError(xHo, yHo, d), identityCosine: meanCosine(xHo, yHo, d) };
    const forms: OmegaForm[] = cfg.form !== 'auto' ? [cfg.form] : spec.deterministic ? ['plain', 'residual'] : ['residual', ...CONDITIONAL_FORMS];
    const candidates: (OmegaCandidate & { params: Float32Array[]; sizes: number[]; pred: Float32Array })[] = [];
    for (const form of forms) {
      const cond = isConditional(form) ? form : null;
      const sizes = cond ? [d + encodedDim(cond, tDim), 2 * d, d] : [d, 2 * d, d];
      const m = cond ? newConditional(sizes, cfg.seed) : new MlpModel(sizes, { seed: cfg.seed, residual: form === 'residual' });
      // The conditional f learns the shift; its MSE equals that of z + f.
      const [x, y, vx, vy] = cond
        ? [conditionalInput(cond, xTr, d, thTr!, tDim), yTr.map((v, i) => v - xTr[i]), conditionalInput(cond, xHo, d, thHo!, tDim), yHo.map((v, i) => v - xHo[i])]
        : [xTr, yTr, xHo, yHo];
      try {
        const history = await m.train({
          x, targets: y, val: { x: vx, targets: vy }, batch: cfg.batch, epochs: cfg.epochs, seed: cfg.seed,
          optimizer: { kind: 'sgd', lr: cfg.lr, momentum: cfg.momentum, weightDecay: cfg.weightDecay }, signal: req.signal,
          onEpoch: (s) => {
            run.metrics(s.epoch, { [`${form}.train_mse`]: s.loss, [`${form}.heldout_mse`]: s.valLoss });
            req.onEpoch?.(form, s);
          },
        });
        const pred = m.forward(vx);
        if (cond) for (let i = 0; i < pred.length; i++) pred[i] += xHo[i];
        const heldOutMse = mse(pred, yHo);
        candidates.push({
          form, history, params: m.getParams(), sizes, pred, heldOutMse, relativeError: meanRelativeError(pred, yHo, d), cosine: meanCosine(pred, yHo, d),
          ...identity, flagged: heldOutMse >= identity.identityMse,
        });
      } finally {
        m.dispose();
      }
    }
    const best = candidates.reduce((a, b) => (b.heldOutMse < a.heldOutMse ? b : a));
    const useIdentity = cfg.form === 'auto' && best.flagged;
    const fidelity: OmegaFidelity = useIdentity
      ? { heldOutMse: identity.identityMse, relativeError: identity.identityRelativeError, cosine: identity.identityCosine, ...identity }
      : { heldOutMse: best.heldOutMse, relativeError: best.relativeError, cosine: best.cosine, ...identity };
    const chosen = useIdentity ? 'identity' : best.form;
    const params = useIdentity ? null : best.params;
    const sizes = useIdentity ? [d, 2 * d, d] : best.sizes;
    const bestOf = (conditional: boolean) => candidates.filter((c) => isConditional(c.form) === conditional).reduce<(typeof candidates)[number] | null>((a, b) => (!a || b.heldOutMse < a.heldOutMse ? b : a), null);
    const curve = thHo ? thetaCurve(thetaMagnitude(thHo, tDim), yHo, d, { identity: xHo, unconditional: bestOf(false)?.pred ?? null, conditional: bestOf(true)?.pred ?? null }) : null;
    const { stochastic, sampling } = cfg.stochastic
      ? await measureStochastic(
        { chosen, sizes, params }, { xTr, yTr, xHo, yHo, thTr, thHo, d, shas: Array.from({ length: draws }, () => ho.map((i) => shas[i])).flat(), seed: cfg.seed, aug: spec.key, epochs: cfg.epochs },
        req.signal,
      )
      : { stochastic: null, sampling: null };
    const result: OmegaResult = {
      aug: spec.key, chosen, sizes, params, candidates: candidates.map(({ params: _p, sizes: _s, pred: _q, ...c }) => c), fidelity, flagged: best.flagged, runId: run.id,
      draws, thetaCurve: curve, stochastic, sampling,
    };
    if (result.params) run.artifact('weights', 'omega.f32', packParams(result.params), { sizes, form: chosen, residual: chosen === 'residual', aug: spec.key });
    if (stochastic) {
      const { bytes, layout } = packShiftModels(stochastic);
      run.artifact('stochastic', STOCHASTIC_ARTIFACT, bytes, { layout });
    }
    return result;
  }, (r) => ({ chosen: r.chosen, flagged: r.flagged, sizes: r.sizes, draws: r.draws, ...r.fidelity, candidates: r.candidates.map(({ history: _h, ...c }) => c), thetaCurve: r.thetaCurve, sampling: r.sampling }));
}

interface Pairs {
  xTr: Float32Array;
  yTr: Float32Array;
  xHo: Float32Array;
  yHo: Float32Array;
  /** θ of each pair, for a conditional Ω (null for a deterministic augmentation). */
  thTr: Float32Array | null;
  thHo: Float32Array | null;
  d: number;
  /** sha256 of each held-out pair's image, keying the fidelity draws. */
  shas: string[];
  seed: number;
  aug: string;
  /** Epochs of the generative Ω: as many as Ω's. */
  epochs: number;
}

/**
 * The stochastic forms' parameters, and every form's fidelity. The residual covariance is
 * measured on one half of the held-out pairs (odd rows) and every form scored on the other,
 * so no score is measured on the pairs its model was fitted to.
 */
async function measureStochastic(o: Pick<OmegaResult, 'chosen' | 'sizes' | 'params'>, p: Pairs, signal?: AbortSignal): Promise<{ stochastic: ShiftModels; sampling: NonNullable<OmegaResult['sampling']> }> {
  const { d } = p;
  const n = p.xHo.length / d;
  const half = (x: Float32Array, odd: boolean) => rows(x, d, Array.from({ length: n }, (_, i) => i).filter((i) => i % 2 === (odd ? 1 : 0)));
  const [xFit, yFit, xEval, yEval] = [half(p.xHo, true), half(p.yHo, true), half(p.xHo, false), half(p.yHo, false)];
  const halfTheta = (odd: boolean) => (p.thHo ? rows(p.thHo, p.thHo.length / n, Array.from({ length: n }, (_, i) => i).filter((i) => i % 2 === (odd ? 1 : 0))) : undefined);
  const [thFit, thEval] = [halfTheta(true), halfTheta(false)];
  const evalShas = p.shas.filter((_, i) => i % 2 === 0);
  const residualOf = (x: Float32Array, y: Float32Array) => {
    const pred = applyOmega(o, x, thFit);
    return y.map((v, i) => v - pred[i]);
  };
  const shiftTr = p.yTr.map((v, i) => v - p.xTr[i]);
  const shift = gaussianOf(shiftTr, d);
  const stochastic: ShiftModels = {
    residual: gaussianOf(residualOf(xFit, yFit), d),
    shift,
    bank: { z: p.xTr, shift: shiftTr, n: p.xTr.length / d },
    generator: await trainGenerator(p.xTr, p.yTr, d, { epochs: p.epochs, seed: p.seed }, signal),
    mdn: await trainMdn(p.xTr, p.yTr, d, { epochs: p.epochs, seed: p.seed }, signal, shift),
  };
  const neighbours = nearest(xEval, stochastic.bank.z, d, KNN_K);
  const M = 8;
  const draws = (f: (epoch: number) => Float32Array) => {
    const out = new Float32Array(M * xEval.length);
    for (let m = 0; m < M; m++) out.set(f(m), m * xEval.length);
    return out;
  };
  const key = (epoch: number) => ({ seed: p.seed, epoch, aug: p.aug, images: evalShas });
  const mean = applyOmega(o, xEval, thEval);
  const point = (x: Float32Array) => ({ mse: mse(x, yEval), energyScore: energyScore(x, yEval, d, 1) });
  const sampled = (mu: Float32Array, samples: Float32Array) => ({ mse: mse(mu, yEval), energyScore: energyScore(samples, yEval, d, M) });
  const knnMean = new Float32Array(xEval.length);
  const kk = neighbours.length / (xEval.length / d);
  for (let i = 0; i < xEval.length / d; i++)
    for (let j = 0; j < kk; j++) for (let t = 0; t < d; t++) knnMean[i * d + t] += (xEval[i * d + t] + shiftTr[neighbours[i * kk + j] * d + t]) / kk;
  const shiftMean = xEval.map((v, i) => v + stochastic.shift.mean[i % d]);
  return {
    stochastic,
    sampling: {
      identity: point(xEval),
      mean: point(mean),
      'residual-gauss': sampled(mean, draws((e) => addGaussian(mean, stochastic.residual, key(e)))),
      'shift-gauss': sampled(shiftMean, draws((e) => addGaussian(xEval, stochastic.shift, key(e)))),
      'knn-shift': sampled(knnMean, draws((e) => addNeighbourShift(xEval, stochastic.bank, neighbours, KNN_K, d, key(e)))),
      generator: (() => {
        const s = draws((e) => sampleGenerator(stochastic.generator, xEval, key(e)));
        const mu = new Float32Array(xEval.length);
        for (let m = 0; m < M; m++) for (let i = 0; i < mu.length; i++) mu[i] += s[m * mu.length + i] / M;
        return sampled(mu, s);
      })(),
      mdn: (() => {
        const sample = mdnSampler(stochastic.mdn, xEval);
        return sampled(mdnMean(stochastic.mdn, xEval), draws((e) => sample(key(e))));
      })(),
    },
  };
}

/** Applies Ω to rows of z (the identity returns z itself); a conditional Ω also needs each row's θ. */
export function applyOmega(o: Pick<OmegaResult, 'chosen' | 'sizes' | 'params'>, z: Float32Array, theta?: Float32Array): Float32Array {
  if (o.chosen === 'identity' || !o.params) return z;
  if (isConditional(o.chosen)) {
    if (!theta) throw new EmbaugError('E_ARG', `a conditional Ω predicts the view of a given draw θ, and none was given: apply it with the θ of each view (drawTheta)`);
    return conditionalForward(o.chosen, o.sizes, o.params, z, theta);
  }
  const m = new MlpModel(o.sizes, { residual: o.chosen === 'residual' });
  try {
    m.setParams(o.params);
    return m.forward(z);
  } finally {
    m.dispose();
  }
}

/** Weights as one little-endian float32 blob, tensors in order. */
export function packParams(params: Float32Array[]): Uint8Array {
  const total = params.reduce((a, p) => a + p.length, 0);
  const out = new Float32Array(total);
  let o = 0;
  for (const p of params) {
    out.set(p, o);
    o += p.length;
  }
  return new Uint8Array(out.buffer);
}

export function unpackParams(bytes: Uint8Array, sizes: number[]): Float32Array[] {
  const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const out: Float32Array[] = [];
  let o = 0;
  for (let l = 0; l + 1 < sizes.length; l++) {
    for (const n of [sizes[l] * sizes[l + 1], sizes[l + 1]]) {
      out.push(all.slice(o, o + n));
      o += n;
    }
  }
  return out;
}

/** A finished Ω training from the database: its form, sizes and weights. */
const STOCHASTIC_ARTIFACT = 'stochastic.f32';
/** Whether an Ω's run keeps the shift models its stochastic forms draw from (see trainOmega). */
export const keepsShiftModels = (db: Db, runId: number) => runArtifacts(db, runId).some((a) => a.name === STOCHASTIC_ARTIFACT);
/** What to do for an Ω with its shift models, in every front end's words. */
export const NEEDS_SHIFT_MODELS = 'train one with them (embaug omega --stochastic; in the Augmentations (Ω) view, "fit stochastic Ω too")';

/**
 * A finished Ω from its run: its weights, and what its stochastic forms sample from where it
 * was trained with `stochastic` (null otherwise).
 */
export function loadOmega(db: Db, runId: number): Pick<OmegaResult, 'chosen' | 'sizes' | 'params' | 'runId' | 'stochastic'> {
  const run = getRun(db, runId);
  const s = run.summary as { chosen?: OmegaResult['chosen']; sizes?: number[] } | null;
  if (run.kind !== 'omega' || run.status !== 'completed' || !s?.chosen || !s.sizes)
    throw new EmbaugError('E_ARG', `run ${runId} is not a finished Ω training: pick one from \`embaug runs list --kind omega\``);
  const kept = runArtifacts(db, runId).find((a) => a.name === STOCHASTIC_ARTIFACT);
  const stochastic = kept ? unpackShiftModels(artifactBytes(db, runId, STOCHASTIC_ARTIFACT), (JSON.parse(kept.meta) as { layout: unknown }).layout) : null;
  if (s.chosen === 'identity') return { chosen: 'identity', sizes: s.sizes, params: null, runId, stochastic };
  return { chosen: s.chosen, sizes: s.sizes, params: unpackParams(artifactBytes(db, runId, 'omega.f32'), s.sizes), runId, stochastic };
}

/**
 * Refuses an Ω run that is not a finished Ω of this backbone for this augmentation, or, where a
 * stochastic form is to be drawn, one that keeps no shift models.
 */
export function checkOmegaRun(db: Db, runId: number, backboneSha: string, augKey: string, sampling: OmegaSampling = 'mean'): void {
  const r = getRun(db, runId);
  const pick = `pick one from \`embaug runs list --kind omega\``;
  if (r.kind !== 'omega' || r.status !== 'completed') throw new EmbaugError('E_ARG', `run ${runId} is ${r.kind === 'omega' ? `an Ω training that ${r.status === 'running' ? 'is still running' : `ended ${r.status}`}` : `a ${r.kind} run`}, not a finished Ω: ${pick}`);
  if (r.backboneSha !== backboneSha) throw new EmbaugError('E_ARG', `the Ω of run ${runId} was trained on another backbone's embeddings: ${pick} of this backbone`);
  if (r.config.aug !== augKey) throw new EmbaugError('E_ARG', `the Ω of run ${runId} is for "${String(r.config.aug)}", not "${augKey}": ${pick} for "${augKey}"`);
  if (sampling !== 'mean' && !keepsShiftModels(db, runId))
    throw new EmbaugError('E_ARG', `sampling "${sampling}" draws from the shift models an Ω keeps when trained with its sampling forms, and the Ω of run ${runId} was trained without them: ${NEEDS_SHIFT_MODELS}`);
}

const SEEN_ARTIFACT = 'seen.sha256';

// The images an Ω saw: kept with its run (32 bytes each) since this record began; for an
// older Ω, what its selection holds now, by data set version (a version names the data set's
// whole state, so the same key is the same images). Every embed head of a reproduction checks
// the same Ωs against the same test split, so the newest few sets are kept.
const seenByDb = new WeakMap<Db, Map<string, Set<string>>>();
const SEEN_KEPT = 16;
function seenImages(db: Db, runId: number, datasetId: number, sel: Selection): Set<string> {
  const byKey = seenByDb.get(db) ?? seenByDb.set(db, new Map()).get(db)!;
  const kept = runArtifacts(db, runId).some((a) => a.name === SEEN_ARTIFACT);
  const key = kept ? `${runId}` : `${runId}:${getDataset(db, datasetId).version}`;
  let seen = byKey.get(key);
  if (!seen) {
    if (kept) {
      const hex = artifactBytes(db, runId, SEEN_ARTIFACT).toString('hex');
      seen = new Set(Array.from({ length: hex.length / 64 }, (_, i) => hex.slice(64 * i, 64 * (i + 1))));
    } else seen = new Set(selectImages(db, datasetId, sel).map((i) => i.sha256));
    byKey.set(key, seen);
    if (byKey.size > SEEN_KEPT) byKey.delete(byKey.keys().next().value!);
  }
  return seen;
}

/**
 * How many of these images (by hash) an Ω saw in training: its base pairs' images. An Ω that
 * saw a head's test images would carry the test set into the head's training, through its
 * augmentation.
 */
export function omegaSeenCount(db: Db, runId: number, shas: Iterable<string>): number {
  const run = getRun(db, runId);
  const sel = (run.config as { selection?: Selection }).selection;
  if (run.datasetId === null || !sel) return 0;
  const seen = seenImages(db, runId, run.datasetId, sel);
  let n = 0;
  for (const s of shas) n += Number(seen.has(s));
  return n;
}

/**
 * Refuses an Ω trained on any of a head's test images, saying which Ω, how many images, and
 * what to do instead.
 */
export function assertOmegaUnseen(db: Db, augKey: string, runId: number, test: { sha256: string }[]): void {
  const n = omegaSeenCount(db, runId, test.map((i) => i.sha256));
  if (n > 0)
    throw new EmbaugError(
      'E_LEAK',
      `The Ω for "${augKey}" (run ${runId}) was trained on ${n} of this head's ${test.length} test images: through its augmentation the test set would leak into training. ` +
        'Choose an Ω trained on other images (the base task\'s classes, or a split the head is not tested on), or train one in the Augmentations (Ω) view.',
    );
}

/**
 * The newest finished Ω of a backbone for an augmentation (by its canonical key) that saw
 * none of `unseen` (a head's test images), or null.
 */
export function latestOmega(db: Db, backboneSha: string, augKey: string, unseen: { sha256: string }[] = [], withShiftModels = false): number | null {
  for (const r of listRuns(db, { kind: 'omega', status: 'completed' }))
    if (r.backboneSha === backboneSha && r.config.aug === augKey && (!withShiftModels || keepsShiftModels(db, r.id)) && (unseen.length === 0 || omegaSeenCount(db, r.id, unseen.map((i) => i.sha256)) === 0)) return r.id;
  return null;
}
