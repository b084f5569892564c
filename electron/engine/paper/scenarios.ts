/**
 * The reproduction as data: the bases and, per seed, the heads to train. `reproduce` plans
 * its work from these tables, names its runs from them, and the report lays out its rows
 * from them, so a new scenario is one row here.
 */
import { EmbaugError } from '../errors.js';
import type { FineTuneMode, OmegaSampling } from '../training/index.js';
import * as v from '../validate.js';

/** The two base models of every family: Table II's prefix and its bracketed name. */
export const BASES = [
  { aug: 'none', prefix: 'none', tag: 'None', label: 'no augmentation' },
  { aug: 'hflip', prefix: 'pixel', tag: 'Pixel', label: 'hflip' },
] as const;
export type Base = (typeof BASES)[number];

/** The bases named by their augmentation (`none`, `hflip`), in the order given; all by default. */
export function basesOf(keys?: string[]): Base[] {
  return v.distinct('bases', keys ?? BASES.map((b) => b.aug)).map((k) => {
    const base = BASES.find((b) => b.aug === k);
    if (!base) throw new EmbaugError('E_ARG', `unknown base "${k}": expected ${BASES.map((b) => b.aug).join(' or ')} (the augmentation the base model was trained with).`);
    return base;
  });
}

/** One head to train per seed and base: its row key (after the base prefix), augmentation set and mode. */
export interface Scenario {
  key: string;
  augSet: string;
  mode: FineTuneMode;
  sampling?: OmegaSampling;
  /** The bracketed name of Table II, `[Embed residual-gauss]`. */
  tag: string;
  /** What the row measures, for the few-shot tables. */
  label: string;
}

const MODE_TAG: Record<FineTuneMode, string> = { none: 'None', pixel: 'Pixel', embed: 'Embed', noise: 'Noise', mixup: 'Mixup', isda: 'ISDA' };

const STOCHASTIC: { sampling: OmegaSampling; label: string }[] = [
  { sampling: 'residual-gauss', label: 'Ω + Gaussian residual' },
  { sampling: 'shift-gauss', label: 'identity + Gaussian shift (no network)' },
  { sampling: 'knn-shift', label: 'shift of a nearest base neighbour' },
  { sampling: 'generator', label: 'generative Ω (energy score)' },
  { sampling: 'mdn', label: 'mixture density network (likelihood)' },
];

/** The heads of one seed: Table II's, and with the few-shot protocol the stochastic Ω forms and the noise baseline. */
export function scenarios(augSets: string[], fewShot: boolean): Scenario[] {
  const out: Scenario[] = [{ key: 'none', augSet: 'none', mode: 'none', tag: '[None]', label: '[None] fine-tuning augmentation' }];
  for (const s of augSets) {
    out.push(
      { key: 'pixel', augSet: s, mode: 'pixel', tag: '[Pixel]', label: `[Pixel] ${s} through Φ` },
      { key: 'embed', augSet: s, mode: 'embed', sampling: 'mean', tag: '[Embed]', label: '[Embed] Ω, its mean (the paper)' },
    );
    if (fewShot)
      for (const f of STOCHASTIC) out.push({ key: `embed-${f.sampling}`, augSet: s, mode: 'embed', sampling: f.sampling, tag: `[Embed ${f.sampling}]`, label: `[Embed] ${f.label}` });
  }
  if (fewShot)
    for (const [mode, label] of [['noise', 'Gaussian noise'], ['mixup', 'feature mixup'], ['isda', 'ISDA']] as const)
      out.push({ key: mode, augSet: 'none', mode, tag: `[${MODE_TAG[mode]}]`, label: `[${MODE_TAG[mode]}] ${label}, Ω-free baseline` });
  return out;
}

/** The result key of a scenario under a base, `pixel_embed`. */
export const rowKey = (base: Base, sc: Pick<Scenario, 'key'>) => `${base.prefix}_${sc.key}`;

/** A head's run name: `resnet18 [Pixel]-[Embed] hflip 10/class seed 3`. */
export function runName(arch: string, base: Base, sc: Scenario, seed: number, perClass: number | null): string {
  return [arch, `[${base.tag}]-${sc.tag}`, sc.augSet === 'none' ? '' : sc.augSet, perClass !== null ? `${perClass}/class` : '', `seed ${seed}`].filter(Boolean).join(' ');
}

/**
 * Table II's rows in the paper's order: the base models, [None]-[None], the [Pixel] base's
 * scenarios, then the [None] base's (which the paper does not report).
 */
export function table2Rows(augSet: string): [string, string][] {
  const plan = scenarios([augSet], false);
  const [none, pixel] = BASES;
  return [
    ...BASES.map((b): [string, string] => [`base_${b.aug}`, `base model, ${b.label} (base-task top-1)`]),
    [rowKey(none, plan[0]), `[${none.tag}]-${plan[0].tag}`],
    ...plan.map((sc): [string, string] => [rowKey(pixel, sc), `[${pixel.tag}]-${sc.tag}`]),
    ...plan.slice(1).map((sc): [string, string] => [rowKey(none, sc), `[${none.tag}]-${sc.tag} (not in the paper)`]),
  ];
}
