/**
 * `study`: where does augmentation pay? The target task at several data budgets (images per
 * class), each seed drawing its own balanced subset, under every fine-tuning mode: none, pixel
 * (g through Φ), embed (Ω; conditional on θ for a random g), embed with a Gaussian residual, and
 * the Ω-free baselines noise, mixup and ISDA. Learning rate and epochs are chosen per cell on a
 * validation split carved from the training images, never on the test split; the chosen
 * values then train every seed on all of its training images, tested once on the test split.
 * It reuses reproduce's machinery: the protocol, the backbone families, Ω, the heads and the
 * scheduler of independent trainings.
 */
import { cpus } from 'node:os';

import { parseAug } from '../augment/index.js';
import { selectImages, type Selection } from '../datasets/index.js';
import type { Db } from '../db.js';
import { ViewMemo, extract, phiPass } from '../embeddings/index.js';
import { EmbaugError } from '../errors.js';
import { outputFolder } from '../paths.js';
import { ProgressMeter, runIndependent, type OnProgress } from '../jobs/index.js';
import { discoverFamilies, resolveProtocol } from '../paper/index.js';
import { basesOf } from '../paper/scenarios.js';
import { startRun } from '../runs/index.js';
import { HEAD_DEFAULTS, omegaSplit, pairExtractions, meanStd, trainHead, trainOmega, type FineTuneMode, type OmegaConfig, type OmegaResult, type OmegaSampling } from '../training/index.js';
import { writeStudyReport } from './report.js';
import type { Budget, StudyCell, StudyOmega, StudyResult } from './types.js';
import type { GridRunOptions } from '../cluster/shard.js';
import * as v from '../validate.js';

export * from './types.js';

/** The augmentations the study knows by name; the default grid takes the first two. */
export const STUDY_AUGS: Record<string, string> = {
  hflip: 'hflip',
  crop: 'crop:pad=4+hflip:p=0.5',
  rotate: 'rotate:min=-15,max=15',
  colour: 'brightness:s=0.4+contrast:s=0.4+saturation:s=0.4',
  composite: 'crop:pad=4+hflip:p=0.5+brightness:s=0.4+contrast:s=0.4+saturation:s=0.4',
};

/** One way of fine-tuning: a mode, and for embed mode how Ω is applied. */
export interface Arm {
  key: string;
  mode: FineTuneMode;
  sampling?: OmegaSampling;
  label: string;
}

export const ARMS: Arm[] = [
  { key: 'none', mode: 'none', label: 'none' },
  { key: 'pixel', mode: 'pixel', label: 'pixel (g through Φ)' },
  { key: 'embed', mode: 'embed', sampling: 'mean', label: 'embed (Ω; conditional on θ for a random g)' },
  { key: 'embed-gauss', mode: 'embed', sampling: 'residual-gauss', label: 'embed + Gaussian residual' },
  { key: 'noise', mode: 'noise', label: 'noise' },
  { key: 'mixup', mode: 'mixup', label: 'mixup' },
  { key: 'isda', mode: 'isda', label: 'ISDA' },
];

export const DEFAULT_BUDGETS: Budget[] = [10, 50, 250];
/** The architectures a study runs unless told. */
export const STUDY_ARCHS = ['resnet18'];
export const DEFAULT_LRS = [0.01, 0.05];

/** The most epochs a head of this budget trains (the validation curve picks how many it needs). */
export const maxEpochs = (b: Budget) => (b === 'full' ? 20 : b <= 10 ? 100 : b <= 50 ? 60 : 40);
/** Images per class held out for choosing the hyperparameters. */
export const valPerClass = (b: Budget) => (b === 'full' ? 500 : Math.max(2, Math.round(0.2 * b)));
export const seedsFor = (b: Budget, given?: number) => given ?? (b !== 'full' && b <= 50 ? 5 : 3);
/** Draws whose validation splits choose the hyperparameters: 3 where a split is small, else 1. */
export const selectionDraws = (b: Budget, seeds?: number) => Math.min(seedsFor(b, seeds), b !== 'full' && b <= 50 ? 3 : 1);

