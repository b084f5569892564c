/**
 * `reproduce`: the paper's experiments for every backbone family of a models folder, as runs
 * in the database and as files: Table II (means ± std over seeds), Eq. 8, curves and charts.
 */
import { cpus } from 'node:os';

import { parseAug } from '../augment/index.js';
import { selectImages, type ImageRow, type Selection } from '../datasets/index.js';
import type { Db } from '../db.js';
import { outputFolder } from '../paths.js';
import { PixelMemo, ViewMemo, extract, logitsAccuracy, type ExtractRequest } from '../embeddings/index.js';
import { ProgressMeter, runGraph, type GraphTask, type OnProgress } from '../jobs/index.js';
import { startRun } from '../runs/index.js';
import { compositeFidelity, compositeParts, omegaSplit, pairExtractions, meanStd, trainHead, trainOmega, type CompositeFidelity, type HeadConfig, type HeadResult, type OmegaConfig, type OmegaResult } from '../training/index.js';
import { measureEq8 } from './eq8.js';
import { timeHeavyBackbone } from './heavy.js';
import { discoverFamilies, resolveProtocol, type ProtocolName } from './protocols.js';
import { writeReport } from './report.js';
import { BASES, basesOf, rowKey, runName, scenarios } from './scenarios.js';
import type { Acc, ArchResult, ReproducePart, ReproducePhases, ReproduceResult } from './types.js';
import type { GridRunOptions } from '../cluster/shard.js';
import * as v from '../validate.js';

export * from './types.js';
export { scenarios } from './scenarios.js';

export const AUG_SETS: Record<string, string[]> = { hflip: ['hflip'], vflip: ['vflip'], both: ['hflip', 'vflip'] };

/** The grid's trainings are its Ωs and heads; `concurrency` of them at once. */
export interface ReproduceOptions extends GridRunOptions {
  out: string;
  modelsDir: string;
  dataDir: string;
  protocol?: ProtocolName;
  epochs?: number;
  seeds?: number;
  /** Images per split and task (balanced over classes), for quick runs. */
  subset?: number;
  /**
   * The few-shot protocol: each seed draws its own N target training images per class (so the
   * spread over seeds includes the choice of images), tested on the whole target test split;
   * 5 seeds and 100 epochs unless given, and the stochastic Ω forms and the noise baseline as
   * further rows.
   */
  perClass?: number;
  archs?: string[];
  /** Base models by the augmentation they were trained with: 'none', 'hflip' or both (the default). */
  bases?: string[];
  /** Named sets (hflip, vflip, both) or augmentation specs, random ones included. */
  augSets?: string[];
  /** Base images (balanced) Ω is trained on; all of the base task's training split by default. */
  omegaImages?: number;
  omega?: Partial<OmegaConfig>;
  head?: Partial<HeadConfig>;
}

const acc = (runs: number[]): Acc => ({ ...meanStd(runs), runs });

/**
 * Fills Table II's cells and the heads' curves from the plan's outcomes, in plan order
 * whatever the finishing order (or the shard that trained them), so the files depend on
 * neither the schedule nor the split into shards.
 */
export function tabulate(r: ReproduceResult, part: ReproducePart): void {
  const heads = [...part.heads].sort((a, b) => a.step - b.step);
  for (const archName of part.archs) {
    const arch: ArchResult = (r.architectures[archName] = {});
    for (const b of BASES) {
      const base = part.bases.find((x) => x.arch === archName && x.base === b.aug);
      if (base) arch[`base_${b.aug}`] = acc([base.accuracy]);
      const scores = new Map<string, Map<string, number[]>>();
      for (const h of heads.filter((x) => x.arch === archName && x.base === b.aug)) {
        const bySet = scores.get(h.augSet) ?? scores.set(h.augSet, new Map()).get(h.augSet)!;
        (bySet.get(h.scenario) ?? bySet.set(h.scenario, []).get(h.scenario)!).push(h.testAccuracy);
        r.curves.heads.push({ arch: archName, base: b.aug, augSet: h.augSet, scenario: h.scenario, seed: h.seed, history: h.history });
      }
      for (const [augSet, byScenario] of scores)
        for (const [scenario, runs] of byScenario) {
          if (augSet === 'none' || augSet === 'hflip') arch[scenario] = acc(runs);
          else ((arch[augSet] ??= {}) as Record<string, Acc>)[scenario] = acc(runs);
        }
    }
  }
}

