/**
 * The advisor: should a user augment their own data set while fine-tuning, and how? From the
 * cached embeddings it runs the cheap arms (none, noise, mixup, ISDA; embed with the newest Ω
 * this backbone has for an augmentation, and embed-gauss, Ω plus a Gaussian of its residual,
 * with the newest that keeps its shift models; pixel for a deterministic augmentation whose
 * views are cached) with stratified k-fold cross-validation on the training split (or over
 * seeds on the data set's own validation split), and recommends in one sentence what gains
 * beyond the noise. Nothing is chosen on a test split.
 */
import { cpus } from 'node:os';

import { parseAug } from '../augment/index.js';
import { getBackbone, preprocessOf } from '../backbones/index.js';
import { getDataset, selectImages, type Selection } from '../datasets/index.js';
import type { Db } from '../db.js';
import { ViewMemo, cachedShas, findSet } from '../embeddings/index.js';
import { EmbaugError } from '../errors.js';
import { ProgressMeter, runIndependent, type OnProgress } from '../jobs/index.js';
import { gainOver, type Acc, type PairedGain } from '../paper/index.js';
import { startRun } from '../runs/index.js';
import { NEEDS_SHIFT_MODELS, latestOmega, loadOmega, meanStd, trainHead, type FineTuneMode, type OmegaSampling } from '../training/index.js';

export interface AdviseRequest {
  dataset: number | string;
  backbone: string;
  /** The training split (default 'train'). */
  split?: string;
  /** A validation split of the data set to score on; stratified k-fold on the training split otherwise. */
  valSplit?: string;
  /** Folds, or seeds when scoring on `valSplit` (default 5). */
  folds?: number;
  /** Augmentations to consider (default hflip). */
  augs?: string[];
  epochs?: number;
  threads?: number;
  signal?: AbortSignal;
  onProgress?: OnProgress;
}

export interface AdviceArm {
  arm: string;
  mode: FineTuneMode;
  aug: string | null;
  /** How embed mode applies Ω (its mean, or a stochastic form); absent in other modes. */
  sampling?: OmegaSampling;
  /** Accuracy per fold (or seed). */
  accuracy: Acc;
  /** Gain over none, paired per fold; real beyond 2 std. */
  gain: PairedGain | null;
  /** Wall seconds per head, and Φ passes it needs beyond the identity views every arm shares. */
  seconds: number;
  extraPhiPasses: number;
  omegaRunId?: number;
}

export interface Advice {
  dataset: string;
  backbone: string;
  images: number;
  scheme: string;
  arms: AdviceArm[];
  /** Arms that could not run, and what to do to include them. */
  skipped: { arm: string; aug: string; why: string }[];
  recommendation: { arm: string; mode: FineTuneMode; aug: string | null; sampling?: OmegaSampling; omegaRunId: number | null; sentence: string };
  runId: number;
  seconds: number;
}

const pts = (g: PairedGain) => `${g.mean >= 0 ? '+' : ''}${(100 * g.mean).toFixed(1)} ± ${(100 * g.std).toFixed(1)} points`;