/**
 * A shard's part is its cells (each with its own choice of hyperparameters and its final heads,
 * so parts need no barrier) and the pairs it owns.
 */
export interface StudyOptions extends GridRunOptions {
  out: string;
  modelsDir: string;
  dataDir: string;
  /** Architectures (by family name); resnet18 by default. */
  archs?: string[];
  /** Base models: 'none', 'hflip' or both (the default). */
  bases?: string[];
  budgets?: Budget[];
  /** Names from STUDY_AUGS or augmentation specs; hflip and crop by default. */
  augs?: string[];
  /** Arm keys (see ARMS); all by default. */
  arms?: string[];
  /** Seeds per budget; 5 for budgets up to 50 per class and 3 above by default. */
  seeds?: number;
  lrs?: number[];
  /** Base images (balanced) Ω is trained on. */
  omegaImages?: number;
  omega?: Partial<OmegaConfig>;
  /** The most epochs any head trains (the validation curves run to it); by budget otherwise (maxEpochs). */
  epochs?: number;
}

interface HeadJob {
  budget: Budget;
  aug: string | null;
  arm: Arm;
  seed: number;
  lr: number;
  epochs: number;
  /** Choosing hyperparameters (fit part, scored on the validation part) or the final head. */
  phase: 'select' | 'final';
}

const cellKey = (budget: Budget, aug: string | null, arm: string) => `${budget}|${aug ?? '-'}|${arm}`;

/**
 * Φ passes one head of this arm costs: its identity views, plus for pixel mode a view of a
 * deterministic g once or a random g's fresh view every epoch. Ω's own passes are paid once per
 * backbone and augmentation, on the base task, and counted apart.
 */
export function phiPassesOf(mode: FineTuneMode, aug: string | null, n: number, epochs: number): number {
  if (mode !== 'pixel' || !aug) return n;
  return parseAug(aug).deterministic ? 2 * n : n * (1 + epochs);
}

