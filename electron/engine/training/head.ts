/**
 * Classifier heads Ψ = D → 1024 → 128 → C, fine-tuned on cached embeddings of the target
 * task, with one of four augmentation modes:
 *  - none:  Φ(x) only;
 *  - pixel: each epoch each sample is one of {Φ(x), Φ(g_1(x)), …} drawn at random — from the
 *           cache for deterministic g_j, through Φ again every epoch for random ones;
 *  - embed: the same with Ω_j(Φ(x)) in place of Φ(g_j(x)). With `sampling: 'mean'` (the
 *           paper's Ω) it is computed once per head, except for a conditional Ω of a random
 *           g_j, which gets a fresh θ per sample and epoch (the draws pixel mode would make);
 *           the stochastic forms (stochastic.ts) draw a new view for every sample in every epoch;
 *  - noise: an Ω-free baseline, Φ(x) plus Gaussian noise scaled by the training embeddings'
 *           per-dimension spread, drawn afresh every epoch;
 *  - mixup: an Ω-free baseline, embeddings mixed within each batch (Zhang et al., 2018);
 *  - isda:  an Ω-free baseline, ISDA's closed-form loss over class-conditional Gaussian
 *           noise on the last hidden layer (Wang et al., 2019), in the native trainer.
 * The identity is one of the versions, as with a random flip at p = 1/(N+1).
 */
import { drawTheta, parseAug, type AugSpec } from '../augment/index.js';
import { getBackbone } from '../backbones/index.js';
import { classesWithImages, getDataset, type Selection } from '../datasets/index.js';
import type { Db } from '../db.js';
import { ViewMemo } from '../embeddings/index.js';
import { EmbaugError } from '../errors.js';
import type { OnProgress } from '../jobs/index.js';
import { MlpModel, trainSettings, type EpochStats, type OptimizerConfig } from '../native/index.js';
import { startRun } from '../runs/index.js';
import { isConditional } from './conditional.js';
import { NEEDS_SHIFT_MODELS, applyOmega, assertOmegaUnseen, packParams, type OmegaResult } from './omega.js';
import { headReport, type HeadReport } from './evaluate.js';
import { stack } from './stats.js';
import { KNN_K, OMEGA_SAMPLINGS, addGaussian, addNeighbourShift, addNoise, mdnSampler, nearest, sampleGenerator, type DrawKey, type OmegaSampling } from './stochastic.js';
import * as v from '../validate.js';

export const FINE_TUNE_MODES = ['none', 'pixel', 'embed', 'noise', 'mixup', 'isda'] as const;
export type FineTuneMode = (typeof FINE_TUNE_MODES)[number];

/** Modes that augment with views of g_j (and so need augmentation specs). */
export const usesAugs = (mode: FineTuneMode) => mode === 'pixel' || mode === 'embed';

export interface HeadConfig {
  hidden: number[];
  epochs: number;
  batch: number;
  seed: number;
  optimizer: OptimizerConfig;
  /** Evaluate on the test set every this many epochs (and after the last); 1 = every epoch. */
  evalEvery: number;
  /** Mixup mode's α (λ ~ Beta(α, α)); Zhang et al.'s CIFAR-10 setting, fixed in advance. */
  mixupAlpha: number;
  /** ISDA mode's λ0, the paper's CIFAR setting, fixed in advance. */
  isdaLambda: number;
}

export const HEAD_DEFAULTS: HeadConfig = {
  hidden: [1024, 128],
  epochs: 20,
  batch: 128,
  seed: 0,
  evalEvery: 1,
  mixupAlpha: 1,
  isdaLambda: 0.5,
  optimizer: { kind: 'sgd', lr: 0.01, momentum: 0.9, weightDecay: 5e-4, schedule: 'constant' },
};