export async function advise(db: Db, req: AdviseRequest): Promise<Advice> {
  const t0 = performance.now();
  const ds = getDataset(db, req.dataset);
  const bb = getBackbone(db, req.backbone);
  const split = req.split ?? 'train';
  const k = req.folds ?? 5;
  if (!Number.isInteger(k) || k < 3 || k > 20) throw new EmbaugError('E_ARG', `folds must be a whole number from 3 to 20 (got ${k}): fewer than 3 cannot tell a gain from the noise`);
  // A split the data set lacks is refused here, naming the splits it has.
  const images = selectImages(db, ds.id, { split });
  const scored = req.valSplit ? selectImages(db, ds.id, { split: req.valSplit }) : images;
  const perClass = new Map<number, number>();
  for (const i of images) perClass.set(i.label, (perClass.get(i.label) ?? 0) + 1);
  if (!req.valSplit && Math.min(...perClass.values()) < k)
    throw new EmbaugError('E_ARG', `a class of "${ds.name}" has only ${Math.min(...perClass.values())} training images, fewer than the ${k} folds: pass --folds ${Math.max(3, Math.min(...perClass.values()))} or add images`);
  const threads = req.threads ?? cpus().length;
  const epochs = req.epochs ?? 30;
  
  // The arms: those without an augmentation always; embed where an Ω exists; pixel where views are cached.
  type Arm = { arm: string; mode: FineTuneMode; aug: string | null; omegaRunId?: number; sampling?: OmegaSampling };
  const arms: Arm[] = [{ arm: 'none', mode: 'none', aug: null }, { arm: 'noise', mode: 'noise', aug: null }, { arm: 'mixup', mode: 'mixup', aug: null }, { arm: 'isda', mode: 'isda', aug: null }];
  const skipped: Advice['skipped'] = [];
  for (const a of req.augs ?? ['hflip']) {
    const spec = parseAug(a);
    // Only an Ω that saw none of the images the arms are scored on: else the advice would leak.
    const om = latestOmega(db, bb.sha256, spec.key, scored);
    // With few images the variation Ω's mean leaves out is what helps (README: few target images).
    const gauss = latestOmega(db, bb.sha256, spec.key, scored, true);
    if (om !== null) arms.push({ arm: 'embed', mode: 'embed', aug: spec.key, omegaRunId: om, sampling: 'mean' });
    if (gauss !== null) arms.push({ arm: 'embed-gauss', mode: 'embed', aug: spec.key, omegaRunId: gauss, sampling: 'residual-gauss' });
    else if (om !== null) skipped.push({ arm: 'embed-gauss', aug: spec.key, why: `no Ω for ${spec.key} on ${bb.name} keeps the shift models Ω + Gaussian residual draws from: ${NEEDS_SHIFT_MODELS}` });
    if (om === null)
      skipped.push({
        arm: 'embed', aug: spec.key,
        why: latestOmega(db, bb.sha256, spec.key) === null
          ? `no Ω for ${spec.key} on ${bb.name}: train one (the Augmentations Ω view, or embaug reproduce)`
          : `every Ω for ${spec.key} on ${bb.name} was trained on images the advice scores on: train one on other images (another data set, or classes of a base task)`,
      });
    if (!spec.deterministic) {
      skipped.push({ arm: 'pixel', aug: spec.key, why: 'a random augmentation needs a fresh pass of Φ every epoch: too slow for advice' });
      continue;
    }
    // Looked up, not created: asking for advice leaves the cache as it was.
    const set = findSet(db, { backboneSha: bb.sha256, output: bb.manifest.embedding.output, augKey: spec.key, preprocessKey: preprocessOf(bb.manifest).key, seed: 0, dtype: 'float32' });
    const have = set ? cachedShas(db, set.id) : new Set<string>();
    if (images.every((i) => have.has(i.sha256))) arms.push({ arm: 'pixel', mode: 'pixel', aug: spec.key });
    else skipped.push({ arm: 'pixel', aug: spec.key, why: `its views are not cached: extract them (embaug extract --dataset ${ds.name} --backbone ${bb.name} --aug ${spec.key})` });
  }

  const top = startRun(db, { kind: 'advise', name: `advise ${ds.name} on ${bb.name}`, config: { split, valSplit: req.valSplit ?? null, folds: k, epochs, arms: arms.map((a) => `${a.arm}${a.aug ? ` ${a.aug}` : ''}`) }, backboneSha: bb.sha256, datasetId: ds.id, datasetVersion: ds.version, threads });
  return top.wrap(async () => {
    const meter = new ProgressMeter('advice (heads)', arms.length * k, 'heads', req.onProgress, 0);
    // Per arm: embed and embed-gauss may use different Ωs of one augmentation.
    const loaded = new Map(arms.filter((a) => a.omegaRunId !== undefined).map((a) => [a.omegaRunId!, loadOmega(db, a.omegaRunId!)]));
    const part = (r: number, p: 'fit' | 'val'): Selection => (req.valSplit ? { split: p === 'fit' ? split : req.valSplit } : { split, fold: { of: k, index: r, part: p } });
    const jobs = arms.flatMap((a) => Array.from({ length: k }, (_, r) => ({ a, r })));
    const memo = new ViewMemo();
    const heads = await runIndependent(jobs.map(({ a, r }) => async () => {
      const t = performance.now();
      const h = await trainHead(db, {
        backbone: bb.sha256, dataset: ds.id, train: part(r, 'fit'), test: part(r, 'val'), mode: a.mode, augs: a.aug ? [a.aug] : [],
        omegas: a.omegaRunId !== undefined ? { [a.aug!]: loaded.get(a.omegaRunId)! } : {}, ...(a.sampling ? { sampling: a.sampling } : {}),
        config: { epochs, seed: req.valSplit ? r : 0, evalEvery: epochs }, threads: 1, memo, signal: req.signal, group: `advise-${top.id}`, parentRunId: top.id,
        name: `advice ${a.arm}${a.aug ? ` ${a.aug}` : ''} ${req.valSplit ? 'seed' : 'fold'} ${r}`,
      });
      meter.tick();
      return { accuracy: h.testAccuracy, seconds: (performance.now() - t) / 1000 };
    }), threads);
    const results: AdviceArm[] = arms.map((a, i) => {
      const mine = heads.slice(i * k, (i + 1) * k);
      const runs = mine.map((h) => h.accuracy);
      const fitImages = images.length * (req.valSplit ? 1 : (k - 1) / k);
      return {
        arm: a.arm, mode: a.mode, aug: a.aug, ...(a.sampling ? { sampling: a.sampling } : {}), accuracy: { ...meanStd(runs), runs }, gain: null,
        seconds: mine.reduce((s, h) => s + h.seconds, 0) / k, extraPhiPasses: a.mode === 'pixel' ? Math.round(fitImages) : 0, omegaRunId: a.omegaRunId,
      };
    });
    for (const r of results.slice(1)) r.gain = gainOver(results[0].accuracy, r.accuracy);
    const scheme = req.valSplit ? `${k} seeds scored on split "${req.valSplit}"` : `${k}-fold cross-validation on split "${split}"`;
    return { dataset: ds.name, backbone: bb.name, images: images.length, scheme, arms: results, skipped, recommendation: recommend(results, scheme), runId: top.id, seconds: (performance.now() - t0) / 1000 };
  }, (r) => ({ recommendation: r.recommendation.sentence, arms: r.arms.map((a) => ({ arm: a.arm, aug: a.aug, accuracy: a.accuracy.mean, gain: a.gain?.mean ?? null, real: a.gain?.real ?? false })) }));
}

