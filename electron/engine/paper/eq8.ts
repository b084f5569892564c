/**
 * Compute accounting (the paper's Eq. 8). Per sample, measured here: C_Φ (decode, augment
 * and the backbone), C_Ω, C_Ψ (head forward) and C_Ψbp (head backward and update); FLOPs of Ω
 * and Ψ from their layer shapes. With N augmented versions of each sample per epoch over E
 * epochs (FLOPs of Φ from its graph's layer shapes):
 *   pixel space (Φ on every augmented image, no cache):  C_P = E·N·(C_Φ + C_Ψ + C_Ψbp)
 *   embedding space (one Φ pass, then Ω):                  C_E = C_Φ + E·N·(C_Ω + C_Ψ + C_Ψbp)
 * and the measured wall-clock of both ways of fine-tuning for a few epochs. C_P is the cost of
 * a random augmentation (a fresh draw through Φ every epoch, which no cache can hold). For a
 * deterministic one a sensible pixel pipeline caches the N+1 views, and the honest comparison
 * is with that: C_Pc = (N+1)·C_Φ + E·(C_Ψ + C_Ψbp), against C_E = C_Φ + N·C_Ω + E·(C_Ψ + C_Ψbp),
 * at most (N+1)× however many epochs (both sides train one view per sample per epoch here).
 
 */
import { forwardFlops, getBackbone, preprocessOf } from '../backbones/index.js';
import { getDataset, selectImages, type Selection } from '../datasets/index.js';
import type { Db } from '../db.js';
import { phiPass } from '../embeddings/index.js';
import type { OnProgress } from '../jobs/index.js';
import { MlpModel } from '../native/index.js';
import { HEAD_DEFAULTS, applyOmega, stack, type OmegaResult } from '../training/index.js';

export interface Eq8Request {
  backbone: string;
  dataset: number | string;
  train: Selection;
  omega: Pick<OmegaResult, 'chosen' | 'sizes' | 'params' | 'aug'>;
  /** Epochs actually run for the measured ratio; predictions use `epochsForPrediction`. */
  measuredEpochs?: number;
  epochsForPrediction?: number;
  threads: number;
  signal?: AbortSignal;
  onProgress?: OnProgress;
}

export interface Eq8Result {
  backbone: string;
  images: number;
  perSampleSeconds: { phi: number; omega: number; psiForward: number; psiBackprop: number };
  flopsPerSample: { phi: number; omega: number; psiForward: number; psiBackprop: number };
  predicted: { N: number; E: number; ratio: number; ratioAsymptotic: number }[];
  /** Against a pixel pipeline that caches the views of a deterministic augmentation. */
  cachedPixel: {
    predicted: { N: number; E: number; ratio: number }[];
    measured: { seconds: number; ratio: number; extrapolatedRatio: number };
  };
  measured: {
    epochs: number;
    pixelSeconds: number;
    embedSeconds: number;
    /** The embedding run's one-off part (one Φ pass and Ω) and its training part. */
    embedSetupSeconds: number;
    embedTrainSeconds: number;
    ratio: number;
    extrapolatedTo: number;
    extrapolatedRatio: number;
  };
  formulas: { pixel: string; embed: string };
}

function macs(sizes: number[]): number {
  let m = 0;
  for (let l = 0; l + 1 < sizes.length; l++) m += sizes[l] * sizes[l + 1];
  return m;
}