/**
 * What a reproduction reads, put into the database once: the protocol's data sets and the
 * models folder's backbones. Cluster shards need it done before they start, since each works
 * on its own copy and must not import its own.
 */
export async function prepareGrid(db: Db, o: Pick<ReproduceOptions, 'protocol' | 'dataDir' | 'modelsDir' | 'subset' | 'archs' | 'onProgress' | 'log'>): Promise<{ families: string[] }> {
  const name = o.protocol ?? 'cifar10-split';
  await resolveProtocol(db, name, o.dataDir, o.subset, o.onProgress);
  return { families: (await discoverFamilies(db, o.modelsDir, name, o.archs, o.log)).map((f) => f.architecture) };
}

export async function reproduce(db: Db, o: ReproduceOptions): Promise<ReproduceResult> {
  const t0 = performance.now();
  v.counts(o, { epochs: 1, seeds: 1, subset: 1, perClass: 1, omegaImages: 1, threads: 1, concurrency: 1 });
  // The report's folder is checked now, not after the work (a cluster shard writes no report).
  if (!o.shard) outputFolder(o.out);
  const protocolName = o.protocol ?? 'cifar10-split';
  const fewShot = o.perClass !== undefined;
  const epochs = o.epochs ?? (fewShot ? 100 : 20);
  const seeds = o.seeds ?? (fewShot ? 5 : 3);
  const augSets = v.distinct('augs', o.augSets ?? (fewShot ? ['hflip'] : Object.keys(AUG_SETS)));
  const plan = scenarios(augSets, fewShot);
  const bases = basesOf(o.bases);
  const threads = o.threads ?? cpus().length;
  // Trainings are independent but for Ω before embed mode: one per core, each single-threaded (see jobs/independent.ts).
  const concurrency = Math.max(1, Math.min(o.concurrency ?? threads, threads));
  const log = o.log ?? (() => {});
  // A set is a named one (hflip, vflip, both) or any one augmentation spec, random ones too.
  const setAugs = (s: string) => AUG_SETS[s] ?? [parseAug(s).key];
  for (const s of augSets)
    if (!AUG_SETS[s])
      try {
        parseAug(s);
      } catch (err) {
        throw new RangeError(`augmentation set "${s}" is neither ${Object.keys(AUG_SETS).join(', ')} nor an augmentation spec: ${(err as Error).message}`);
      }
  const protocol = await resolveProtocol(db, protocolName, o.dataDir, o.subset, o.onProgress);
  const families = await discoverFamilies(db, o.modelsDir, protocolName, o.archs, log);
  // Every pair reads the same few selections: each is made once (a selection over CIFAR-10
  // costs about 0.2 s of the main thread, and the extraction phase made nine per pair).
  const selections = new Map<string, ImageRow[]>();
  const chosen = (dataset: number, sel: Selection) => {
    const key = JSON.stringify([dataset, sel]);
    return selections.get(key) ?? selections.set(key, selectImages(db, dataset, sel)).get(key)!;
  };
  const omegaSelection = o.omegaImages ? { ...protocol.base.train, limit: o.omegaImages, balanced: true } : protocol.base.train;
  // A selection too small for Ω's held-out pairs is refused now, not after the extractions.
  if (augSets.length) omegaSplit(chosen(protocol.base.dataset.id, omegaSelection).map((i) => i.sha256), o.omega);
  const config = { protocol: protocolName, epochs, seeds, subset: o.subset ?? null, perClass: o.perClass ?? null, augSets, omegaImages: o.omegaImages ?? null, archs: families.map((f) => f.architecture), bases: bases.map((b) => b.aug), omega: o.omega ?? {}, head: o.head ?? {} };
  const top = startRun(db, { kind: 'reproduce', name: `reproduce ${protocolName}${o.shard ? ` (shard ${o.shard.k} of ${o.shard.n})` : ''}`, config, protocol: protocolName, threads, datasetId: protocol.target.dataset.id, datasetVersion: protocol.target.dataset.version });
  const group = `reproduce-${top.id}`;
  return top.wrap(async () => {
    const omegaAugs = [...new Set(augSets.flatMap(setAugs))];
    // The plan: per backbone pair (family × base) its heads, numbered in order; a cluster shard
    // takes every n-th head, and the pair's own work (base accuracy, Ω summaries, composites)
    // goes to the shard of the pair's number. Ω is trained wherever a shard's heads need it:
    // training is deterministic, so every shard trains the same Ω.
    const jobsOf = () => Array.from({ length: seeds }, (_, seed) => plan.map((sc) => ({ sc, seed }))).flat();
    const mine = (step: number) => !o.shard || step % o.shard.n === o.shard.k;
    const eq8Family = families.find((f) => f.architecture === 'resnet18') ?? families[0];
    const eq8Mine = !o.shard || o.shard.k === 0;
    const work = families.flatMap((fam) => bases.map((b) => ({ fam, b }))).map((p, i, all) => {
      const heads = jobsOf().map((j, h) => ({ ...j, step: all.length + i * jobsOf().length + h })).filter((j) => mine(j.step));
      const owner = mine(i);
      const eq8 = eq8Mine && p.fam === eq8Family && p.b.aug === 'hflip' && omegaAugs.includes('hflip');
      return { ...p, heads, owner, omega: owner || eq8 || heads.some((j) => j.sc.mode === 'embed') };
    });
    const result: ReproduceResult = {
      protocol: protocolName, protocolDescription: protocol.description, epochs, seeds, subset: o.subset ?? null, perClass: o.perClass ?? null, augSets,
      architectures: {}, omega: {}, composites: {}, eq8: null, compute: null, curves: { heads: [], omega: [] }, runId: top.id, seconds: 0,
      phases: { extracting: 0, training: 0, eq8: 0, compute: 0 },
    };
    const part: ReproducePart = { archs: families.map((f) => f.architecture), bases: [], heads: [] };
    const common = { threads, signal: o.signal, onProgress: o.onProgress, group, parentRunId: top.id, protocol: protocolName };
    const omegaConfig = { ...o.omega, stochastic: fewShot };
    const composites = omegaAugs.filter((a) => parseAug(a).ops.length > 1);
    const active = work.filter((w) => w.owner || w.omega || w.heads.length > 0);
    // First, with every core (ONNX Runtime): per backbone pair the base model's accuracy, and
    // everything the trainings will read extracted into the cache (Ω's base pairs, the
    // composites' parts, the target views the heads share), so that the trainings, one per
    // core, never wait on Φ.
    const targetTrain = (seed: number): Selection => (fewShot ? { ...protocol.target.train, perClass: o.perClass, draw: seed } : protocol.target.train);
    // Planned first, so that the phase's progress counts images: counted in extractions, its
    // ETA read an hour for a phase of five minutes (the first views are the largest).
    const views: { images: number; run: (onProgress: OnProgress) => Promise<unknown> }[] = [];
    // Every backbone reads the same images in several views: each decoded once for the phase.
    let pixels: PixelMemo | undefined = new PixelMemo();
    for (const { fam, b, heads: mineJobs, owner, omega } of active) {
      const bb = fam[b.aug];
      if (owner) {
        const images = chosen(protocol.base.dataset.id, protocol.base.test);
        views.push({
          images: images.length,
          run: async (onProgress) => {
            log(`${fam.architecture}: base model ${bb.name} on the base task's test split`);
            const base = await logitsAccuracy(db, { dataset: protocol.base.dataset.id, backbone: bb.sha256, ...protocol.base.test, images, threads, signal: o.signal, onProgress, pixels });
            part.bases.push({ arch: fam.architecture, base: b.aug, accuracy: base.accuracy });
          },
        });
      }
      const view = (req: ExtractRequest & { images: ImageRow[] }) => views.push({ images: req.images.length, run: (onProgress) => extract(db, { ...req, onProgress, pixels }) });
      const pairs = { ...common, backbone: bb.sha256, dataset: protocol.base.dataset.id, ...omegaSelection, images: chosen(protocol.base.dataset.id, omegaSelection) };
      pairExtractions(pairs, [...(omega ? omegaAugs : []), ...(owner ? composites.flatMap(compositeParts) : [])], omegaConfig).forEach(view);
      const target = { ...common, backbone: bb.sha256, dataset: protocol.target.dataset.id };
      if (mineJobs.length > 0) view({ ...target, ...protocol.target.test, images: chosen(protocol.target.dataset.id, protocol.target.test), aug: 'identity' });
      for (const seed of new Set(mineJobs.map((j) => (fewShot ? j.seed : 0))))
        for (const aug of ['identity', ...omegaAugs.filter((a) => parseAug(a).deterministic)])
          view({ ...target, ...targetTrain(seed), images: chosen(protocol.target.dataset.id, targetTrain(seed)), aug });
    }
    // Each phase's wall time, for the report: the scheduler shortens only the trainings.
    let mark = performance.now();
    const lap = (phase: keyof ReproducePhases) => {
      const now = performance.now();
      result.phases[phase] += (now - mark) / 1000;
      mark = now;
    };
    const extracting = new ProgressMeter('reproduce: extracting views', views.reduce((n, v) => n + v.images, 0), 'images', o.onProgress);
    for (const v of views) {
      const p = extracting.part(v.images);
      await v.run(p.onProgress);
      p.end();
    }
    pixels = undefined;
    lap('extracting');
    // Then every training, Ωs and heads alike, one per core: a head in embed mode starts once
    // its pair's Ωs are trained, everything else as soon as a core is free. What they produce
    // goes into the result afterwards, in plan order, so no file depends on the schedule.
    const tasks: GraphTask<unknown>[] = [];
    const collect: (() => void)[] = [];
    let eq8Omega: OmegaResult | null = null;
    for (const { fam, b, heads: mineJobs, owner, omega } of active) {
      const baseAug = b.aug;
      const bb = fam[baseAug];
      const ctx = { ...common, onProgress: undefined, threads: 1, backbone: bb.sha256 };
      const omegas: Record<string, OmegaResult> = {};
      const omegaTasks: number[] = [];
      if (omega)
        for (const aug of omegaAugs) {
          let om: OmegaResult;
          omegaTasks.push(tasks.length);
          tasks.push({
            run: async () => {
              log(`${fam.architecture}/${baseAug}: Ω for ${aug} on the base task`);
              om = await trainOmega(db, { ...ctx, dataset: protocol.base.dataset.id, selection: omegaSelection, aug, config: omegaConfig });
              omegas[om.aug] = om;
              log(`  Ω ${aug}: ${om.chosen} (held-out MSE ${om.fidelity.heldOutMse.toPrecision(4)} vs identity ${om.fidelity.identityMse.toPrecision(4)}, cosine ${om.fidelity.cosine.toFixed(4)} vs ${om.fidelity.identityCosine.toFixed(4)})${om.flagged ? ' — flagged: no better than the identity' : ''}`);
            },
          });
          collect.push(() => {
            if (owner) {
              const { params: _p, sizes: _s, stochastic: _st, ...summary } = om;
              ((result.omega[fam.architecture] ??= {})[baseAug] ??= {})[om.aug] = summary;
              for (const c of om.candidates)
                result.curves.omega.push({ arch: fam.architecture, base: baseAug, aug: om.aug, form: c.form, history: c.history.map((h) => ({ epoch: h.epoch, loss: h.loss, valLoss: h.valLoss })) });
            }
            if (eq8Mine && fam === eq8Family && baseAug === 'hflip' && aug === 'hflip') eq8Omega = om;
          });
        }
      if (owner)
        for (const aug of composites) {
          let c: CompositeFidelity;
          tasks.push({
            after: omegaTasks,
            run: async () => {
              log(`${fam.architecture}/${baseAug}: composite ${aug}, its own Ω against the chain of its ops' Ωs`);
              c = await compositeFidelity(db, { ...ctx, dataset: protocol.base.dataset.id, selection: omegaSelection, aug, config: o.omega, direct: omegas[parseAug(aug).key] });
            },
          });
          collect.push(() => void (((result.composites[fam.architecture] ??= {})[baseAug] ??= {})[aug] = c));
        }
      if (mineJobs.length === 0) continue;
      log(`${fam.architecture}/${baseAug}: ${mineJobs.length} heads (${seeds} seeds), ${concurrency} at a time`);
      // The views this pair's heads share, loaded once and let go after its last head.
      const memo = new ViewMemo();
      let left = mineJobs.length;
      for (const { sc, seed, step } of mineJobs) {
        let h: HeadResult;
        tasks.push({
          after: sc.mode === 'embed' ? omegaTasks : [],
          run: async () => {
            const train = targetTrain(seed);
            try {
              h = await trainHead(db, {
                ...ctx, memo, dataset: protocol.target.dataset.id, train, test: protocol.target.test,
                mode: sc.mode, augs: sc.augSet === 'none' ? [] : setAugs(sc.augSet), omegas, sampling: sc.sampling,
                config: { ...(fewShot ? { evalEvery: 10 } : {}), ...o.head, epochs, seed },
                name: runName(fam.architecture, b, sc, seed, o.perClass ?? null),
              });
            } finally {
              if (--left === 0) memo.clear();
            }
          },
        });
        collect.push(() => part.heads.push({
          step, arch: fam.architecture, base: baseAug, augSet: sc.augSet, scenario: rowKey(b, sc), seed, testAccuracy: h.testAccuracy,
          history: h.history.map((e) => ({ epoch: e.epoch, loss: e.loss, accuracy: e.accuracy, valAccuracy: e.valAccuracy })),
        }));
      }
    }
    // Counted from here, so that its rate is the trainings' own; their per-epoch progress,
    // two or more at once, would only flicker over it.
    const meter = new ProgressMeter('reproduce: training', tasks.length, 'trainings', o.onProgress, 0);
    await runGraph(tasks.map((t) => ({ ...t, run: async () => { await t.run(); meter.tick(); } })), concurrency);
    for (const f of collect) f();
    lap('training');
    if (eq8Omega) {
      log(`Eq. 8: measuring costs on ${eq8Family.hflip.name}`);
      result.eq8 = await measureEq8(db, {
        backbone: eq8Family.hflip.sha256, dataset: protocol.target.dataset.id,
        train: { ...protocol.target.train, limit: Math.min(o.subset ?? 5000, 5000), balanced: true },
        omega: eq8Omega, measuredEpochs: 2, epochsForPrediction: epochs, threads, signal: o.signal, onProgress: o.onProgress,
      });
      lap('eq8');
    }
    if (fewShot && eq8Mine) {
      log('compute: timing a ResNet-50-sized Φ (random weights, timing only)');
      const n = o.perClass! * protocol.target.train.classes!.length;
      const basePairs = selectImages(db, protocol.base.dataset.id, protocol.base.train).length;
      result.compute = {
        trainImages: n, epochs,
        phiPasses: { none: n, 'pixel-cached': 2 * n, 'pixel-random': n * (1 + epochs), embed: n, noise: n },
        omegaPhiPasses: 2 * basePairs,
        ours: result.eq8 ? { backbone: result.eq8.backbone, secondsPerImage: result.eq8.perSampleSeconds.phi } : null,
        heavy: await timeHeavyBackbone(threads),
      };
      lap('compute');
    }
    result.seconds = (performance.now() - t0) / 1000;
    if (o.shard) return { ...result, part };
    tabulate(result, part);
    await writeReport(o.out, result);
    return result;
  }, (r) => ({ out: o.out, seconds: r.seconds, architectures: Object.keys(r.architectures) }));
}