export interface HeadRequest {
  backbone: string;
  dataset: number | string;
  train: Selection;
  test: Selection;
  mode: FineTuneMode;
  /** Augmentation specs for pixel and embed modes. */
  augs?: string[];
  /** Ω per augmentation key, for embed mode. */
  omegas?: Record<string, Pick<OmegaResult, 'chosen' | 'sizes' | 'params' | 'runId'> & { stochastic?: OmegaResult['stochastic'] }>;
  /** How embed mode applies Ω: its mean (default) or a stochastic form. */
  sampling?: OmegaSampling;
  config?: Partial<HeadConfig>;
  name?: string;
  group?: string;
  parentRunId?: number;
  protocol?: string;
  threads?: number;
  signal?: AbortSignal;
  onProgress?: OnProgress;
  onEpoch?: (s: EpochStats) => void;
  /** Views shared with the other heads of the same run, loaded once (see ViewMemo). */
  memo?: ViewMemo;
}

/**
 * The seed of epoch e's views of a random augmentation. Pixel mode extracts with it and a
 * conditional Ω draws θ with it, so both see the same draws: keyed by (seed, image, epoch, op).
 */
export const viewSeed = (seed: number, epoch: number) => seed * 100003 + epoch;

/** Epoch views of a conditional Ω: Ω(z, θ) with θ drawn for each image with `seed`. */
export function embedView(om: Pick<OmegaResult, 'chosen' | 'sizes' | 'params'>, spec: AugSpec, z: Float32Array, shas: string[], seed: number): Float32Array {
  return applyOmega(om, z, isConditional(om.chosen) ? drawTheta(spec, seed, shas) : undefined);
}

export interface HeadResult {
  testAccuracy: number;
  history: EpochStats[];
  runId: number;
  classes: number;
  classNames: string[];
  params: Float32Array[];
  sizes: number[];
  /** Per-class accuracy, confusion matrix and misclassified test images (kept in the run's summary). */
  report: HeadReport;
}