/** The arm with the largest real gain (the cheaper on a tie), or none when no gain is real. */
export function recommend(arms: AdviceArm[], scheme: string): Advice['recommendation'] {
  const label = (a: AdviceArm) => (a.arm === 'embed-gauss' ? `embed ${a.aug} drawn as Ω + Gaussian residual` : a.aug ? `${a.arm} ${a.aug}` : a.arm);
  const real = arms.filter((a) => a.gain?.real).sort((a, b) => b.gain!.mean - a.gain!.mean || a.seconds - b.seconds);
  if (!real.length) {
    const best = arms.slice(1).reduce((p, q) => (q.gain!.mean > p.gain!.mean ? q : p), arms[1]);
    return {
      arm: 'none', mode: 'none', aug: null, omegaRunId: null,
      sentence: `Do not augment: no mode gains beyond the noise over ${scheme}${best ? ` (the best, ${label(best)}, ${pts(best.gain!)})` : ''}; train the head without augmentation.`,
    };
  }
  const r = real[0];
  const pixel = arms.find((a) => a.arm === 'pixel' && a.aug === r.aug);
  const vsPixel = r.mode === 'embed' && pixel?.gain ? `, ${Math.round((100 * r.gain!.mean) / Math.max(pixel.gain.mean, 1e-9))}% of what pixel augmentation gains, without a Φ pass per view` : '';
  return {
    arm: r.arm, mode: r.mode, aug: r.aug, ...(r.sampling ? { sampling: r.sampling } : {}), omegaRunId: r.omegaRunId ?? null,
    sentence: `Augment with ${label(r)}: ${pts(r.gain!)} over no augmentation, beyond the noise over ${scheme}${vsPixel}.`,
  };
}
