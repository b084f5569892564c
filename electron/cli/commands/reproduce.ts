import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { splitAugList } from '../../engine/augment/index.js';
import { reproduce, type ReproduceOptions } from '../../engine/paper/index.js';
import { OMEGA_FORMS, type OmegaForm } from '../../engine/training/index.js';
import { type Options, UsageError, intOpt, namesOpt, numOpt, parse } from '../args.js';
import { defaultDataDir, defaultModelsDir } from '../../engine/settings.js';
import type { Ctx } from '../context.js';
import { prepareOrShard } from './grid.js';

export const REPRODUCE_HELP = `embaug reproduce [--out DIR] [--protocol cifar10-split|paper] [--epochs 20] [--seeds 3]
                 [--subset N] [--per-class N] [--archs resnet18,vgg16,inception]
                 [--bases none,hflip] [--augs hflip,vflip,both] [--models DIR] [--data DIR]
                 [--omega-epochs 20] [--omega-images N] [--lr 0.01]
                 [--omega-form auto|plain|residual|conditional|conditional-fourier]
  The paper's experiments on every backbone pair (base trained with none and hflip; --bases
  takes one of them) of the models folder: base accuracy, Ω per augmentation, Ψ per scenario
  and seed, Eq. 8. Writes DIR/table2.md, table2.json, eq8.json, curves/*.csv and report.html
  (default DIR: ./reproduction).
  --models defaults to the bundled models/ (or EMBAUG_MODELS); --data to EMBAUG_DATA.
  --per-class N: the few-shot protocol. Each seed draws its own N target training images per
  class; tested on the whole target test split; defaults become --epochs 100 --seeds 5
  --augs hflip and DIR reproduction-N-per-class; rows add the stochastic Ω forms
  (residual-gauss, shift-gauss, knn-shift, generator, mdn) and the Ω-free baselines (noise, mixup,
  ISDA), with the fraction of the pixel gain each recovers.
  --augs also takes augmentation specs, random ones included (crop:pad=4+hflip:p=0.5, rotate,
  rotate:min=-15,max=15): pixel mode then draws through Φ every epoch, and Ω is conditioned on
  the drawn parameters θ (auto picks the best form on held-out pairs), drawn afresh every epoch.
  --omega-images N trains each Ω on N base images (balanced) instead of the whole base split.
  --shard K/N --out DIR: only part K of N (a cluster array's task; see embaug cluster); the
  database is only read, the part's runs and results go to DIR, embaug merge DIR writes the report.
  --prepare: only import the data sets and register the backbones (what shards need first).`;

export const REPRODUCE_OPTIONS: Options = {
  out: { type: 'string' }, protocol: { type: 'string' }, epochs: { type: 'string' }, seeds: { type: 'string' }, subset: { type: 'string' }, 'per-class': { type: 'string' },
  archs: { type: 'string' }, bases: { type: 'string' }, augs: { type: 'string' }, models: { type: 'string' }, data: { type: 'string' },
  'omega-epochs': { type: 'string' }, 'omega-form': { type: 'string' }, 'omega-images': { type: 'string' }, lr: { type: 'string' },
  shard: { type: 'string' }, prepare: { type: 'boolean' },
};

/** The reproduction's options from its flags (shared with cluster slurm, which prepares one). */
export function reproduceOptions(ctx: Ctx, values: ReturnType<typeof parse>['values']): ReproduceOptions {
  const protocol = (values.protocol as string | undefined) ?? 'cifar10-split';
  if (protocol !== 'cifar10-split' && protocol !== 'paper') throw new UsageError('--protocol must be cifar10-split or paper');
  const form = (values['omega-form'] as string | undefined) ?? 'auto';
  if (!(OMEGA_FORMS as readonly string[]).includes(form)) throw new UsageError(`--omega-form must be one of ${OMEGA_FORMS.join(', ')}`);
  const perClass = intOpt(values['per-class'], 'per-class');
  if (perClass === 0) throw new UsageError('--per-class takes a whole number of images per class, at least 1');
  const fewShot = perClass !== undefined;
  const out = resolve((values.out as string | undefined) ?? (fewShot ? `reproduction-${perClass}-per-class` : 'reproduction'));
  return {
    out,
    protocol,
    modelsDir: resolve((values.models as string | undefined) ?? defaultModelsDir()),
    dataDir: resolve((values.data as string | undefined) ?? defaultDataDir()),
    epochs: intOpt(values.epochs, 'epochs', fewShot ? 100 : 20),
    seeds: intOpt(values.seeds, 'seeds', fewShot ? 5 : 3),
    subset: intOpt(values.subset, 'subset'),
    perClass,
    archs: namesOpt(values.archs),
    bases: namesOpt(values.bases),
    augSets: values.augs ? splitAugList(String(values.augs)) : undefined,
    omegaImages: intOpt(values['omega-images'], 'omega-images'),
    omega: { epochs: intOpt(values['omega-epochs'], 'omega-epochs', 20), form: form as OmegaForm },
    head: values.lr ? { optimizer: { kind: 'sgd', lr: numOpt(values.lr, 'lr')! } } : undefined,
    threads: ctx.threads,
    signal: ctx.signal,
    onProgress: ctx.progress,
    log: ctx.log,
  };
}

export async function reproduceCmd(ctx: Ctx, argv: string[]): Promise<void> {
  const { values } = parse(argv, REPRODUCE_OPTIONS);
  const o = reproduceOptions(ctx, values);
  const out = o.out;
  if (await prepareOrShard(ctx, 'reproduce', values, o)) return;
  const r = await reproduce(ctx.db(), o);
  ctx.out({ out, runId: r.runId, seconds: r.seconds, architectures: r.architectures, eq8: r.eq8?.measured ?? null }, () =>
    `${readFileSync(join(out, 'table2.md'), 'utf8')}\nwrote ${out}/table2.md, table2.json, eq8.json, curves/*.csv, report.html in ${(r.seconds / 60).toFixed(1)} min`);
}