export async function trainHead(db: Db, req: HeadRequest): Promise<HeadResult> {
  const cfg: HeadConfig = { ...HEAD_DEFAULTS, ...req.config, optimizer: { ...HEAD_DEFAULTS.optimizer, ...req.config?.optimizer } };
  // Bad settings are refused before the embeddings are extracted, not after.
  trainSettings(cfg);
  v.int('evalEvery', cfg.evalEvery, 1);
  if (req.sampling !== undefined) v.oneOf('sampling', req.sampling, OMEGA_SAMPLINGS);
  const bb = getBackbone(db, req.backbone);
  const ds = getDataset(db, req.dataset);
  const augs = (usesAugs(req.mode) ? (req.augs ?? []) : []).map((a) => parseAug(a));
  v.distinct('augs', augs.map((a) => a.key));
  if (usesAugs(req.mode) && augs.length === 0) throw new EmbaugError('E_ARG', `fine-tuning mode "${req.mode}" needs at least one augmentation`);
  const sampling = req.mode === 'embed' ? req.sampling ?? 'mean' : null;
  if (req.mode === 'embed')
    for (const a of augs) {
      if (!req.omegas?.[a.key]) throw new EmbaugError('E_ARG', `embed mode needs a trained Ω for "${a.key}": train it first (the Augmentations Ω view, or embaug reproduce, which trains Ω and heads together)`);
      if (sampling !== 'mean' && !req.omegas[a.key].stochastic)
        throw new EmbaugError('E_ARG', `sampling "${sampling}" draws from the shift models of the Ω for "${a.key}", measured on its base pairs, and this Ω has none: ${NEEDS_SHIFT_MODELS}.`);
    }
  // Test images of none, or training images of one class, failed deep in the trainer ("val.x
  // must hold whole rows") after the extraction, or trained a head with nothing to tell apart.
  const where = (sel: Selection) => `split "${sel.split ?? 'all'}", classes ${sel.classes?.join(', ') ?? 'all'}`;
  const trainClasses = Math.min(classesWithImages(db, ds.id, req.train).length, req.train.limit ?? Infinity);
  if (trainClasses < 2) throw new EmbaugError('E_ARG', `A head tells classes apart, and the training selection of "${ds.name}" (${where(req.train)}${req.train.limit ? `, ${req.train.limit} image${req.train.limit === 1 ? '' : 's'}` : ''}) holds images of ${trainClasses} class${trainClasses === 1 ? '' : 'es'}: choose at least two classes with training images (embaug data show ${ds.name} lists them).`);
  if (classesWithImages(db, ds.id, req.test).length === 0) throw new EmbaugError('E_ARG', `The test selection of "${ds.name}" (${where(req.test)}) holds no images: choose classes with test images (embaug data show ${ds.name} lists them).`);
  const run = startRun(db, {
    kind: 'head', name: req.name ?? `Ψ ${req.mode}${augs.length ? ` ${augs.map((a) => a.key).join(',')}` : ''} on ${bb.name}`,
    parentId: req.parentRunId, group: req.group, backboneSha: bb.sha256, datasetId: ds.id, datasetVersion: ds.version,
    protocol: req.protocol, seed: cfg.seed, threads: req.threads,
    config: { ...cfg, mode: req.mode, ...(sampling ? { sampling } : {}), augs: augs.map((a) => a.key), train: req.train, test: req.test, omegaRuns: augs.map((a) => req.omegas?.[a.key]?.runId ?? null) },
  });
  return run.wrap(async () => {
    const common = { dataset: ds.id, backbone: bb.sha256, threads: req.threads, signal: req.signal, onProgress: req.onProgress, parentRunId: run.id };
    const memo = req.memo ?? new ViewMemo();
    const z = await memo.get(db, { ...common, ...req.train, aug: 'identity' });
    const test = await memo.get(db, { ...common, ...req.test, aug: 'identity' });
    for (const a of req.mode === 'embed' ? augs : []) {
      const id = req.omegas![a.key].runId;
      if (id !== undefined) assertOmegaUnseen(db, a.key, id, test.images);
    }
    const labels = Int32Array.from(z.images.map((i) => i.label));
    const testLabels = Int32Array.from(test.images.map((i) => i.label));
    const classes = Math.max(...labels, ...testLabels) + 1;
    const sizes = [z.dim, ...cfg.hidden, classes];
    const m = new MlpModel(sizes, { seed: cfg.seed });
    const history: EpochStats[] = [];
    const onEpoch = (s: EpochStats) => {
      history.push(s);
      run.metrics(s.epoch, { train_loss: s.loss, train_acc: s.accuracy, test_loss: s.valLoss, test_acc: s.valAccuracy, seconds: s.seconds });
      req.onEpoch?.(s);
    };
    const val = { x: test.x, labels: testLabels };
    const base = {
      labels, batch: cfg.batch, seed: cfg.seed, optimizer: cfg.optimizer, signal: req.signal, onEpoch,
      ...(req.mode === 'mixup' ? { mixupAlpha: cfg.mixupAlpha } : req.mode === 'isda' ? { isdaLambda: cfg.isdaLambda } : {}),
    };
    const evaluated = (e: number) => (e + 1) % cfg.evalEvery === 0 || e + 1 === cfg.epochs;
    try {
      const shas = z.images.map((i) => i.sha256);
      const draw = (aug: string, epoch: number): DrawKey => ({ seed: cfg.seed, epoch, aug, images: shas });
      const conditional = (a: AugSpec) => req.mode === 'embed' && isConditional(req.omegas![a.key].chosen);
      // Views drawn afresh every epoch: random pixel augmentations (through Φ again), a
      // conditional Ω (a new θ per sample), the stochastic Ω forms and the noise baseline.
      const fresh = (req.mode === 'pixel' && augs.some((a) => !a.deterministic)) || augs.some(conditional) || (sampling !== null && sampling !== 'mean') || req.mode === 'noise';
      const fixedMeans = sampling === 'mean' || sampling === 'residual-gauss' ? Object.fromEntries(augs.filter((a) => !conditional(a)).map((a) => [a.key, applyOmega(req.omegas![a.key], z.x)])) : {};
      // Ω's mean for this epoch: fixed, or for a conditional Ω at the θ pixel mode would draw.
      const meanView = (a: AugSpec, e: number) => fixedMeans[a.key] ?? embedView(req.omegas![a.key], a, z.x, shas, viewSeed(cfg.seed, e));
      const neighbours = sampling === 'knn-shift' ? Object.fromEntries(augs.map((a) => [a.key, nearest(z.x, req.omegas![a.key].stochastic!.bank.z, z.dim, KNN_K)])) : {};
      const mdnDraws = sampling === 'mdn' ? Object.fromEntries(augs.map((a) => [a.key, mdnSampler(req.omegas![a.key].stochastic!.mdn, z.x)])) : {};
      const epochViews = async (e: number): Promise<Float32Array[]> => {
        const views = [z.x];
        if (req.mode === 'noise') views.push(addNoise(z.x, z.x, z.dim, draw('noise', e)));
        for (const a of augs) {
          if (req.mode === 'pixel') views.push((await memo.get(db, { ...common, images: z.images, aug: a.key, seed: viewSeed(cfg.seed, e) })).x);
          else if (req.mode === 'embed') {
            const st = req.omegas![a.key].stochastic!;
            if (sampling === 'mean') views.push(meanView(a, e));
            else if (sampling === 'residual-gauss') views.push(addGaussian(meanView(a, e), st.residual, draw(a.key, e)));
            else if (sampling === 'shift-gauss') views.push(addGaussian(z.x, st.shift, draw(a.key, e)));
            else if (sampling === 'knn-shift') views.push(addNeighbourShift(z.x, st.bank, neighbours[a.key], KNN_K, z.dim, draw(a.key, e)));
            else if (sampling === 'generator') views.push(sampleGenerator(st.generator, z.x, draw(a.key, e)));
            else views.push(mdnDraws[a.key](draw(a.key, e)));
          }
        }
        return views;
      };
      if (fresh) {
        // The next epoch's views are drawn while the trainer (off the main thread) runs this
        // one: they depend on the seed and the epoch alone, never on the weights.
        let next = epochViews(0);
        for (let e = 0; e < cfg.epochs; e++) {
          const views = await next;
          const training = m.train({ ...base, ...(evaluated(e) ? { val } : {}), x: stack(views), views: views.length, epochs: 1, firstEpoch: e, totalEpochs: cfg.epochs });
          if (e + 1 < cfg.epochs) {
            next = epochViews(e + 1);
            // A failed or cancelled training leaves this draw unawaited: it must not go unhandled.
            next.catch(() => undefined);
          }
          await training;
        }
      } else {
        const views = [z.x];
        for (const a of augs) views.push(req.mode === 'pixel' ? (await memo.get(db, { ...common, ...req.train, aug: a.key })).x : fixedMeans[a.key]);
        const x = stack(views);
        if (cfg.evalEvery === 1) await m.train({ ...base, val, x, views: views.length, epochs: cfg.epochs });
        else
          // The same epochs in spans, evaluating only at each span's end: training does not
          // depend on evaluation, so the weights are those of one call.
          for (let e = 0; e < cfg.epochs; ) {
            let last = e;
            while (!evaluated(last)) last++;
            if (last > e) await m.train({ ...base, x, views: views.length, epochs: last - e, firstEpoch: e, totalEpochs: cfg.epochs });
            await m.train({ ...base, val, x, views: views.length, epochs: 1, firstEpoch: last, totalEpochs: cfg.epochs });
            e = last + 1;
          }
      }
      const params = m.getParams();
      const classNames = req.train.classes ? req.train.classes.map((c) => ds.classes[c]) : ds.classes.slice(0, classes);
      run.artifact('weights', 'head.f32', packParams(params), { sizes, classNames, backbone: bb.sha256 });
      const report = headReport(m.forward(test.x), test.images, classNames);
      return { testAccuracy: history.at(-1)?.valAccuracy ?? 0, history, runId: run.id, classes, classNames, params, sizes, report };
    } finally {
      m.dispose();
    }
  }, (r) => ({ testAccuracy: r.testAccuracy, finalTrainLoss: r.history.at(-1)?.loss, epochs: r.history.length, report: r.report }));
}
