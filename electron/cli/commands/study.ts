import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { splitAugList } from '../../engine/augment/index.js';
import { defaultDataDir, defaultModelsDir } from '../../engine/settings.js';
import { ARMS, STUDY_AUGS, advise, study, type Budget, type StudyOptions } from '../../engine/study/index.js';
import { type Options, UsageError, intOpt, namesOpt, parse } from '../args.js';
import type { Ctx } from '../context.js';
import { prepareOrShard } from './grid.js';

export const STUDY_HELP = `embaug study [--out DIR] [--archs resnet18] [--bases none,hflip] [--budgets 10,50,250]
             [--augs hflip,crop] [--arms ${ARMS.map((a) => a.key).join(',')}]
             [--seeds N] [--lrs 0.01,0.05] [--omega-images 2000] [--models DIR] [--data DIR]
  Where does augmentation pay? The target task (CIFAR-10 classes 5–9) at each budget of
  training images per class ("full" for all), each seed its own balanced draw (5 seeds up to
  50 per class, 3 above), under every arm: none, pixel, embed (Ω, conditional on θ for a random
  augmentation), embed-gauss (Ω + a Gaussian residual), noise, mixup, ISDA. Learning rate and
  epochs are chosen per cell on a validation split of the training images, never the test split.
  Augmentations by name (${Object.keys(STUDY_AUGS).join(', ')}) or as specs.
  Writes DIR/study.md (findings first), study.json and report.html (default DIR: ./study).
  --epochs N caps every head's epochs (by budget otherwise); --omega-epochs N Ω's.
  --shard K/N --out DIR: only part K of N (whole cells; see embaug cluster); embaug merge DIR
  writes the report. --prepare: only import the data sets and register the backbones.`;

export const STUDY_OPTIONS: Options = {
  out: { type: 'string' }, archs: { type: 'string' }, bases: { type: 'string' }, budgets: { type: 'string' }, augs: { type: 'string' }, arms: { type: 'string' },
  seeds: { type: 'string' }, lrs: { type: 'string' }, 'omega-images': { type: 'string' }, models: { type: 'string' }, data: { type: 'string' },
  epochs: { type: 'string' }, 'omega-epochs': { type: 'string' }, shard: { type: 'string' }, prepare: { type: 'boolean' },
};

/** The study's options from its flags (shared with cluster slurm, which prepares one). */
export function studyOptions(ctx: Ctx, values: ReturnType<typeof parse>['values']): StudyOptions {
  const budgets = namesOpt(values.budgets)?.map((b): Budget => {
    if (b === 'full') return 'full';
    const n = Number(b);
    if (!Number.isInteger(n) || n < 2) throw new UsageError(`--budgets: "${b}" is not a whole number of images per class (at least 2) or "full"`);
    return n;
  });
  const lrs = namesOpt(values.lrs)?.map((x) => {
    const n = Number(x);
    if (!(n > 0 && n < 10)) throw new UsageError(`--lrs: "${x}" is not a learning rate in (0, 10)`);
    return n;
  });
  const omegaEpochs = intOpt(values['omega-epochs'], 'omega-epochs');
  return {
    out: resolve((values.out as string | undefined) ?? 'study'),
    modelsDir: resolve((values.models as string | undefined) ?? defaultModelsDir()),
    dataDir: resolve((values.data as string | undefined) ?? defaultDataDir()),
    archs: namesOpt(values.archs),
    bases: namesOpt(values.bases),
    budgets,
    augs: values.augs ? splitAugList(String(values.augs)) : undefined,
    arms: namesOpt(values.arms),
    seeds: intOpt(values.seeds, 'seeds'),
    lrs,
    omegaImages: intOpt(values['omega-images'], 'omega-images'),
    epochs: intOpt(values.epochs, 'epochs'),
    ...(omegaEpochs !== undefined ? { omega: { epochs: omegaEpochs } } : {}),
    threads: ctx.threads,
    signal: ctx.signal,
    onProgress: ctx.progress,
    log: ctx.log,
  };
}

export async function studyCmd(ctx: Ctx, argv: string[]): Promise<void> {
  const { values } = parse(argv, STUDY_OPTIONS);
  const o = studyOptions(ctx, values);
  if (await prepareOrShard(ctx, 'study', values, o)) return;
  const out = o.out;
  const r = await study(ctx.db(), o);
  ctx.out({ out, runId: r.runId, seconds: r.seconds, cells: r.cells.length }, () =>
    `${readFileSync(join(out, 'study.md'), 'utf8')}\nwrote ${out}/study.md, study.json, report.html in ${(r.seconds / 60).toFixed(1)} min`);
}

export const ADVISE_HELP = `embaug advise --dataset D --backbone B [--split train] [--val-split NAME] [--folds 5]
              [--augs hflip] [--epochs 30]
  Should you augment your own data set, and how? From the cached embeddings: none, noise,
  mixup, ISDA, embed (with the newest Ω this backbone has for each augmentation) and pixel (for a
  deterministic augmentation whose views are cached), scored by stratified k-fold
  cross-validation on the training split (or over seeds on --val-split), never on a test split.
  Prints accuracy ± std per arm, the gains beyond the noise, the cost, and a recommendation.`;

export async function adviseCmd(ctx: Ctx, argv: string[]): Promise<void> {
  const { values } = parse(argv, {
    dataset: { type: 'string' }, backbone: { type: 'string' }, split: { type: 'string' }, 'val-split': { type: 'string' }, folds: { type: 'string' }, augs: { type: 'string' }, epochs: { type: 'string' },
  });
  if (!values.dataset || !values.backbone) throw new UsageError('advise needs --dataset and --backbone (see embaug data list, embaug backbone list)');
  const r = await advise(ctx.db(), {
    dataset: String(values.dataset), backbone: String(values.backbone), split: values.split as string | undefined, valSplit: values['val-split'] as string | undefined,
    folds: intOpt(values.folds, 'folds'), augs: values.augs ? splitAugList(String(values.augs)) : undefined, epochs: intOpt(values.epochs, 'epochs'),
    threads: ctx.threads, signal: ctx.signal, onProgress: ctx.progress,
  });
  ctx.out(r, () => {
    const pct = (x: number) => (100 * x).toFixed(1);
    const lines = [`${r.dataset} on ${r.backbone}: ${r.images} training images, ${r.scheme}`, '', 'arm                      accuracy (%)    gain (points)      s/head  extra Φ passes'];
    for (const a of r.arms)
      lines.push(`${`${a.arm}${a.aug ? ` ${a.aug}` : ''}`.padEnd(24)} ${`${pct(a.accuracy.mean)} ± ${pct(a.accuracy.std)}`.padEnd(15)} ${(a.gain ? `${a.gain.mean >= 0 ? '+' : ''}${pct(a.gain.mean)} ± ${pct(a.gain.std)}${a.gain.real ? ' real' : ''}` : '').padEnd(18)} ${a.seconds.toFixed(2).padStart(6)}  ${a.extraPhiPasses}`);
    for (const s of r.skipped) lines.push(`(${s.arm} ${s.aug} left out: ${s.why})`);
    lines.push('', r.recommendation.sentence);
    return lines.join('\n');
  });
}