export async function study(db: Db, o: StudyOptions): Promise<StudyResult> {
  const t0 = performance.now();
  v.counts(o, { epochs: 1, seeds: 1, omegaImages: 1, threads: 1, concurrency: 1 });
  // The report's folder is checked now, not after the work (a cluster shard writes no report).
  if (!o.shard) outputFolder(o.out);
  for (const lr of o.lrs ?? [])
    if (!(Number.isFinite(lr) && lr > 0)) throw new EmbaugError('E_ARG', `learning rate ${lr} is not a positive number: pass e.g. --lrs 0.01,0.05`);
  const threads = o.threads ?? cpus().length;
  const concurrency = Math.max(1, Math.min(o.concurrency ?? threads, threads));
  const log = o.log ?? (() => {});
  const budgets = v.distinct('budgets', o.budgets ?? DEFAULT_BUDGETS);
  for (const b of budgets)
    if (b !== 'full' && !(Number.isInteger(b) && b >= 2))
      throw new EmbaugError('E_ARG', `budget ${b} is not a whole number of images per class of at least 2, nor "full": pass e.g. --budgets 10,50,250,full`);
  const augs = (o.augs ?? ['hflip', 'crop']).map((a) => {
    const spec = STUDY_AUGS[a] ?? a;
    try {
      return parseAug(spec).key;
    } catch (err) {
      throw new EmbaugError('E_ARG', `augmentation "${a}" is neither one of ${Object.keys(STUDY_AUGS).join(', ')} nor an augmentation spec: ${(err as Error).message}`);
    }
  });
  v.distinct('augs', augs);
  const arms = o.arms ? v.distinct('arms', o.arms).map((k) => ARMS.find((a) => a.key === k) ?? badArm(k)) : ARMS;
  if (!arms.some((a) => a.key === 'none')) throw new EmbaugError('E_ARG', 'the arms must include "none": every gain is measured against it');
  const bases = basesOf(o.bases);
  const lrs = v.distinct('lrs', o.lrs ?? DEFAULT_LRS);
  const omegaImages = o.omegaImages ?? 2000;
  const protocol = await resolveProtocol(db, 'cifar10-split', o.dataDir, undefined, o.onProgress);
  const families = await discoverFamilies(db, o.modelsDir, 'cifar10-split', o.archs ?? STUDY_ARCHS, log);
  // A selection too small for Ω's held-out pairs is refused now, not after the extractions.
  if (arms.some((a) => a.mode === 'embed'))
    omegaSplit(selectImages(db, protocol.base.dataset.id, { ...protocol.base.train, limit: omegaImages, balanced: true }).map((i) => i.sha256), o.omega);
  const perAug = (a: Arm) => a.mode === 'pixel' || a.mode === 'embed';
  const cellsOf = () => budgets.flatMap((budget) => arms.flatMap((arm) => (perAug(arm) ? augs : [null]).map((aug) => ({ budget, aug, arm }))));
  const config = { budgets, augs, arms: arms.map((a) => a.key), archs: families.map((f) => f.architecture), bases: bases.map((b) => b.aug), seeds: o.seeds ?? null, lrs, omegaImages, epochs: o.epochs ?? null, omega: o.omega ?? {} };
  const top = startRun(db, { kind: 'study', name: `study cifar10-split${o.shard ? ` (shard ${o.shard.k} of ${o.shard.n})` : ''}`, config, protocol: 'cifar10-split', threads, datasetId: protocol.target.dataset.id, datasetVersion: protocol.target.dataset.version });
  const group = `study-${top.id}`;
  return top.wrap(async () => {
    const needsOmega = arms.some((a) => a.mode === 'embed');
    // The plan: per backbone pair its cells, numbered in order after the pairs themselves. A
    // cluster shard takes the steps ≡ k mod n: the pairs it owns (Φ timing, Ω summaries) and
    // whole cells, each with its own choice of hyperparameters. Ω is trained wherever a
    // shard's cells need it: training is deterministic, so every shard trains the same Ω.
    const mine = (step: number) => !o.shard || step % o.shard.n === o.shard.k;
    const pairs = families.flatMap((fam) => bases.map((base) => ({ fam, base })));
    const work = pairs.map((p, i) => {
      const cells = cellsOf().map((c, j) => ({ ...c, step: pairs.length + i * cellsOf().length + j })).filter((c) => mine(c.step));
      const owner = mine(i);
      return { ...p, owner, cells, omega: needsOmega && (owner || cells.some((c) => c.arm.mode === 'embed')) };
    });
    const headsOf = (cs: { budget: Budget }[]) => cs.reduce((n, c) => n + lrs.length * selectionDraws(c.budget, o.seeds) + seedsFor(c.budget, o.seeds), 0);
    const result: StudyResult = {
      protocol: 'cifar10-split', protocolDescription: protocol.description, budgets, classes: protocol.target.train.classes!.length, augs, arms: arms.map(({ key, label }) => ({ key, label })), lrs, omegaImages,
      seeds: Object.fromEntries(budgets.map((b) => [String(b), seedsFor(b, o.seeds)])), cells: [], omega: [], phiSecondsPerImage: {}, runId: top.id, seconds: 0,
    };
    const cellSteps: number[] = [];
    const common = { threads, signal: o.signal, onProgress: o.onProgress, group, parentRunId: top.id, protocol: 'cifar10-split' };
    // A head's training draw, or one of its two parts when choosing hyperparameters.
    const trainSel = (budget: Budget, seed: number, part?: 'fit' | 'val'): Selection => ({
      ...protocol.target.train, ...(budget === 'full' ? {} : { perClass: budget }), draw: seed,
      ...(part ? { holdOut: { perClass: valPerClass(budget), part } } : {}),
    });
    const omegaConfig = { ...o.omega, stochastic: arms.some((a) => a.sampling && a.sampling !== 'mean') };
    const omegaSelection = { ...protocol.base.train, limit: omegaImages, balanced: true };
    const active = work.filter((w) => w.owner || w.cells.length > 0);
    const targetOf = (bb: { sha256: string }) => ({ ...common, backbone: bb.sha256, dataset: protocol.target.dataset.id });
    // The target views every head of a pair shares: identity, and a deterministic g's for pixel arms.
    const sharedAugs = ['identity', ...augs.filter((a) => parseAug(a).deterministic && arms.some((x) => x.mode === 'pixel'))];

    // First, with every core: per backbone pair the cost of one Φ pass on one core (as the heads
    // run them), Ω's base pairs, and the target views the heads share (a deterministic g's
    // too), all planned first so that the phase's progress counts images; the trainings, one
    // per core, then never wait on Φ, and their progress counts trainings from their start.
    const views: { images: number; run: (onProgress: OnProgress) => Promise<unknown> }[] = [];
    const perPair = active.map(({ fam, base, cells, omega }) => {
      const bb = fam[base.aug];
      const target = targetOf(bb);
      const pair = { spp: 0, extractSeconds: augs.map(() => 0) };
      const probe = selectImages(db, protocol.target.dataset.id, { ...protocol.target.test, limit: 512, balanced: true });
      views.push({
        images: probe.length,
        run: async (onProgress) => {
          const tp = performance.now();
          await phiPass(db, bb, probe, { aug: 'identity', seed: 0, threads: 1, signal: o.signal, onProgress }, () => {});
          pair.spp = (performance.now() - tp) / 1000 / probe.length;
        },
      });
      if (omega) {
        const images = selectImages(db, protocol.base.dataset.id, omegaSelection);
        for (const req of pairExtractions({ ...common, backbone: bb.sha256, dataset: protocol.base.dataset.id, ...omegaSelection, images }, augs, omegaConfig))
          views.push({
            images: images.length,
            run: async (onProgress) => {
              const t = performance.now();
              await extract(db, { ...req, onProgress });
              pair.extractSeconds[req.of] += (performance.now() - t) / 1000;
            },
          });
      }
      const view = (sel: Selection, aug: string) => {
        const images = selectImages(db, protocol.target.dataset.id, sel);
        views.push({ images: images.length, run: (onProgress) => extract(db, { ...target, ...sel, images, aug, onProgress }) });
      };
      if (cells.length > 0) {
        view(protocol.target.test, 'identity');
        for (const budget of new Set(cells.map((c) => c.budget)))
          for (let seed = 0; seed < seedsFor(budget, o.seeds); seed++)
            for (const aug of sharedAugs) view(trainSel(budget, seed), aug);
      }
      return pair;
    });
    const extracting = new ProgressMeter('study: extracting views', views.reduce((n, v) => n + v.images, 0), 'images', o.onProgress);
    for (const v of views) {
      const p = extracting.part(v.images);
      await v.run(p.onProgress);
      p.end();
    }

    // Then the trainings, counted from their start; their own per-epoch progress, two or more
    // at once, would only flicker over it.
    const meter = new ProgressMeter('study: training', active.reduce((n, w) => n + headsOf(w.cells) + (w.omega ? augs.length : 0), 0), 'trainings', o.onProgress, 0);
    const quiet = { ...common, onProgress: undefined, threads: 1 };
    for (const [i, { fam, base, owner, cells, omega }] of active.entries()) {
      const { spp, extractSeconds } = perPair[i];
      const bb = fam[base.aug];
      const where = `${fam.architecture}/${base.aug}`;
      const target = targetOf(bb);
      if (owner) result.phiSecondsPerImage[where] = spp;

      // Ω per augmentation, once for every budget (its pairs are the base task's), one per
      // core; a training's numbers do not depend on the BLAS threads, so the schedule changes none.
      const omegas: Record<string, OmegaResult> = {};
      if (omega) {
        log(`${where}: ${augs.length} Ωs on ${omegaImages} base images, ${concurrency} at a time`);
        const trained = await runIndependent(augs.map((aug) => async () => {
          const t = performance.now();
          const om = await trainOmega(db, { ...quiet, backbone: bb.sha256, dataset: protocol.base.dataset.id, selection: omegaSelection, aug, config: omegaConfig });
          meter.tick();
          return { om, seconds: (performance.now() - t) / 1000 };
        }), concurrency);
        trained.forEach(({ om, seconds }, k) => {
          omegas[om.aug] = om;
          const pairsSeen = omegaImages * (1 + (parseAug(augs[k]).deterministic ? 1 : om.draws));
          const s: StudyOmega = {
            arch: fam.architecture, base: base.aug, aug: augs[k], chosen: om.chosen, invariance: om.fidelity.identityCosine, cosine: om.fidelity.cosine,
            heldOutMse: om.fidelity.heldOutMse, identityMse: om.fidelity.identityMse, seconds: extractSeconds[k] + seconds, phiPasses: pairsSeen,
          };
          if (owner) result.omega.push(s);
          log(`  Ω ${augs[k]}: ${om.chosen}; cos(Φ(x), Φ(g(x))) = ${s.invariance.toFixed(4)}, cos(Ω(Φ(x)), Φ(g(x))) = ${s.cosine.toFixed(4)}`);
        });
      }
      if (cells.length === 0) continue;

      // The views every head shares, cached above, loaded once for this pair's heads.
      const memo = new ViewMemo();
      await memo.get(db, { ...target, ...protocol.target.test, aug: 'identity' });
      for (const budget of new Set(cells.map((c) => c.budget)))
        for (let seed = 0; seed < seedsFor(budget, o.seeds); seed++)
          for (const aug of sharedAugs) await memo.get(db, { ...target, ...trainSel(budget, seed), aug });

      const head = async (j: HeadJob) => {
        const t = performance.now();
        const h = await trainHead(db, {
          ...quiet, memo, backbone: bb.sha256, dataset: protocol.target.dataset.id,
          train: trainSel(j.budget, j.seed, j.phase === 'select' ? 'fit' : undefined),
          test: j.phase === 'select' ? trainSel(j.budget, j.seed, 'val') : protocol.target.test,
          mode: j.arm.mode, augs: j.aug ? [j.aug] : [], omegas, sampling: j.arm.sampling,
          config: { epochs: j.epochs, seed: j.seed, evalEvery: j.phase === 'select' ? Math.max(1, Math.round(j.epochs / 10)) : j.epochs, optimizer: { ...HEAD_DEFAULTS.optimizer, lr: j.lr } },
          name: `${fam.architecture} [${base.tag}] ${j.arm.key}${j.aug ? ` ${j.aug}` : ''} ${j.budget}/class ${j.phase === 'select' ? `lr ${j.lr} (validation)` : ''} seed ${j.seed}`.replace(/ +/g, ' '),
        });
        meter.tick();
        return { h, seconds: (performance.now() - t) / 1000 };
      };

      // Hyperparameters: each cell's lr and epochs from its validation curves, averaged over the
      // first draws' own splits (a 10-per-class draw holds out 2 images per class: one split
      // alone picks by noise).
      const selectJobs: HeadJob[] = cells.flatMap((c) => lrs.flatMap((lr) =>
        Array.from({ length: selectionDraws(c.budget, o.seeds) }, (_, seed) => ({ ...c, seed, lr, epochs: o.epochs ?? maxEpochs(c.budget), phase: 'select' as const }))));
      log(`${where}: choosing lr and epochs on validation splits, ${selectJobs.length} heads, ${concurrency} at a time`);
      const selected = await runIndependent(selectJobs.map((j) => () => head(j)), concurrency);
      const sums = new Map<string, Map<number, Map<number, number[]>>>();
      selectJobs.forEach((j, i) => {
        const byLr = sums.get(cellKey(j.budget, j.aug, j.arm.key)) ?? new Map<number, Map<number, number[]>>();
        sums.set(cellKey(j.budget, j.aug, j.arm.key), byLr);
        const byEpoch = byLr.get(j.lr) ?? new Map<number, number[]>();
        byLr.set(j.lr, byEpoch);
        for (const e of selected[i].h.history) if (e.valAccuracy !== null) byEpoch.set(e.epoch, [...(byEpoch.get(e.epoch) ?? []), e.valAccuracy]);
      });
      const curves = new Map([...sums].map(([k, byLr]): [string, StudyCell['selection']] =>
        [k, [...byLr].map(([lr, byEpoch]) => ({ lr, curve: [...byEpoch].map(([e, v]): [number, number] => [e, v.reduce((a, b) => a + b, 0) / v.length]) }))]));
      // The best validation accuracy; ties go to fewer epochs, then the smaller lr.
      const chosen = new Map([...curves].map(([k, cs]) => {
        const points = cs.flatMap(({ lr, curve }) => curve.map(([epochs, valAccuracy]) => ({ lr, epochs, valAccuracy })));
        points.sort((a, b) => b.valAccuracy - a.valAccuracy || a.epochs - b.epochs || a.lr - b.lr);
        return [k, points[0]];
      }));

      const finalJobs: HeadJob[] = cells.flatMap((c) => {
        const ch = chosen.get(cellKey(c.budget, c.aug, c.arm.key))!;
        return Array.from({ length: seedsFor(c.budget, o.seeds) }, (_, seed) => ({ ...c, seed, lr: ch.lr, epochs: ch.epochs, phase: 'final' as const }));
      });
      log(`${where}: ${finalJobs.length} heads with the chosen hyperparameters, ${concurrency} at a time`);
      const finals = await runIndependent(finalJobs.map((j) => () => head(j)), concurrency);
      for (const c of cells) {
        const idx = finalJobs.map((j, i) => (j.budget === c.budget && j.aug === c.aug && j.arm === c.arm ? i : -1)).filter((i) => i >= 0);
        const runs = idx.map((i) => finals[i].h.testAccuracy);
        const k = cellKey(c.budget, c.aug, c.arm.key), ch = chosen.get(k)!;
        const n = selectImages(db, protocol.target.dataset.id, trainSel(c.budget, 0)).length;
        const seconds = idx.reduce((a, i) => a + finals[i].seconds, 0) / idx.length;
        const passes = phiPassesOf(c.arm.mode, c.aug, n, ch.epochs);
        // Views a head found cached were paid for before it started: add them at the measured cost.
        const cached = c.arm.mode === 'pixel' && c.aug && !parseAug(c.aug).deterministic ? n : passes;
        result.cells.push({
          arch: fam.architecture, base: base.aug, budget: c.budget, aug: c.aug, arm: c.arm.key, trainImages: n,
          chosen: ch, selection: curves.get(k)!, accuracy: { ...meanStd(runs), runs }, phiPasses: passes, seconds, computeSeconds: seconds + cached * spp,
          runIds: idx.map((i) => finals[i].h.runId),
        });
        cellSteps.push(c.step);
      }
    }
    result.seconds = (performance.now() - t0) / 1000;
    if (o.shard) return { ...result, part: { archs: families.map((f) => f.architecture), bases: bases.map((b) => b.aug), cellSteps } };
    await writeStudyReport(o.out, result);
    return result;
  }, (r) => ({ out: o.out, seconds: r.seconds, cells: r.cells.length }));
}

function badArm(k: string): never {
  throw new EmbaugError('E_ARG', `unknown arm "${k}": expected some of ${ARMS.map((a) => a.key).join(', ')}`);
}

