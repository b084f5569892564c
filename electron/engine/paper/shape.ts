/**
 * Our Table II beside the paper's. The paper's protocol (CIFAR-100 → CIFAR-10, its own
 * backbones, 100 epochs, single runs) is not ours, so absolute numbers do not compare; the
 * shape does: each scenario's gain over [None]-[None], the order of the scenarios, and the share
 * of the pixel gain that [Embed] recovers.
 */
import PAPER from './paper-table2.json' with { type: 'json' };

import { accOf, type Acc, type ArchResult } from './types.js';

export interface PaperNumbers {
  source: string;
  protocol: string;
  note: string;
  /** Fractions per architecture and scenario key (base_none, none_none, pixel_embed, …). */
  architectures: Record<string, Record<string, number>>;
}

export function paperNumbers(): PaperNumbers {
  return PAPER as PaperNumbers;
}

/** The mean and std of a per-seed difference (the seeds pair); real when |mean| > 2 std. */
export interface PairedGain {
  mean: number;
  std: number;
  real: boolean;
}

/**
 * The gain of `mode` over `none`, per seed (the seeds pair: the same images, the same initial
 * weights), with its mean and standard deviation; real when the mean exceeds 2 std.
 */
export function gainOver(none: Acc, mode: Acc): PairedGain {
  const d = mode.runs.map((v, i) => v - none.runs[i]);
  const mean = d.reduce((a, b) => a + b, 0) / d.length;
  const std = d.length > 1 ? Math.sqrt(d.reduce((a, b) => a + (b - mean) ** 2, 0) / (d.length - 1)) : 0;
  // Two seeds give a std of one degree of freedom: no gain is called real on fewer than three.
  return { mean, std, real: d.length >= 3 && mean > 2 * std };
}

/** The scenarios the paper prints besides the base models, in its order. */
export const PAPER_SCENARIOS = [
  ['none_none', '[None]-[None]'],
  ['pixel_none', '[Pixel]-[None]'],
  ['pixel_pixel', '[Pixel]-[Pixel]'],
  ['pixel_embed', '[Pixel]-[Embed]'],
] as const;

export interface ArchShape {
  arch: string;
  /** Gain over [None]-[None] in accuracy (fractions): ours paired over seeds, the paper's single run. */
  rows: { key: string; label: string; ours: PairedGain | null; paper: number | null }[];
  /** Every pair of scenarios: does our order (beyond the noise) agree with the paper's? */
  order: { a: string; b: string; verdict: 'agree' | 'disagree' | 'within noise' }[];
  /** (pixel_embed − pixel_none) / (pixel_pixel − pixel_none); ours from the means, null unless that pixel gain is real. */
  recovered: { ours: number | null; paper: number | null };
}

export function paperShape(archs: Record<string, ArchResult>, paper: PaperNumbers = paperNumbers()): ArchShape[] {
  return Object.keys(archs)
    .filter((a) => paper.architectures[a])
    .map((arch) => {
      const p = paper.architectures[arch];
      const ours = (k: string) => accOf(archs[arch], k);
      const none = ours('none_none');
      const rows = PAPER_SCENARIOS.slice(1).map(([key, label]) => {
        const o = ours(key);
        return { key, label, ours: none && o ? gainOver(none, o) : null, paper: p[key] !== undefined && p.none_none !== undefined ? p[key] - p.none_none : null };
      });
      const order: ArchShape['order'] = [];
      PAPER_SCENARIOS.forEach(([a], i) =>
        PAPER_SCENARIOS.slice(i + 1).forEach(([b]) => {
          const oa = ours(a), ob = ours(b);
          if (!oa || !ob || p[a] === undefined || p[b] === undefined) return;
          const g = gainOver(oa, ob);
          const beyond = oa.runs.length >= 3 && Math.abs(g.mean) > 2 * g.std;
          order.push({ a, b, verdict: !beyond ? 'within noise' : Math.sign(g.mean) === Math.sign(p[b] - p[a]) ? 'agree' : 'disagree' });
        }),
      );
      const frac = (e?: number, n?: number, x?: number) => (e === undefined || n === undefined || x === undefined || x === n ? null : (e - n) / (x - n));
      // A share of a gain within the noise is noise: ours only where [Pixel]-[Pixel] beats [Pixel]-[None] beyond it.
      const pn = ours('pixel_none'), pp = ours('pixel_pixel');
      const real = !!pn && !!pp && gainOver(pn, pp).real;
      return { arch, rows, order, recovered: { ours: real ? frac(ours('pixel_embed')?.mean, pn!.mean, pp!.mean) : null, paper: frac(p.pixel_embed, p.pixel_none, p.pixel_pixel) } };
    });
}