export async function measureEq8(db: Db, req: Eq8Request): Promise<Eq8Result> {
  const bb = getBackbone(db, req.backbone);
  const pre = preprocessOf(bb.manifest);
  const ds = getDataset(db, req.dataset);
  const images = selectImages(db, ds.id, req.train);
  const n = images.length;
  const d = bb.dim;
  const E = req.measuredEpochs ?? 3;
  const labels = Int32Array.from(images.map((i) => i.label));
  const classes = Math.max(...labels) + 1;
  const sizes = [d, ...HEAD_DEFAULTS.hidden, classes];
  const opt = HEAD_DEFAULTS.optimizer;
  const collect = async (aug: string, seed: number) => {
    const out = new Float32Array(n * d);
    let o = 0;
    await phiPass(db, bb, images, { aug, seed, threads: req.threads, signal: req.signal, onProgress: req.onProgress }, (_rows, v) => {
      out.set(v, o);
      o += v.length;
    });
    return out;
  };
  const time = async <T>(fn: () => Promise<T> | T): Promise<[T, number]> => {
    const t = performance.now();
    const v = await fn();
    return [v, (performance.now() - t) / 1000];
  };

  // Pixel space without a cache: every epoch, Φ on freshly flipped images, then one epoch of Ψ.
  const pixelHead = new MlpModel(sizes, { seed: 0 });
  let pixelSeconds = 0;
  let phiSeconds = 0;
  let trainSeconds = 0;
  for (let e = 0; e < E; e++) {
    const [x, tPhi] = await time(() => collect(`${req.omega.aug}:p=0.5`, e + 1));
    const [, tTrain] = await time(() => pixelHead.train({ x, labels, batch: HEAD_DEFAULTS.batch, epochs: 1, firstEpoch: e, totalEpochs: E, seed: 0, optimizer: opt, signal: req.signal }));
    phiSeconds += tPhi;
    trainSeconds += tTrain;
    pixelSeconds += tPhi + tTrain;
  }
  const [, psiForwardAll] = await time(() => pixelHead.forward(new Float32Array(n * d)));
  pixelHead.dispose();

  // Embedding space: one Φ pass, Ω once, then E epochs over {Φ(x), Ω(Φ(x))}.
  const embedHead = new MlpModel(sizes, { seed: 0 });
  const [z, tz] = await time(() => collect('identity', 0));
  const [zo, tOmega] = await time(() => applyOmega(req.omega, z));
  const [, tEmbedTrain] = await time(() => embedHead.train({ x: stack([z, zo]), views: 2, labels, batch: HEAD_DEFAULTS.batch, epochs: E, seed: 0, optimizer: opt, signal: req.signal }));
  embedHead.dispose();
  const embedSeconds = tz + tOmega + tEmbedTrain;

  // Pixel space with the views cached: Φ once on x and once on g(x), then E epochs over both.
  const cachedHead = new MlpModel(sizes, { seed: 0 });
  const [zg, tg] = await time(() => collect(req.omega.aug, 0));
  const [, tCachedTrain] = await time(() => cachedHead.train({ x: stack([z, zg]), views: 2, labels, batch: HEAD_DEFAULTS.batch, epochs: E, seed: 0, optimizer: opt, signal: req.signal }));
  cachedHead.dispose();
  const cachedSeconds = tz + tg + tCachedTrain;

  const c = {
    phi: phiSeconds / (E * n),
    omega: tOmega / n,
    psiForward: psiForwardAll / n,
    psiBackprop: Math.max(trainSeconds / (E * n) - psiForwardAll / n, 0),
  };
  const psi = c.psiForward + c.psiBackprop;
  const Ep = req.epochsForPrediction ?? 100;
  const predicted = [1, 2, 4].map((N) => ({
    N,
    E: Ep,
    ratio: (Ep * N * (c.phi + psi)) / (c.phi + Ep * N * (c.omega + psi)),
    ratioAsymptotic: (c.phi + psi) / (c.omega + psi),
  }));
  // Extrapolate the measured run to the prediction's epochs: pixel cost grows per epoch,
  // embedding cost is its one-off Φ pass plus per-epoch training.
  const pixelPerEpoch = pixelSeconds / E;
  const embedPerEpoch = tEmbedTrain / E;
  const cachedPredicted = [1, 2, 4].flatMap((N) => [20, Ep].map((Ex) => ({ N, E: Ex, ratio: ((N + 1) * c.phi + Ex * psi) / (c.phi + N * c.omega + Ex * psi) })));
  return {
    backbone: bb.name,
    images: n,
    perSampleSeconds: c,
    flopsPerSample: { phi: await forwardFlops(bb.path, bb.manifest.input.name, pre.nhwc ? [1, pre.height, pre.width, 3] : [1, 3, pre.height, pre.width]), omega: 2 * macs(req.omega.sizes), psiForward: 2 * macs(sizes), psiBackprop: 4 * macs(sizes) },
    predicted,
    measured: {
      epochs: E,
      pixelSeconds,
      embedSeconds,
      embedSetupSeconds: tz + tOmega,
      embedTrainSeconds: tEmbedTrain,
      ratio: pixelSeconds / embedSeconds,
      extrapolatedTo: Ep,
      extrapolatedRatio: (Ep * pixelPerEpoch) / (tz + tOmega + Ep * embedPerEpoch),
    },
    cachedPixel: {
      predicted: cachedPredicted,
      measured: { seconds: cachedSeconds, ratio: cachedSeconds / embedSeconds, extrapolatedRatio: (tz + tg + (Ep * tCachedTrain) / E) / (tz + tOmega + Ep * embedPerEpoch) },
    },
    formulas: { pixel: 'C_P = E·N·(C_Φ + C_Ψ + C_Ψbp)', embed: 'C_E = C_Φ + E·N·(C_Ω + C_Ψ + C_Ψbp)' },
  };
}
